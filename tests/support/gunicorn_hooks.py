"""gunicorn configuration of the test fixture (`gunicorn --config python:tests.support.gunicorn_hooks`):
production's settings from platform/gunicorn.conf.py, plus a hook that says when a worker is ready.
The fixture's command-line flags (bind, workers, threads, …) override the file's values.

gunicorn only logs "Booting worker" at fork time, before the worker imports Django; `post_worker_init`
logs when a worker has loaded the application and is about to accept requests, so tests can wait for that.
"""
import runpy
from pathlib import Path

from gunicorn.config import KNOWN_SETTINGS

PRODUCTION_CONFIG = Path(__file__).resolve().parents[2] / "platform" / "gunicorn.conf.py"
READY_MESSAGE = "Worker ready (pid: %s)"

_production = runpy.run_path(str(PRODUCTION_CONFIG))
globals().update({setting.name: _production[setting.name] for setting in KNOWN_SETTINGS
                  if setting.name in _production})


def post_worker_init(worker) -> None:
    worker.log.info(READY_MESSAGE, worker.pid)
