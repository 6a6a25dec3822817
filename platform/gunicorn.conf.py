# Gunicorn settings for the web process: `gunicorn -c platform/gunicorn.conf.py config.wsgi:application`.
# Used by systemd/flightdeck-web.service, compose.yaml and `make prod-check`. Gunicorn executes this file by
# path (it is not an importable module). Every value can be set from the environment file.
import os
import sys
from pathlib import Path

# Gunicorn reads this file before it puts the project on sys.path; the project's strict env readers name a
# malformed variable instead of failing with a bare ValueError.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from config.env import env_int, env_str  # noqa: E402

# Loopback only: the reverse proxy (platform/nginx.conf) terminates TLS and forwards here. Containers
# set GUNICORN_BIND=0.0.0.0:8000 because the proxy reaches them over the compose network.
bind = env_str("GUNICORN_BIND", "127.0.0.1:8000")
# Sync workers (one request each; nginx buffers slow clients): the usual 2 × cores + 1 for a Django app
# that mostly waits on PostgreSQL and Redis.
workers = env_int("GUNICORN_WORKERS", 2 * (os.cpu_count() or 1) + 1)
# A request that takes longer than this is killed and its worker replaced (the slowest pages take ~1 s).
timeout = env_int("GUNICORN_TIMEOUT", 60)
# On SIGTERM/HUP, requests in flight get this long to finish.
graceful_timeout = env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Recycle each worker after ~1000 requests to bound slow memory growth; the jitter keeps the workers from
# restarting all at once.
max_requests = env_int("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = env_int("GUNICORN_MAX_REQUESTS_JITTER", 100)
# Worker heartbeat files on tmpfs: a slow disk must not make healthy workers look hung.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# Logs to stdout/stderr, i.e. the journal under systemd and `docker compose logs` in containers.
accesslog = "-"
errorlog = "-"
loglevel = env_str("GUNICORN_LOG_LEVEL", "info")
# The client address as the proxy saw it, and the request's duration in milliseconds.
access_log_format = '%({x-forwarded-for}i)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms'
proc_name = "flightdeck-web"
# No `gunicornc` control socket (gunicorn ≥ 25.1 opens one in $HOME by default): systemd reloads with HUP, and
# every gunicorn of one user would otherwise claim the same socket path.
control_socket_disable = True
