# `make run` serves on 127.0.0.1:3000 with data in ./data; `make test` runs the suite.
# Both create .venv and install the package into it the first time (or after setup.cfg
# changes).

PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test reap clean

$(STAMP): setup.cfg setup.py
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	exec $(VENV)/bin/gunicorn --config gunicorn.conf.py wsgi:app

test: $(STAMP)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

reap: $(STAMP)
	$(VENV)/bin/flask --app taskdriver taskdriver reap

clean:
	rm -rf $(VENV) build *.egg-info
