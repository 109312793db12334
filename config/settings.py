"""Segment Studio settings: one file, read from the environment.

Every variable is listed, with a comment, in .env.example; a `.env` file beside manage.py is
read when present. A fresh clone runs with no configuration at all: SQLite under var/, a
secret key and a field-encryption key generated once into var/, the embedded Celery broker.
"""

from __future__ import annotations

import os
from pathlib import Path

import environ
from cryptography.fernet import Fernet
from django.core.management.utils import get_random_secret_key
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")  # optional; silently absent on a fresh clone

# Everything the app writes for itself (database, keys, engine data, embedded broker).
VAR_DIR = Path(env("VAR_DIR", default=str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _generated_once(name: str, make: object) -> str:
    """Read var/<name>, creating it (mode 0600) the first time.

    O_EXCL makes the first writer win when web, worker and beat start at the same moment.
    """
    path = VAR_DIR / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        value = make()  # type: ignore[operator]
        handle.write(value + "\n")
    return value


DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default=None) or _generated_once("secret_key", get_random_secret_key)

# Fernet keys for secrets stored in the database (connection client secrets). Comma-separated:
# the first key encrypts, all keys decrypt (MultiFernet), so a key can be rotated.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[]) or [
    _generated_once("field_encryption_key", lambda: Fernet.generate_key().decode())
]

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "core",
    "connections",
    "jobs",
    "segments",
    "exports",
    "schedules",
    "profiledata",
    "engine",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a login unless its view is marked @login_not_required (Django 5.1+).
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # A NUL in a field never reaches the database: 400 naming the field (core/middleware.py).
    "core.middleware.BadInputMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            # {% partialdef %} everywhere without {% load %}, as in Django 6's core.
            "builtins": ["template_partials.templatetags.partials"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.navigation",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # `make run`: web (threaded), worker and beat write this one file at once. WAL lets readers
    # and the one writer go on together; IMMEDIATE takes the write lock at BEGIN, so a
    # transaction that reads and then writes waits for the lock (up to `timeout` seconds)
    # instead of failing at once with "database is locked"
    # (https://docs.djangoproject.com/en/5.2/ref/databases/#database-is-locked-errors,
    # https://docs.djangoproject.com/en/5.2/ref/databases/#sqlite-transaction-behavior,
    # https://www.sqlite.org/wal.html). synchronous=NORMAL is WAL's durable-on-crash mode.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": env.int("SQLITE_TIMEOUT", default=20),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        **DATABASES["default"].get("OPTIONS", {}),  # options given in DATABASE_URL win
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "core:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns about a missing one
# Serve straight from STATICFILES_DIRS so no collectstatic step is needed to run it
# (https://whitenoise.readthedocs.io/en/stable/django.html#WHITENOISE_USE_FINDERS).
WHITENOISE_USE_FINDERS = True

MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"

# --- Redis, Celery ---------------------------------------------------------------------------
# With REDIS_URL, Redis is Celery's broker and the cache. Without it, an embedded broker in one
# SQLite file under var/broker (config/broker.py says why that one) keeps `make run` working
# with no Redis, and the cache is another SQLite file (config/cache.py).
REDIS_URL = env("REDIS_URL", default="")
BROKER_DIR = VAR_DIR / "broker"

if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # Countdowns must stay well below this (see STYLE.md, habit 4).
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 3600}
    # Redis down is a cache miss there, not a 500 (the job queue says itself that it is down)
    CACHES = {"default": {"BACKEND": "config.cache.ForgivingRedisCache",
                          "LOCATION": REDIS_URL}}
else:
    BROKER_DIR.mkdir(exist_ok=True)
    CELERY_BROKER_URL = f"sqlite:///{BROKER_DIR / 'broker.sqlite3'}"  # config/broker.py
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # how often an idle worker looks for new messages (kombu's default is 1 s; an estimate
        # makes several hops between web, jobs and engine tasks, each waiting this long)
        "polling_interval": 0.1,
    }
    # add() is a lock and incr() a counter for the jobs and the engine's rate limit: atomic
    # across web, worker and beat here as on Redis (Django's file cache is not)
    CACHES = {"default": {"BACKEND": "config.cache.SQLiteCache",
                          "LOCATION": str(VAR_DIR / "cache.sqlite3")}}

CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = (
    Queue("default", Exchange("default"), routing_key="default"),
    Queue("engine", Exchange("engine"), routing_key="engine"),
)
CELERY_TASK_ROUTES = {"engine.tasks.*": {"queue": "engine", "routing_key": "engine"},
                      "engine.tasks_jobs.*": {"queue": "engine", "routing_key": "engine"}}
CELERY_IMPORTS = ("engine.tasks_jobs",)  # autodiscovery finds only tasks.py modules
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_IGNORE_RESULT = True  # a job's truth is its jobs.Job row, never a Celery result
CELERY_RESULT_BACKEND = None
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=25 * 60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=30 * 60)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = TIME_ZONE
# Periodic work, run by `celery beat` (https://docs.celeryq.dev/en/stable/userguide/periodic-tasks.html).
CELERY_BEAT_SCHEDULE = {
    # resumes jobs whose poll was lost (worker killed, broker restarted) and times out the stuck
    "jobs-sweep": {"task": "jobs.tasks.jobs_sweep", "schedule": 60.0},
    # deletes the engine's expired previews (ENGINE_PREVIEW_TTL_SECONDS)
    "engine-previews-expire": {"task": "engine.tasks.previews_expire", "schedule": 300.0},
    # fails Batch Ingestion batches left loading, resends stalled processing ones
    "engine-batches-sweep": {"task": "engine.tasks.batches_sweep", "schedule": 600.0},
    # re-queues (or fails, naming why) engine jobs whose worker stopped (ENGINE_JOB_* below);
    # a sweep not run within its period is dropped, so a worker coming back runs one, not many
    "engine-jobs-sweep": {"task": "engine.tasks.jobs_sweep",
                          "schedule": env.float("ENGINE_JOBS_SWEEP_SECONDS", default=60.0),
                          "options": {"expires": 55.0}},
    # starts the export of a "run, then export" whose segment job finished while nobody listened
    "exports-plans-resume": {"task": "exports.tasks.export_plans_resume", "schedule": 60.0},
    # starts the segment runs (and exports) of the schedules that are due (schedules/tasks.py)
    "schedules-tick": {"task": "schedules.tasks.schedules_tick", "schedule": 60.0},
}
# Polling calls per minute the jobs app may make to one connection (AEP's limits are per
# org; the built-in engine answers 429 beyond ENGINE_RATE_LIMIT per API client).
JOBS_POLL_BUDGET_PER_MINUTE = env.int("JOBS_POLL_BUDGET_PER_MINUTE", default=240)

# --- The built-in engine ------------------------------------------------------------------------
ENGINE_DATA_DIR = Path(env("ENGINE_DATA_DIR", default=str(VAR_DIR / "engine"))).resolve()
# DuckDB's memory limit for ingestion and snapshot builds; beyond it DuckDB spills to disk
# (https://duckdb.org/docs/stable/configuration/overview).
ENGINE_MEMORY_LIMIT = env("ENGINE_MEMORY_LIMIT", default="2GB")
# The engine's REST API: access token lifetime (seconds; IMS tokens live ~24 h), the largest
# request body it reads, and requests per minute per API client (counted in the cache).
ENGINE_TOKEN_SECONDS = env.int("ENGINE_TOKEN_SECONDS", default=86400)
ENGINE_MAX_BODY_BYTES = env.int("ENGINE_MAX_BODY_BYTES", default=1024 * 1024)
# The largest file the Batch Ingestion API takes in one PUT (streamed to disk, never held in
# memory; larger ones get 413). AEP's limit is 512 MB per file
# (https://experienceleague.adobe.com/en/docs/experience-platform/ingestion/batch/overview).
ENGINE_MAX_UPLOAD_BYTES = env.int("ENGINE_MAX_UPLOAD_BYTES", default=512 * 1024 * 1024)
# A batch still loading (no COMPLETE or ABORT) this many hours after its last change is failed
# as abandoned and its uploaded files removed; one processing this many minutes without a change
# (its worker died) is sent to a worker again (engine.tasks.batches_sweep, every 10 minutes).
ENGINE_BATCH_LOADING_HOURS = env.int("ENGINE_BATCH_LOADING_HOURS", default=24)
ENGINE_BATCH_PROCESSING_MINUTES = env.int("ENGINE_BATCH_PROCESSING_MINUTES", default=60)
ENGINE_RATE_LIMIT = env.int("ENGINE_RATE_LIMIT", default=600)
# Seconds a preview/estimate (POST /data/core/ups/preview) is kept; afterwards its GETs answer
# 404 and engine.tasks.previews_expire deletes the row (Adobe documents no retention, §3.5).
ENGINE_PREVIEW_TTL_SECONDS = env.int("ENGINE_PREVIEW_TTL_SECONDS", default=3600)
# Engine jobs that survive their worker (engine/runs.py). A running preview, segment job, export
# job or ingestion batch beats its heartbeat at each progress point and at least every
# ENGINE_JOB_HEARTBEAT_SECONDS; engine.tasks.jobs_sweep (beat, every ENGINE_JOBS_SWEEP_SECONDS)
# sends one whose heartbeat is older than ENGINE_JOB_STALE_SECONDS to a worker again, at most
# ENGINE_JOB_MAX_REQUEUES times, then fails it saying its worker kept stopping; a job waiting
# for a worker for ENGINE_JOB_RESEND_SECONDS is sent again (its message was lost). So a job
# whose worker died is final minutes after a worker is back, not after the broker's
# visibility_timeout (an hour), which stays above CELERY_TASK_TIME_LIMIT on purpose: a
# shorter one would deliver a long task a second time while it still runs.
ENGINE_JOB_HEARTBEAT_SECONDS = env.float("ENGINE_JOB_HEARTBEAT_SECONDS", default=15.0)
ENGINE_JOB_STALE_SECONDS = env.float("ENGINE_JOB_STALE_SECONDS", default=120.0)
ENGINE_JOB_MAX_REQUEUES = env.int("ENGINE_JOB_MAX_REQUEUES", default=2)
ENGINE_JOB_RESEND_SECONDS = env.float("ENGINE_JOB_RESEND_SECONDS", default=600.0)
# Bounded work (issue 15). What the compiled SQL leaves to the Python evaluator gets this many
# seconds and candidate profiles per job, preview or member page (engine.segments
# .EvaluationBudget), then fails with the reason; an API client runs at most this many previews
# and this many segment and export jobs at once, the next one answered 429 with Retry-After
# (engine/api/caps.py), as Adobe's gateway answers.
ENGINE_EVALUATOR_SECONDS = env.float("ENGINE_EVALUATOR_SECONDS", default=20.0)
ENGINE_EVALUATOR_ROWS = env.int("ENGINE_EVALUATOR_ROWS", default=200_000)
ENGINE_CLIENT_MAX_PREVIEWS = env.int("ENGINE_CLIENT_MAX_PREVIEWS", default=20)
ENGINE_CLIENT_MAX_JOBS = env.int("ENGINE_CLIENT_MAX_JOBS", default=10)
ENGINE_CLIENT_RETRY_AFTER_SECONDS = env.int("ENGINE_CLIENT_RETRY_AFTER_SECONDS", default=10)
# Tests only: seconds a job sleeps at a named progress point, e.g. "segment-evaluate=30", so
# that a test can kill its worker mid-job (engine.runs.PAUSE_POINTS lists the points).
ENGINE_JOB_PAUSES = env.dict("ENGINE_JOB_PAUSES", default={})

# Where the dashboard reaches the built-in engine's REST API (bootstrap's "Built-in engine"
# connection). The engine is served by this same web server; in compose, by the web service.
BUILTIN_ENGINE_URL = env("BUILTIN_ENGINE_URL", default="http://127.0.0.1:8000")

# --- E-mail (alerts) ------------------------------------------------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="segment-studio@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
