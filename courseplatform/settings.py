"""Settings for courseplatform.

Everything that differs between a laptop and production comes from the environment:
DATABASE_URL, CELERY_BROKER_URL, SECRET_KEY, DEBUG, ALLOWED_HOSTS, MEDIA_ROOT.
Without them the site runs on embedded defaults (SQLite and kombu's file-system
broker under var/), so `make run` needs no service installed.
"""
from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("COURSEPLATFORM_VAR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
# A dashboard panel or gradebook provider that raises fails the request (tests set it too); in
# production it is logged and left out (courseplatform/core/hooks.py).
HOOKS_FAIL_LOUDLY = env_bool("HOOKS_FAIL_LOUDLY", DEBUG)

_DEV_SECRET = "dev-insecure-secret-key-only-for-local-runs-0123456789abcdef"
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and not env_bool("COURSEPLATFORM_ALLOW_DEV_SECRET", False):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment, or run with DEBUG=1 for local development."
        )
    SECRET_KEY = _DEV_SECRET

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "ninja",  # django-ninja's Swagger page and its static assets (served locally, no CDN)
    "axes",
    # Our apps, from the bottom up. core is the shared infrastructure (hooks, Markdown, CSV, CSP, time
    # zones): it imports no app, and discovers the apps' hook modules at start-up. courses holds what
    # every feature builds on (courses, roles, memberships, sessions); grading is the one grading path
    # that submissions and quizzes share; the apps after them build on those and never on each other.
    # Apps import each other only through their public modules. Both are checked by `lint-imports`
    # (the contracts in pyproject.toml, [tool.importlinter]).
    "courseplatform.core",
    "courseplatform.courses",
    "courseplatform.grading",  # the one grading path: jobs, lease, sweeper, requeue (grading/__init__.py)
    "courseplatform.submissions",
    "courseplatform.quizzes",
    "courseplatform.projects",
    "courseplatform.live",
    "courseplatform.gradebook",
    "courseplatform.similarity",  # copy detection across an assignment's submissions (staff only)
    "courseplatform.ops",  # backup/restore, metrics
    "django_prometheus",  # request latency and responses per view (PrometheusBefore/AfterMiddleware)
    "lti_tool",  # django-lti: LMS registrations, deployments, keys, LTI users/contexts (courseplatform/lti)
    "courseplatform.lti",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",  # first: times the whole request
    "django.middleware.security.SecurityMiddleware",
    "courseplatform.lti.middleware.LtiFrameMiddleware",  # an LTI session may be framed by its LMS (lti/middleware.py)
    "courseplatform.core.csp.ContentSecurityPolicyMiddleware",  # CSP on every page (core/csp.py)
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # turns a lockout into the "too many attempts" page
    "django_prometheus.middleware.PrometheusAfterMiddleware",  # last: the response's status per view
]

ROOT_URLCONF = "courseplatform.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "courseplatform" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "courseplatform.core.context_processors.course_context",
            ],
            # |when, |zoned, |duration_words in every template (times shown with their zone).
            "builtins": ["courseplatform.core.templatetags.cp_time"],
        },
    },
]

WSGI_APPLICATION = "courseplatform.wsgi.application"
ASGI_APPLICATION = "courseplatform.asgi.application"  # pages + the live quizzes' WebSockets

DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web + worker) share the file: wait for locks instead of failing.
    # WAL lets readers (web) and the writer (worker) work at the same time.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Backups dump rows as JSON with whole microseconds (Django's json format keeps milliseconds).
SERIALIZATION_MODULES = {"exactjson": "courseplatform.ops.exactjson"}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Argon2id first (Django's recommended hasher; cost measured in core/hashers.py); the others
# still verify old hashes, which are upgraded at the next login.
PASSWORD_HASHERS = [
    "courseplatform.core.hashers.CourseArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
# Failed-login throttling (django-axes): an account, and separately an address, is locked for
# AXES_COOLOFF_TIME after AXES_FAILURE_LIMIT failures. A lecture hall behind one NAT address shares
# the address counter, hence a limit that a room of typos does not reach but a password guesser does.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Per account AXES_USERNAME_FAILURE_LIMIT failures, per address (a lecture hall's NAT) a much higher
# AXES_IP_FAILURE_LIMIT; axes has one limit for both, so AXES_FAILURE_LIMIT is a callable that
# applies the two (core/login_throttle.py).
AXES_USERNAME_FAILURE_LIMIT = int(os.environ.get("AXES_USERNAME_FAILURE_LIMIT", "10"))
AXES_IP_FAILURE_LIMIT = int(os.environ.get("AXES_IP_FAILURE_LIMIT", "100"))
AXES_FAILURE_LIMIT = "courseplatform.core.login_throttle.failure_limit"
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "courses:home"
LOGOUT_REDIRECT_URL = "login"
# New accounts get a set-password link (a password-reset token): valid this long (default 14 days).
PASSWORD_RESET_TIMEOUT = int(os.environ.get("PASSWORD_RESET_TIMEOUT", str(14 * 24 * 3600)))

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "Europe/Berlin")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))
STATICFILES_DIRS = [BASE_DIR / "courseplatform" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"  # never served directly: downloads go through views that check the course role

# Uploads: Django spools anything larger than this to disk; the submission views enforce their own limits.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
SUBMISSION_MAX_BYTES = int(os.environ.get("SUBMISSION_MAX_BYTES", str(10 * 1024 * 1024)))

# Course content (assignment packs, quiz banks, course plan) lives here.
ASSIGNMENTS_DIR = Path(os.environ.get("ASSIGNMENTS_DIR", BASE_DIR / "assignments"))
# Trusted copies of the packs the workers grade with (never visible to student code).
PACK_STORE = Path(os.environ.get("PACK_STORE", VAR_DIR / "packs"))
# /metrics (Prometheus): the scraper sends "Authorization: Bearer <METRICS_TOKEN>"; without a token
# only a logged-in site administrator sees it. Several gunicorn workers: set PROMETHEUS_MULTIPROC_DIR.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")  # read by prometheus_client itself too
# Where `manage.py backup` writes its archives unless given --output (README "Backup and restore").
BACKUP_DIR = Path(os.environ.get("BACKUP_DIR", VAR_DIR / "backups"))
# Who may upload an assignment pack as a zip in the instructor pages: "superusers", "instructors"
# or "off". A pack's tests.py runs in the trusted worker (which can reach the database), so by
# default only site administrators may; a site whose instructors are all trusted opts in.
PACK_UPLOADS = os.environ.get("PACK_UPLOADS", "superusers")
# The largest pack zip an instructor may upload, and the largest file of a project delivery (bytes).
PACK_UPLOAD_MAX_BYTES = int(os.environ.get("PACK_UPLOAD_MAX_BYTES", str(20 * 1024 * 1024)))
PROJECT_DELIVERY_MAX_BYTES = int(os.environ.get("PROJECT_DELIVERY_MAX_BYTES", str(20 * 1024 * 1024)))
# The site's public address, for links in e-mails (milestone reminders); no trailing slash.
SITE_URL = os.environ.get("SITE_URL", "http://localhost:8000").rstrip("/")

# --- Celery -----------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "celery" / "queue"
    _processed_dir = VAR_DIR / "celery" / "processed"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        # Exchange tables (kombu's default is ./control in the working directory).
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
else:
    # Redis redelivers an unacknowledged message after visibility_timeout even while its task still
    # runs, so it must exceed the longest grading (GPU packs: many minutes). A dead worker's
    # submission does not wait for it: the sweeper requeues it once its lease lapses (GRADING_LEASE_S).
    # priority_steps 0..9 with 0 first (Redis' order); courseplatform.submissions.queue maps the
    # fair-share tiers onto each broker's priorities.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "21600")),
        "priority_steps": list(range(10)),
        "queue_order_strategy": "priority",
    }
    if os.environ.get("CELERY_BROKER_KEYPREFIX"):
        # Several sites (or test runs) on one Redis keep their queues apart.
        CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = os.environ["CELERY_BROKER_KEYPREFIX"]
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
# Task names: "<app>.<verb_object>" for new tasks (submissions.grade_submission); retries only for
# infrastructure faults, with exponential backoff capped at 60 s; every task idempotent (acks_late).
# RabbitMQ: queues declared with x-max-priority (fair share); Redis uses the priority_steps above.
# No task_default_priority: a task's own default would override the fair-share router's priority.
CELERY_TASK_QUEUE_MAX_PRIORITY = 10
# Periodic work goes to its own small queue, "ops", which every worker also consumes: behind 300
# gradings on "cpu" the sweeper would run only after the surge it is meant to rescue.
OPS_QUEUE = "ops"
CELERY_TASK_ROUTES = [
    {
        "submissions.sweep_stuck": {"queue": OPS_QUEUE},
        "courseplatform.quizzes.tasks.close_overdue_attempts": {"queue": OPS_QUEUE},
        "courseplatform.projects.tasks.send_milestone_reminders": {"queue": OPS_QUEUE},
        "similarity.run_due_checks": {"queue": OPS_QUEUE},
    },
    # Fair share: the grading task's priority from the student's recent submissions.
    "courseplatform.submissions.queue.route_task",
]
FAIR_SHARE = env_bool("FAIR_SHARE", True)
# A GPU pack's "Check" runs its small CPU settings on a CPU worker (submissions.dispatch.queue_for), so
# checks never take the GPU from submissions. Off: checks wait on the gpu queue with the submissions
# (only bench/gpu_queue.py turns it off, to measure what the policy buys).
GPU_CHECKS_ON_CPU = env_bool("GPU_CHECKS_ON_CPU", True)
# Grading leases: a grading worker touches Submission.heartbeat_at every GRADING_HEARTBEAT_S; the
# sweeper (every SWEEP_INTERVAL_S) requeues a running submission whose lease is older than
# GRADING_LEASE_S (its worker was killed, lost its host or its network) and re-sends the queued
# ones whose message the broker lost (a Redis restart without persistence).
GRADING_HEARTBEAT_S = float(os.environ.get("GRADING_HEARTBEAT_S", "5"))
GRADING_LEASE_S = float(os.environ.get("GRADING_LEASE_S", "30"))
SWEEP_INTERVAL_S = float(os.environ.get("SWEEP_INTERVAL_S", "10"))
# The engine entry point every grading job calls (a dotted path; tests and benchmarks swap in a stand-in).
GRADE_FUNCTION = os.environ.get("COURSEPLATFORM_GRADE_FUNCTION", "grader.api.grade")
# Workers keep a warm pool of pre-forked sandboxes (only with the real engine).
WARM_POOL = env_bool("COURSEPLATFORM_WARM_POOL", True)
# "Check" (visible tests only, not an attempt), for assignments and quiz code questions alike: at
# most CHECKS_PER_WINDOW checks per person in CHECK_WINDOW_S seconds (courseplatform/grading/checks.py).
CHECKS_PER_WINDOW = int(os.environ.get("COURSEPLATFORM_CHECKS_PER_WINDOW", "10"))
CHECK_WINDOW_S = int(os.environ.get("COURSEPLATFORM_CHECK_WINDOW_S", "600"))
# The one beat schedule (`make run` and the compose "beat" service run beat; never two beats).
CELERY_BEAT_SCHEDULE: dict = {
    "submissions-sweep-stuck": {
        "task": "submissions.sweep_stuck",
        "schedule": SWEEP_INTERVAL_S,
        "options": {"expires": max(5.0, SWEEP_INTERVAL_S)},  # a backlog of sweeps is dropped, not run
    },
    "quizzes-close-overdue-attempts": {
        "task": "courseplatform.quizzes.tasks.close_overdue_attempts",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    "projects-milestone-reminders": {
        "task": "courseplatform.projects.tasks.send_milestone_reminders",
        "schedule": 900.0,  # the 48-hour window and ReminderSent make each group hear once
        "options": {"expires": 900.0},
    },
    # Copy detection: each assignment that asks for it is checked once after its deadline (similarity app).
    "similarity-due-checks": {
        "task": "similarity.run_due_checks",
        "schedule": 600.0,
        "options": {"expires": 600.0},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = os.environ.get("CELERY_BEAT_SCHEDULE_FILENAME", str(VAR_DIR / "celerybeat-schedule"))
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)

# --- Processes: `make run`'s launcher (courseplatform/devserver.py) and the GPU worker (submissions/gpu.py)
DEVSERVER_HOST = os.environ.get("HOST", "127.0.0.1")  # the web server's bind address (0.0.0.0: the network)
DEVSERVER_PORT = int(os.environ.get("PORT", "8000"))  # the web server's port
DEVSERVER_WEB_WORKERS = int(os.environ.get("WEB_WORKERS", "2"))  # gunicorn worker processes
DEVSERVER_WORKER_QUEUES = os.environ.get("WORKER_QUEUES", "cpu,gpu,ops")  # queues the embedded worker consumes
DEVSERVER_WORKER_CONCURRENCY = int(os.environ.get("WORKER_CONCURRENCY", "2"))  # its processes
DEVSERVER_WORKER_NAME = os.environ.get("WORKER_NAME", "embedded")  # its node name (<name>@host)
DEVSERVER_BEAT = env_bool("BEAT", True)  # off where another process runs beat for this database
DEVSERVER_STOP_GRACE_S = float(os.environ.get("STOP_GRACE_S", "10"))  # seconds before what is left is killed
GPU_RESERVE_MB = int(os.environ.get("GPU_RESERVE_MB", "2048"))  # GPU memory left free beside the sandboxes
GPU_WORKER_CONCURRENCY = os.environ.get("GPU_WORKER_CONCURRENCY", "auto")  # sandboxes per GPU worker, or "auto"
# --- LTI 1.3 (courseplatform/lti) ---------------------------------------------
# OIDC state, nonces and validated launches must be seen by every web process: Redis where the site
# has one (LTI_CACHE_URL, else a redis:// broker), else a file cache under VAR_DIR.
_lti_cache_url = os.environ.get("LTI_CACHE_URL") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "lti": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _lti_cache_url,
         "KEY_PREFIX": "lti" + os.environ.get("CELERY_BROKER_KEYPREFIX", "")}
        if _lti_cache_url else
        {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(VAR_DIR / "lti-cache")}
    ),
}
LTI_CACHE = "lti"
LTI_HTTP_TIMEOUT_S = float(os.environ.get("LTI_HTTP_TIMEOUT_S", "10"))
LTI_JWKS_CACHE_S = int(os.environ.get("LTI_JWKS_CACHE_S", "600"))
LTI_NONCE_TTL_S = 24 * 3600  # longer than any id_token's lifetime
LTI_KEY_GRACE_DAYS = int(os.environ.get("LTI_KEY_GRACE_DAYS", "7"))
LTI_PASSBACK_MAX_RETRIES = int(os.environ.get("LTI_PASSBACK_MAX_RETRIES", "8"))
LTI_PASSBACK_BACKOFF_S = float(os.environ.get("LTI_PASSBACK_BACKOFF_S", "30"))
LTI_RECONCILE_S = float(os.environ.get("LTI_RECONCILE_S", "300"))
CELERY_TASK_ROUTES[0].update({"lti.send_score": {"queue": OPS_QUEUE}, "lti.reconcile_passback": {"queue": OPS_QUEUE}})
CELERY_BEAT_SCHEDULE["lti-reconcile-passback"] = {
    "task": "lti.reconcile_passback", "schedule": LTI_RECONCILE_S, "options": {"expires": LTI_RECONCILE_S},
}

# --- E-mail -----------------------------------------------------------------
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "courseplatform@localhost")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))

# --- Security (secure by default when DEBUG is off) ---------------------------
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# One format and one clock (UTC, "Z") for Django, gunicorn and Celery; each line is written once (the
# "django" and gunicorn loggers do not also propagate to the root); a refused request (4xx) is one
# line without a traceback (core/logutil.py).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"()": "courseplatform.core.logutil.UTCFormatter",
                             "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"no_4xx_traceback": {"()": "courseplatform.core.logutil.ClientErrorsWithoutTraceback"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain",
                             "filters": ["no_4xx_traceback"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "celery": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "axes": {"level": "WARNING"},
    },
}
# Celery workers log through LOGGING above instead of installing their own handlers and clock.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Live quizzes (courseplatform/live) ----------------------------------------
# The push channel's layer: Redis (CHANNEL_LAYER_URL, else the broker's Redis) so that every web and
# push process of the site shares the groups; without Redis (`make run`) an in-memory layer, which
# works because `make run` serves the site and the sockets from one process.
CHANNEL_LAYER_URL = os.environ.get("CHANNEL_LAYER_URL") or (
    CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "")
if CHANNEL_LAYER_URL:
    CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # redis-py 8 reads with a 5 s socket timeout by default: as long as channels-redis' blocking
        # receive (5 s), which then fails; a longer one still notices a dead connection.
        # max_connections: redis-py's async pool refuses (does not wait) beyond its limit, and 300 phones
        # connecting at once each add themselves to a group.
        "CONFIG": {"hosts": [{"address": CHANNEL_LAYER_URL, "socket_timeout": 30, "socket_connect_timeout": 10,
                              "max_connections": 1000}],
                   "prefix": os.environ.get("CHANNEL_LAYER_PREFIX", "cp-live"),
                   "capacity": 500, "expiry": 30, "group_expiry": 6 * 3600},
    }}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# Where pages open the live socket: empty = the page's own host (the proxy routes /ws/ to the push
# service); or e.g. wss://push.example.edu when it has a host of its own.
LIVE_PUSH_URL = os.environ.get("LIVE_PUSH_URL", "")
