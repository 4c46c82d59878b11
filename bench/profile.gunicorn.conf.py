"""gunicorn.conf.py plus a cProfile of every request, for `bench/profile_requests.py`.

Each worker thread keeps one profiler, switched on only while gunicorn handles a request
(pre_request to post_request run in the request's own thread under every worker class), so
the profile holds request work and nothing of the idle loop. A worker writes its profiles
into $TASKDRIVER_PROFILE_DIR when it exits.
"""

import cProfile
import os
import runpy
import threading
from pathlib import Path

globals().update({name: value for name, value in runpy.run_path(
    str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py")).items()
    if not name.startswith("__")})

_profiles: list[cProfile.Profile] = []
_local = threading.local()


def pre_request(worker, req):  # noqa: ARG001 - gunicorn's hook signature
    profile = getattr(_local, "profile", None)
    if profile is None:
        profile = _local.profile = cProfile.Profile()
        _profiles.append(profile)
    profile.enable()


def post_request(worker, req, environ, resp):  # noqa: ARG001
    _local.profile.disable()


def worker_exit(server, worker):  # noqa: ARG001
    for number, profile in enumerate(_profiles):
        profile.dump_stats(os.path.join(os.environ["TASKDRIVER_PROFILE_DIR"],
                                        f"{os.getpid()}-{number}.prof"))
