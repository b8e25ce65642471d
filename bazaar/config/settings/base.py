"""Bazaar settings, read from the environment (see .env.example): what every process runs (server, worker,
CLI, container). The tests run ``bazaar.config.settings.test``, which starts from this module.

Every environment variable is parsed here, once, with django-environ; apps read ``django.conf.settings`` through
their ``conf.py`` accessors. Embedded default: SQLite file, a SQLite-file cache, Celery tasks run eagerly.
Set DATABASE_URL / REDIS_URL / CELERY_BROKER_URL to run on PostgreSQL, Redis and a real broker.
"""

from __future__ import annotations

import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import django_stubs_ext
import environ
from django.core.exceptions import ImproperlyConfigured

from bazaar.core import dburl, redisurl

BASE_DIR = Path(__file__).resolve().parents[3]
TEST_SETTINGS = "bazaar.config.settings.test"

# Generic Django classes subscriptable at runtime (``admin.ModelAdmin[Model]``), as `mypy --strict` wants them.
django_stubs_ext.monkeypatch()

env = environ.Env()
VAR_DIR = Path(env.str("BAZAAR_VAR_DIR", default=str(BASE_DIR / "var")))
# `.env` (written by `make run`) configures the processes a person starts, never a test run: the test settings
# (and the processes a test starts, which inherit DJANGO_SETTINGS_MODULE) ignore it.
if (BASE_DIR / ".env").exists() and env.str("DJANGO_SETTINGS_MODULE", default="") != TEST_SETTINGS:
    env.read_env(str(BASE_DIR / ".env"))

DEBUG = env.bool("DJANGO_DEBUG", default=True)

_INSECURE_DEV_KEY = "django-insecure-bazaar-development-key-only-for-local-use-0123456789"
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is false.")
    SECRET_KEY = _INSECURE_DEV_KEY

ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=[] if not DEBUG else ["127.0.0.1", "localhost", "[::1]"]
)
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must be set when DJANGO_DEBUG is false.")
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "ninja",
    "bazaar.core",
    "bazaar.accounts",
    "bazaar.storefront",
    "bazaar.rentals",
    "bazaar.trading",
    "bazaar.kvstore",
]

MIDDLEWARE = [
    "bazaar.core.middleware.SecurityHeadersMiddleware",
    "bazaar.core.middleware.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "bazaar.core.middleware.BodySizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "bazaar.core.middleware.ApiNotFoundMiddleware",
]

ROOT_URLCONF = "bazaar.config.urls"
WSGI_APPLICATION = "bazaar.config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "bazaar" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

# --- Database -------------------------------------------------------------------------------------
VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dburl.socket_host(env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'bazaar.sqlite3'}"))
}
DB_VENDOR = "postgresql" if "postgres" in DATABASES["default"]["ENGINE"] else "sqlite"
DATABASE_STATEMENT_TIMEOUT = env.float("DATABASE_STATEMENT_TIMEOUT", default=5.0)
DATABASE_CLIENT_TIMEOUT = env.float("DATABASE_CLIENT_TIMEOUT", default=DATABASE_STATEMENT_TIMEOUT + 1.0)
DATABASE_BULK_STATEMENT_TIMEOUT = env.int("DATABASE_BULK_STATEMENT_TIMEOUT", default=900)
if {"migrate", "sqlmigrate", "dbshell"} & set(sys.argv[1:3]):
    # Schema changes may rebuild a large table or index: the bulk timeout, no client deadline.
    DATABASE_STATEMENT_TIMEOUT, DATABASE_CLIENT_TIMEOUT = float(DATABASE_BULK_STATEMENT_TIMEOUT), 0.0
DATABASE_BREAKER_SECONDS = env.float("DATABASE_BREAKER_SECONDS", default=1.0)
READYZ_TIMEOUT = env.float("READYZ_TIMEOUT", default=1.0)
# Background jobs (bazaar.core.jobs): heartbeat period, when a silent run counts as dead, how long files stay.
JOBS_HEARTBEAT_SECONDS = env.float("JOBS_HEARTBEAT_SECONDS", default=10.0)
JOBS_STALE_SECONDS = env.int("JOBS_STALE_SECONDS", default=120)
JOBS_RETENTION_SECONDS = env.int("JOBS_RETENTION_SECONDS", default=7 * 24 * 3600)
# Hardening: /metrics for Prometheus with `Authorization: Bearer METRICS_TOKEN`, or (no token set) only from these
# client addresses; one Content-Security-Policy on every response (no page has an inline script or style).
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])
CONTENT_SECURITY_POLICY = env.str(
    "CONTENT_SECURITY_POLICY",
    default=(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
)
if DB_VENDOR == "postgresql":
    DATABASES["default"]["ENGINE"] = "bazaar.core.postgres"  # Django's, with the guards of bazaar.core.db
    DATABASES["default"].setdefault("OPTIONS", {})
    # Fail fast while PostgreSQL is down instead of hanging the worker.
    DATABASES["default"]["OPTIONS"].setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=3)
    )
    # A sick database fails fast (docs/design-notes.md, "A sick database"): PostgreSQL ends a statement after
    # DATABASE_STATEMENT_TIMEOUT seconds, TCP keepalives find a vanished peer, and bazaar.core.db cuts a
    # statement after DATABASE_CLIENT_TIMEOUT when the server cannot answer at all (paused, frozen disk).
    DATABASES["default"]["OPTIONS"].update(
        {
            "options": f"-c statement_timeout={int(DATABASE_STATEMENT_TIMEOUT * 1000)}",
            "keepalives": 1,
            "keepalives_idle": env.int("DATABASE_KEEPALIVES_IDLE", default=10),
            "keepalives_interval": env.int("DATABASE_KEEPALIVES_INTERVAL", default=5),
            "keepalives_count": env.int("DATABASE_KEEPALIVES_COUNT", default=3),
        }
    )
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    # No per-request health check (an extra round trip on every request): a connection broken by a database
    # restart fails one query, is marked unusable and is replaced at the end of that request.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DATABASE_CONN_HEALTH_CHECKS", default=False)
    # Behind PgBouncer in transaction mode a named cursor cannot outlive its transaction (Django's advice).
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.bool(
        "DATABASE_DISABLE_SERVER_SIDE_CURSORS", default=False
    )
    DATABASES["default"]["TEST"] = {"NAME": env.str("DATABASE_TEST_NAME", default=None)}
    # A streaming replica for the reads marked replica-safe (bazaar.core.replica); everything else, the primary.
    DATABASE_REPLICA_URL = env.str("DATABASE_REPLICA_URL", default="")
    if DATABASE_REPLICA_URL:
        _replica = dburl.socket_host(env.db_url_config(DATABASE_REPLICA_URL))
        DATABASES["replica"] = {
            **DATABASES["default"],
            **{k: _replica[k] for k in ("NAME", "USER", "PASSWORD", "HOST", "PORT") if k in _replica},
            "OPTIONS": dict(DATABASES["default"]["OPTIONS"]),
            "TEST": {"MIRROR": "default"},
        }
        DATABASE_ROUTERS = ["bazaar.core.replica.Router"]
else:
    DATABASES["default"].setdefault("OPTIONS", {})
    # WAL + a busy timeout let the embedded server take concurrent readers and a writer.
    DATABASES["default"]["OPTIONS"].update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
# Hot statements sent through bazaar.core.sql.cursor() are prepared once per PostgreSQL connection; switch it
# off behind a pooler that cannot hold prepared statements (PgBouncer in transaction mode).
DATABASE_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)
# A replica that failed is not asked again for this long (its reads go to the primary meanwhile).
DATABASE_REPLICA_RETRY_SECONDS = env.float("DATABASE_REPLICA_RETRY_SECONDS", default=5.0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# --- Cache ----------------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CACHE_SOCKET_TIMEOUT = env.float("CACHE_SOCKET_TIMEOUT", default=0.25)
# REDIS_URL may name Redis Sentinels instead of one server: sentinel://h1:26379,h2:26379/<service>[/<db>]
# (bazaar.core.redisurl); the cache, the rate limiter and a Redis broker then follow a failover (docs/design-notes.md).
CACHES: dict[str, dict[str, Any]]
if redisurl.is_sentinel(REDIS_URL):
    _sentinel = redisurl.parse_sentinel(REDIS_URL)
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://{_sentinel.service}/{_sentinel.db}",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.SentinelClient",
                "CONNECTION_POOL_CLASS": "redis.sentinel.SentinelConnectionPool",
                "SENTINELS": list(_sentinel.sentinels),
                "SOCKET_CONNECT_TIMEOUT": CACHE_SOCKET_TIMEOUT,
                "SOCKET_TIMEOUT": CACHE_SOCKET_TIMEOUT,
            },
            "KEY_PREFIX": "bazaar",
        }
    }
elif REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": CACHE_SOCKET_TIMEOUT,
                "SOCKET_TIMEOUT": CACHE_SOCKET_TIMEOUT,
                # A cache outage must never become a 500: core.cache fails open on top of this.
                "IGNORE_EXCEPTIONS": False,
            },
            "KEY_PREFIX": "bazaar",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "bazaar",
            "OPTIONS": {"MAX_ENTRIES": 20000},
        }
    }
# The embedded default's cache (no REDIS_URL): one SQLite file shared by every process on this machine (server
# workers, Celery, the CLI), so a write from any of them is seen by all (bazaar.core.cache.backends.SqliteBackend).
# Django's own cache above is not used by Bazaar's code.
CACHE_SQLITE_PATH = env.str("CACHE_SQLITE_PATH", default=str(VAR_DIR / "cache.sqlite3"))
BAZAAR_CACHE_PREFIX = env.str("BAZAAR_CACHE_PREFIX", default="bazaar")
CACHE_DEFAULT_TTL = env.int("CACHE_DEFAULT_TTL", default=900)
CACHE_BREAKER_SECONDS = env.float("CACHE_BREAKER_SECONDS", default=1.0)
# Surfaces (names from core.surfaces, e.g. "trading.pokemon_json") built on every request and never stored: only for
# measuring the uncached cost of a page in a benchmark. Empty in production.
CACHE_BYPASS_SURFACES = env.list("CACHE_BYPASS_SURFACES", default=[])
# nginx edge cache in front of the anonymous cached pages (bazaar.core.edge): where to send PURGE requests
# after a write commits. Unset = no edge cache, nothing is purged.
EDGE_PURGE_URL = env.str("EDGE_PURGE_URL", default="")
EDGE_PURGE_TIMEOUT = env.float("EDGE_PURGE_TIMEOUT", default=0.5)
EDGE_PURGE_DELAY = env.float("EDGE_PURGE_DELAY", default=1.0)

# Sessions in the database: they must survive a cache outage.
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# --- Celery ---------------------------------------------------------------------------------------
# CELERY_BROKER_SENTINEL_URL: the sentinel:// broker address as given, kept when CELERY_BROKER_URL is respelled below.
CELERY_BROKER_URL = env.str("CELERY_BROKER_SENTINEL_URL", default="") or env.str(
    "CELERY_BROKER_URL", default=""
)
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=None) or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis/SQS brokers redeliver an unacknowledged task (a worker killed mid-task) only after this many seconds
# (kombu's default is an hour). Longer than the longest task: a 1M-row import takes well under a minute.
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=900)
}
# A Redis broker or result backend behind Sentinel: the same sentinel:// form as REDIS_URL, handed to kombu in its
# own spelling with the service as master_name (kombu asks the sentinels again on every reconnect).
if redisurl.is_sentinel(CELERY_BROKER_URL):
    _broker = redisurl.parse_sentinel(CELERY_BROKER_URL)
    os.environ["CELERY_BROKER_SENTINEL_URL"] = (
        CELERY_BROKER_URL  # processes started from this one parse it again
    )
    CELERY_BROKER_URL = _broker.kombu_url()
    CELERY_BROKER_TRANSPORT_OPTIONS["master_name"] = _broker.service
    # Celery reads CELERY_BROKER_URL from the environment before its settings: it must see kombu's spelling.
    os.environ["CELERY_BROKER_URL"] = CELERY_BROKER_URL
if CELERY_RESULT_BACKEND and redisurl.is_sentinel(CELERY_RESULT_BACKEND):
    _results = redisurl.parse_sentinel(CELERY_RESULT_BACKEND)
    CELERY_RESULT_BACKEND = _results.kombu_url()
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"master_name": _results.service}
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="bazaar")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {}  # apps add entries in their AppConfig.ready()

# --- E-mail ---------------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Bazaar <noreply@bazaar.local>")

# --- Auth -----------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"
LOGIN_THROTTLE_PER_ACCOUNT = env.int("LOGIN_THROTTLE_PER_ACCOUNT", default=5)
LOGIN_THROTTLE_PER_IP = env.int("LOGIN_THROTTLE_PER_IP", default=20)
LOGIN_THROTTLE_WINDOW = env.int("LOGIN_THROTTLE_WINDOW", default=900)
# Proxies (addresses or networks) whose X-Forwarded-For is believed for the client address (login throttling):
# behind nginx every request comes from nginx's address, and without this one client could lock out everyone.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])

# --- Limits and API -------------------------------------------------------------------------------
MAX_REQUEST_BODY_BYTES = env.int("MAX_REQUEST_BODY_BYTES", default=2 * 1024 * 1024)
MAX_UPLOAD_BYTES = env.int("MAX_UPLOAD_BYTES", default=200 * 1024 * 1024)
#: A product photo (storefront): stated on the form, checked by the service, enforced on the body by middleware.
IMAGE_UPLOAD_MAX_BYTES = env.int("IMAGE_UPLOAD_MAX_BYTES", default=5 * 1024 * 1024)
#: The public address of the site, for links that leave it (e-mails, the share link, the QR code).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
API_MAX_LIMIT = env.int("API_MAX_LIMIT", default=200)
API_DEFAULT_LIMIT = env.int("API_DEFAULT_LIMIT", default=50)

# --- Static and media -----------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "bazaar" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_MAX_AGE = 3600
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Security (production) ------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
# Behind TLS (the default for production) cookies are secure and HTTP redirects to HTTPS. `make run` serves plain
# http on 127.0.0.1 and says so with DJANGO_HTTPS=false.
HTTPS = env.bool("DJANGO_HTTPS", default=not DEBUG)
if HTTPS:
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REFERRER_POLICY = "same-origin"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="WARNING")},
    "loggers": {"bazaar": {"level": env.str("LOG_LEVEL", default="INFO"), "propagate": True}},
}

# --- Apps (read through each app's conf.py accessors, so tests can override them with ``settings``) -------------
# storefront
STOREFRONT_CACHE_ENABLED = env.bool(
    "STOREFRONT_CACHE_ENABLED", default=True
)  # false only to measure uncached
STOREFRONT_PAGE_TTL = env.int("STOREFRONT_PAGE_TTL", default=900)
STOREFRONT_LOW_STOCK = env.int("STOREFRONT_LOW_STOCK", default=5)
STOREFRONT_MAX_ORDER_LINES = env.int("STOREFRONT_MAX_ORDER_LINES", default=50)
STOREFRONT_MAX_QUANTITY = env.int("STOREFRONT_MAX_QUANTITY", default=1000)
# rentals
RENTALS_MAX_OPEN_RENTALS = env.int("RENTALS_MAX_OPEN_RENTALS", default=5)
RENTALS_MAX_BALANCE = Decimal(env.str("RENTALS_MAX_BALANCE", default="20.00"))
RENTALS_MAX_RENEWALS = env.int("RENTALS_MAX_RENEWALS", default=2)
RENTALS_REMINDER_INTERVAL = env.int("RENTALS_REMINDER_INTERVAL", default=3600)
RENTALS_EXPORT_DIR = env.str("RENTALS_EXPORT_DIR", default="rentals/exports")  # under MEDIA_ROOT
RENTALS_CATALOGUE_TTL = env.int("RENTALS_CATALOGUE_TTL", default=900)
RENTALS_HOLD_PICKUP_DAYS = env.int("RENTALS_HOLD_PICKUP_DAYS", default=7)
# trading
TRADING_OFFER_TTL_SECONDS = env.int("TRADING_OFFER_TTL_SECONDS", default=7 * 24 * 3600)
TRADING_IMPORT_MAX_BYTES = env.int("TRADING_IMPORT_MAX_BYTES", default=150 * 1024 * 1024)
TRADING_IMPORT_ASYNC_BYTES = env.int("TRADING_IMPORT_ASYNC_BYTES", default=1024 * 1024)
TRADING_IMPORT_ERROR_LIMIT = env.int("TRADING_IMPORT_ERROR_LIMIT", default=100)
TRADING_EXCHANGE_RETRIES = env.int("TRADING_EXCHANGE_RETRIES", default=1)
TRADING_IMPORT_DIR = env.str("TRADING_IMPORT_DIR", default="")  # empty: MEDIA_ROOT/imports
TRADING_PAGE_SIZE = env.int("TRADING_PAGE_SIZE", default=50)
TRADING_IMPORT_PREVIEW_ROWS = env.int("TRADING_IMPORT_PREVIEW_ROWS", default=100_000)
# kvstore
KVSTORE_MAX_KEY_LENGTH = env.int("KVSTORE_MAX_KEY_LENGTH", default=256)
KVSTORE_MAX_VALUE_BYTES = env.int("KVSTORE_MAX_VALUE_BYTES", default=64 * 1024)
KVSTORE_MAX_TTL = env.int("KVSTORE_MAX_TTL", default=365 * 24 * 3600)
KVSTORE_MAX_BATCH_OPS = env.int("KVSTORE_MAX_BATCH_OPS", default=100)
KVSTORE_MAX_LIST_LIMIT = env.int("KVSTORE_MAX_LIST_LIMIT", default=1000)
KVSTORE_APIKEY_FLAG_TTL = env.int("KVSTORE_APIKEY_FLAG_TTL", default=300)
KVSTORE_PURGE_INTERVAL = env.int("KVSTORE_PURGE_INTERVAL", default=60)
KVSTORE_PURGE_BATCH = env.int("KVSTORE_PURGE_BATCH", default=1000)
KVSTORE_CACHE_TTL = env.int("KVSTORE_CACHE_TTL", default=900)
KVSTORE_COMPACT_INTERVAL = env.int("KVSTORE_COMPACT_INTERVAL", default=300)
KVSTORE_MAX_HISTORY_LIMIT = env.int("KVSTORE_MAX_HISTORY_LIMIT", default=1000)
KVSTORE_WATCH_POLL_MS = env.int("KVSTORE_WATCH_POLL_MS", default=100)
KVSTORE_WATCH_MAX_WAITING = env.int("KVSTORE_WATCH_MAX_WAITING", default=2)
KVSTORE_WATCH_SERVER_THREADS = env.int("KVSTORE_WATCH_SERVER_THREADS", default=4)
KVSTORE_WATCH_SERVER_MAX = env.int("KVSTORE_WATCH_SERVER_MAX", default=10000)
KVSTORE_WATCH_STREAM_SECONDS = env.int("KVSTORE_WATCH_STREAM_SECONDS", default=60)
