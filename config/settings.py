"""Flightdeck settings: one module, driven by environment variables.

`make run` needs no variables at all (SQLite under var/, Redis on loopback, DEBUG on).
`FLIGHTDECK_ENV=production` switches on the hardened mode that passes `check --deploy`.
"""
import socket
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("FLIGHTDECK_VAR_DIR", str(BASE_DIR / "var")))

ENVIRONMENT = env_str("FLIGHTDECK_ENV", "development")
if ENVIRONMENT not in {"development", "production"}:
    raise ImproperlyConfigured(f"FLIGHTDECK_ENV must be 'development' or 'production', got {ENVIRONMENT!r}")
PRODUCTION = ENVIRONMENT == "production"

DEBUG = env_bool("DEBUG", not PRODUCTION)
_DEV_SECRET = "dev-only-insecure-secret-key-do-not-use-in-production-0123456789abcdef"
SECRET_KEY = env_str("SECRET_KEY", "" if PRODUCTION else _DEV_SECRET)
if PRODUCTION and len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("SECRET_KEY must be set to at least 50 random characters in production")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files (no CDN)
    "django_filters",
    "core",
    "accounts",
    "ideas",
    "experiments",
    "compute",
    "operations",
    "inbox",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "core.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "operations.middleware.RequestMetricsMiddleware",  # latencies for /metrics; after WhiteNoise: no static files
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "inbox.context_processors.unread",
            ],
        },
    },
]

# SQLite by default, in WAL mode so the web process, worker and beat can share it.
_DATABASE = dj_database_url.parse(
    env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'flightdeck.sqlite3'}"),
    # Persistent connections: a new PostgreSQL connection costs a few ms of every request otherwise. The
    # health check re-opens one the server closed (restart, idle timeout) instead of failing the request.
    conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
    conn_health_checks=True,
)
_SQLITE_OPTIONS = {
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
    "transaction_mode": "IMMEDIATE",
}
# PostgreSQL's JIT compiles queries whose *estimated* cost is high; on list pages with subquery filters that
# estimate is far off, and compiling took ~270 ms of a 460 ms request (benchmarks/experiments_runs_explorer.py).
_POSTGRES_OPTIONS = {"options": "-c jit=off"}
DATABASES = {
    "default": {**_DATABASE, "OPTIONS": _SQLITE_OPTIONS}
    if _DATABASE["ENGINE"] == "django.db.backends.sqlite3"
    else {**_DATABASE, "OPTIONS": {**_DATABASE.get("OPTIONS", {}), **_POSTGRES_OPTIONS}}
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("FLIGHTDECK_TIME_ZONE", "Europe/Berlin")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "core.vendor_static.PlotlyFinder",
]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

# RedisCache hands OPTIONS to its connection pool: a cache call on a page's path (chart caching) waits at most a
# second for a Redis that is down or hung, then raises (callers draw uncached).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "flightdeck",
        "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 1.0},
    }
}

# Celery: late acks + prefetch 1 so a crashed worker's short task (mail, charging) is redelivered. Runs are the
# exception: `execute_attempt` acks early by design, and a run whose worker died is found by its expired lease
# in the database (the reconciler re-queues it); the visibility timeout is explicit for the same reason.
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("FLIGHTDECK_VISIBILITY_TIMEOUT", 3600)}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE

# Large enough that an oversized text field (a 3 MB summary) reaches its form and is refused there, on a page that
# keeps what was typed; bodies beyond it get core.views.bad_request's page.
DATA_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",  # first: anonymous requests get 401 + a Bearer challenge
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["accounts.ratelimit.ApiRateThrottle"],
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    # DRF's three, with JSON bodies refused (400) when a key repeats, when absurdly deep or carrying text the database cannot store.
    "DEFAULT_PARSER_CLASSES": ["core.parsers.SafeJSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Flightdeck API",
    "DESCRIPTION": "Ideas, experiments and compute for the hybrid MoE pretraining team.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # /api/v1/docs/ loads Swagger UI from this site's static files (drf-spectacular-sidecar), never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One name per shared choice set, so the schema has no duplicate enums.
    "ENUM_NAME_OVERRIDES": {
        "IdeaStatusEnum": "ideas.lifecycle.Status",
        "RunStatusEnum": "experiments.models.RunStatus",  # runs and attempts
        "ApiTokenStateEnum": "accounts.models.TokenState",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",  # the default, kept
        "accounts.schema.add_throttled_responses",  # every operation may answer 429
        "core.schema_hooks.add_framework_responses",  # 401, 404 for a bad page, 415 wherever they apply
    ],
}

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "flightdeck@localhost")
# SMTP (with EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend). A timeout, so a hung mail server fails
# the send and Celery retries it, instead of the task hanging until its time limit.
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
# Where links in notification email point (scheme, host and port, no trailing slash).
FLIGHTDECK_SITE_URL = env_str("FLIGHTDECK_SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# Outgoing webhooks: may they post to private, loopback or link-local addresses (a receiver on the team's own
# network)? Off in production, where a webhook must not become a way into the workers' network.
FLIGHTDECK_WEBHOOK_ALLOW_PRIVATE = env_bool("FLIGHTDECK_WEBHOOK_ALLOW_PRIVATE", not PRODUCTION)
# The first retry of a failed webhook delivery waits this long; each later one twice as long (at most 10 min).
FLIGHTDECK_WEBHOOK_RETRY_SECONDS = env_int("FLIGHTDECK_WEBHOOK_RETRY_SECONDS", 10)

# `seed_demo` calls each app's seeder in this order (later apps build on earlier ones' data).
FLIGHTDECK_DEMO_SEEDERS = [
    "ideas.demo.seed",
    "experiments.demo.seed",
    "compute.demo.seed",  # last: it charges usage to ideas and areas seeded before
]
# Templates rendered as extra panels on the idea detail page; each gets the page context, including `idea`.
FLIGHTDECK_IDEA_PANELS = [
    "experiments/idea_panel.html",  # "Run ablation" and the idea's studies
    "compute/idea_panel.html",
]

FLIGHTDECK_RUNS_DIR = Path(env_str("FLIGHTDECK_RUNS_DIR", str(VAR_DIR / "runs")))

# experiments: where runs execute and how their leases are kept (see experiments/execution/supervisor.py).
FLIGHTDECK_HOST = env_str("FLIGHTDECK_HOST", socket.gethostname())
FLIGHTDECK_GPUS = env_list("FLIGHTDECK_GPUS", [])  # GPU indices on this host, one slot each
FLIGHTDECK_SLOTS = env_int("FLIGHTDECK_SLOTS", 2)  # CPU slots when FLIGHTDECK_GPUS is empty
FLIGHTDECK_LEASE_SECONDS = env_int("FLIGHTDECK_LEASE_SECONDS", 60)
FLIGHTDECK_MONITOR_SECONDS = env_int("FLIGHTDECK_MONITOR_SECONDS", 2)
FLIGHTDECK_CANCEL_GRACE_SECONDS = env_int("FLIGHTDECK_CANCEL_GRACE_SECONDS", 30)
FLIGHTDECK_REQUEUE_AFTER_SECONDS = env_int("FLIGHTDECK_REQUEUE_AFTER_SECONDS", 120)
FLIGHTDECK_RECONCILE_SECONDS = env_int("FLIGHTDECK_RECONCILE_SECONDS", 30)
FLIGHTDECK_WANDB_MODE = env_str("FLIGHTDECK_WANDB_MODE", "offline")
FLIGHTDECK_SLURM = {
    "executor": env_str("FLIGHTDECK_SLURM_EXECUTOR", "slurm"),  # "local" runs jobs via submitit's LocalExecutor
    "folder": Path(env_str("FLIGHTDECK_SLURM_FOLDER", str(VAR_DIR / "slurm"))),
    "partition": env_str("FLIGHTDECK_SLURM_PARTITION", ""),
    "timeout_min": env_int("FLIGHTDECK_SLURM_TIMEOUT_MIN", 24 * 60),
    "gpus_per_node": env_int("FLIGHTDECK_SLURM_GPUS_PER_NODE", 1),  # 0: ask for no GRES (a CPU partition)
    "account": env_str("FLIGHTDECK_SLURM_ACCOUNT", ""),
    # SIGUSR2 this long before --time: the trainer checkpoints and a new attempt resumes the run.
    "signal_delay_s": env_int("FLIGHTDECK_SLURM_SIGNAL_DELAY_S", 120),
    # The allocated TRES that GPU-hours are charged for, read from sacct's AllocTRES ("cpu" on a CPU cluster).
    "charge_tres": env_str("FLIGHTDECK_SLURM_CHARGE_TRES", "gres/gpu"),
}

# compute: review cycles and GPU-hour budgets (see compute/cycles.py for the phase schedule).
FLIGHTDECK_COMPUTE_CYCLE_ANCHOR = env_str("FLIGHTDECK_COMPUTE_CYCLE_ANCHOR", "2024-01-01")  # a Monday; cycles start every 14 days from it
FLIGHTDECK_COMPUTE_REVIEW_DAYS = env_int("FLIGHTDECK_COMPUTE_REVIEW_DAYS", 3)  # requests freeze this many days before a cycle starts
FLIGHTDECK_COMPUTE_TARGET_UTILISATION = env_str("FLIGHTDECK_COMPUTE_TARGET_UTILISATION", "0.85")  # share of capacity budgeted, checked by compute.E003
FLIGHTDECK_COMPUTE_REVIEWER_GROUP = env_str("FLIGHTDECK_COMPUTE_REVIEWER_GROUP", "reviewers")
# The module that tells the review queue what a request's evidence links show (compute/evidence.py).
FLIGHTDECK_COMPUTE_EVIDENCE = "experiments.evidence"
# The function that warns an idea's submitter when a recipe patch changes nothing against every current baseline
# (ideas/patch_warnings.py); baselines live in experiments, which ideas may not import.
FLIGHTDECK_IDEA_PATCH_WARNINGS = "experiments.baseline_checks.patch_warnings"
# experiments ↔ compute (experiments/budget.py): the pool runs are charged to (CPU slots count as one GPU each;
# with no pools defined, launches are not budgeted), and how often a running attempt is charged.
FLIGHTDECK_DEFAULT_POOL = env_str("FLIGHTDECK_DEFAULT_POOL", "h100")
FLIGHTDECK_CHARGE_SECONDS = env_int("FLIGHTDECK_CHARGE_SECONDS", 300)
FLIGHTDECK_COMPUTE_SCHEDULE_SECONDS = env_int("FLIGHTDECK_COMPUTE_SCHEDULE_SECONDS", 300)  # cycle phase changes
# The largest run a worker can hold (experiments/planning.py refuses bigger arms at launch, naming the limit):
# parameters (about 16 bytes each with AdamW in fp32 state: 4e9 fills an 80 GB GPU) and tokens per step.
FLIGHTDECK_MAX_RUN_PARAMETERS = env_int("FLIGHTDECK_MAX_RUN_PARAMETERS", 4_000_000_000)
FLIGHTDECK_MAX_TOKENS_PER_STEP = env_int("FLIGHTDECK_MAX_TOKENS_PER_STEP", 4_194_304)

# operations: /healthz, /readyz, /metrics (operations/health.py, operations/metrics.py). Workers and beat write
# heartbeats; one is stale after FLIGHTDECK_HEARTBEAT_STALE_FACTOR periods without a new one.
FLIGHTDECK_WORKER_HEARTBEAT_SECONDS = env_int("FLIGHTDECK_WORKER_HEARTBEAT_SECONDS", 10)
FLIGHTDECK_BEAT_HEARTBEAT_SECONDS = env_int("FLIGHTDECK_BEAT_HEARTBEAT_SECONDS", 30)
FLIGHTDECK_HEARTBEAT_STALE_FACTOR = env_int("FLIGHTDECK_HEARTBEAT_STALE_FACTOR", 3)
FLIGHTDECK_METRICS_TOKEN = env_str("FLIGHTDECK_METRICS_TOKEN", "")  # empty: /metrics for staff sessions only

# accounts: rate limits, "N/<window>" with the window in s, m or h (accounts/ratelimit.py; counted in Redis, so
# they hold across web processes). Sign-in counts failed attempts only.
FLIGHTDECK_RATELIMITS = {
    "login_username": env_str("FLIGHTDECK_RATELIMIT_LOGIN_USERNAME", "10/15m"),
    "login_ip": env_str("FLIGHTDECK_RATELIMIT_LOGIN_IP", "50/15m"),  # higher: an office shares one address
    # Password reset counts every request (each may send an email), per address typed and per client address.
    "password_reset_email": env_str("FLIGHTDECK_RATELIMIT_PASSWORD_RESET_EMAIL", "3/1h"),
    "password_reset_ip": env_str("FLIGHTDECK_RATELIMIT_PASSWORD_RESET_IP", "20/1h"),
    "api_user": env_str("FLIGHTDECK_RATELIMIT_API_USER", "600/1m"),
    "api_anon": env_str("FLIGHTDECK_RATELIMIT_API_ANON", "60/1m"),
}
# Reverse proxies in front that append to X-Forwarded-For (1 behind nginx); 0 = trust no X-Forwarded-For.
FLIGHTDECK_TRUSTED_PROXIES = env_int("FLIGHTDECK_TRUSTED_PROXIES", 0)

# Celery beat: periodic tasks of every app (each task re-reads the database, so a missed beat only delays).
CELERY_BEAT_SCHEDULE = {
    "experiments-reconcile": {
        "task": "experiments.tasks.reconcile",
        "schedule": FLIGHTDECK_RECONCILE_SECONDS,
    },
    "compute-cycle-schedule": {
        "task": "compute.tasks.advance_cycles",
        "schedule": FLIGHTDECK_COMPUTE_SCHEDULE_SECONDS,
    },
    "inbox-send-outbox": {  # events that Redis could not take when they happened
        "task": "inbox.tasks.send_outbox",
        "schedule": 60,
        "options": {"expires": 60},
    },
    "operations-beat-heartbeat": {
        "task": "operations.tasks.beat_heartbeat",
        "schedule": FLIGHTDECK_BEAT_HEARTBEAT_SECONDS,
        "options": {"expires": FLIGHTDECK_BEAT_HEARTBEAT_SECONDS},  # no pile-up while no worker takes them
    },
}

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # pages send the token from the template (hx-headers), no script reads the cookie
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
# Sent on every response unless DEBUG (core/csp.py says why each part is what it is); empty = none.
FLIGHTDECK_CONTENT_SECURITY_POLICY = env_str("FLIGHTDECK_CONTENT_SECURITY_POLICY", "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data: blob:",
    "font-src 'self' data:", "connect-src 'self'", "object-src 'none'", "base-uri 'self'", "form-action 'self'",
    "frame-ancestors 'none'",
]))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "django.server": {"()": "django.utils.log.ServerFormatter", "format": "[{server_time}] {message}", "style": "{"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "django.server": {"class": "logging.StreamHandler", "formatter": "django.server"},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # Django's own console handler (DEBUG only) would print every request warning a second time next to the
    # root's, so "django" only propagates; configuring it resets its children, so runserver's request lines
    # (django.server) get Django's handler and format back here.
    "loggers": {
        "django": {"handlers": [], "level": env_str("LOG_LEVEL", "INFO"), "propagate": True},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
    },
}
