# `make run` serves on 127.0.0.1:3000 with data in ./data; `make test` runs the suite.
# Both create .venv and install the package into it the first time (or after setup.cfg
# changes).

PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test test-under-load lint reap bench profile soak long-run crash fuzz fleet screenshot clean

$(STAMP): setup.cfg setup.py
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	exec $(VENV)/bin/gunicorn --config gunicorn.conf.py wsgi:app

test: $(STAMP) lint
	scripts/install-test-deps
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The suite from a fresh clone, three times, beside two CPU burners; then checks that no
# server process or temp folder was left behind.
test-under-load:
	scripts/test-under-load

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy taskdriver

# Proof: benchmark (writes bench/results.json), soak, crash and fuzz at full size.
bench: $(STAMP)
	$(VENV)/bin/python bench/bench.py $(BENCH_ARGS)

# Where a request's time goes: cProfile of every request under gunicorn, by stage.
profile: $(STAMP)
	$(VENV)/bin/python bench/profile_requests.py $(PROFILE_ARGS)

soak: $(STAMP)
	$(VENV)/bin/python tests/soak.py

# 1,000,000 tasks created, completed and archived in rounds of 100,000 (issue 24);
# LONG_RUN_ARGS="--tasks 20000 --round 5000" for a smoke run.
long-run: $(STAMP)
	$(VENV)/bin/python tests/long_run.py $(LONG_RUN_ARGS)

crash: $(STAMP)
	$(VENV)/bin/python tests/crash.py

# A thousand agents long-polling at once (FLEET_ARGS="--storage-url test" for PostgreSQL).
fleet: $(STAMP)
	$(VENV)/bin/python tests/fleet.py $(FLEET_ARGS)

fuzz: $(STAMP)
	$(VENV)/bin/python tests/fuzz.py --examples 40

reap: $(STAMP)
	$(VENV)/bin/flask --app taskdriver taskdriver reap

# Refresh docs/api-docs.png from a throwaway server on port 3999.
screenshot: $(STAMP)
	scripts/install-test-deps
	rm -rf build/screenshot && mkdir -p build/screenshot
	TASKDRIVER_DATA_DIR=build/screenshot TASKDRIVER_BIND=127.0.0.1:3999 TASKDRIVER_WORKERS=1 \
	  $(VENV)/bin/gunicorn --config gunicorn.conf.py --pid build/screenshot.pid --daemon
	sleep 2
	scripts/render-docs http://127.0.0.1:3999/api/docs build/screenshot/dom.html docs/api-docs.png
	kill $$(cat build/screenshot.pid)

clean:
	rm -rf $(VENV) build *.egg-info
