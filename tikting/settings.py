"""Settings, read from environment variables with safe defaults for the embedded demo.

Every variable is listed in .env.example.
"""

import importlib.util
import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
# django-ninja's bundled Swagger UI (templates/ninja, static/ninja), located without importing it.
_ninja_spec = importlib.util.find_spec("ninja")
if _ninja_spec is None or _ninja_spec.origin is None:  # pragma: no cover - a requirement
    raise ImproperlyConfigured("django-ninja is not installed")
NINJA_DIR = Path(_ninja_spec.origin).parent
VAR_DIR = Path(os.environ.get("TIKTING_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


DEBUG = env_bool("TIKTING_DEBUG", False)
_secret = os.environ.get("TIKTING_SECRET_KEY")
if not _secret:
    # The demo needs no configuration: keep a generated key in var/ so sessions survive restarts.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(get_random_secret_key())
        key_file.chmod(0o600)
    _secret = key_file.read_text().strip()
SECRET_KEY = _secret

ALLOWED_HOSTS = env_list("TIKTING_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("TIKTING_CSRF_TRUSTED_ORIGINS", "")

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
    "django_tasks",
    "django_tasks_db",
    # django-ninja is not an installed app: importing it (and pydantic) as an app cost every
    # command ~0.1 s of start-up. Its Swagger UI templates and static files are found through
    # NINJA_DIR (above), and tikting.api renders them itself (no CDN).
    "axes",
    "tikting.core",
    "tikting.accounts",
    "tikting.cmdb",
    "tikting.incidents",
    "tikting.problems",
    "tikting.changes",
    "tikting.service_requests",
    "tikting.knowledge",
    "tikting.slas",
    "tikting.surveys",
    "tikting.audits",
    "tikting.attachments",
    "tikting.savedviews",
    "tikting.records",
    "tikting.improvement",
    "tikting.governance",
    "tikting.signals",
    "tikting.cadence",
    "tikting.search",
    "tikting.jobs",
    "tikting.imports",
    "tikting.discovery",
    "tikting.metrics",
    "tikting.notifications",
    "tikting.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "tikting.core.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "tikting.core.middleware.RequestIdMiddleware",
    "tikting.core.middleware.RejectNulMiddleware",
    # A session ended while a page was open: back to that page after signing in (not a fragment).
    "tikting.core.middleware.SignInAgainMiddleware",
    # Last: turns a sign-in refused for too many failures into the login page with 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "tikting.urls"
WSGI_APPLICATION = "tikting.wsgi.application"
ASGI_APPLICATION = "tikting.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates", NINJA_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tikting.context_processors.tikting",
                "tikting.core.csp.nonce",
            ],
            # `number` and `when` (tikting/core/templatetags/tikting.py) in every template.
            "builtins": ["tikting.core.templatetags.tikting"],
        },
    },
]

# DATABASE_URL in the usual URL form; the embedded default is an SQLite file in var/.
DEFAULT_DATABASE_URL = f"sqlite:///{VAR_DIR / 'tikting.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
        conn_max_age=int(os.environ.get("TIKTING_DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend with a health check that needs no round trip (tikting/core/pgbackend).
    DATABASES["default"]["ENGINE"] = "tikting.core.pgbackend"
    if env_bool("TIKTING_DB_SERVER_SIDE_BINDING", True):
        # Parameters bound by the server, and a query run five times on a connection prepared
        # there (psycopg's prepare_threshold): PostgreSQL stops parsing and planning the same SQL
        # for every request (an API read 1.54 -> 1.20 ms, an update 3.9 -> 3.2 ms: bench/README.md).
        # Behind PgBouncer older than 1.21 in transaction pooling, which cannot keep prepared
        # statements, set TIKTING_DB_SERVER_SIDE_BINDING=false (docs/deployment.md).
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            {"server_side_binding": True, "prepare_threshold": 5}
        )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Connections are kept (TIKTING_DB_CONN_MAX_AGE) on SQLite too: opening one runs the PRAGMAs
    # below and registers Django's SQL functions, several milliseconds, more than an API read costs.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
            "transaction_mode": "IMMEDIATE",
        }
    )
    if DATABASES["default"]["NAME"] != ":memory:":
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # The incidents' covering indexes (INCLUDE) are PostgreSQL's; SQLite builds them as plain
    # (slicer, opened_at) indexes, which is what it needs. The check would only say so.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
# The first backend refuses sign-ins while the account or address is locked out (django-axes).
AUTHENTICATION_BACKENDS = [
    "tikting.accounts.throttle.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_REDIRECT_URL = "improvement:list"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIKTING_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True
# The one date format of the UI (the `when` filter, tikting/lib/display.py): "5 Dec 2026" and
# "5 Dec 2026, 14:05", times in TIME_ZONE. Date inputs keep ISO values (the browser shows them).
DATE_FORMAT = os.environ.get("TIKTING_DATE_FORMAT", "j M Y")
DATETIME_FORMAT = os.environ.get("TIKTING_DATETIME_FORMAT", "j M Y, H:i")

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static", NINJA_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("TIKTING_STATIC_ROOT", VAR_DIR / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG and env_bool("TIKTING_MANIFEST_STATIC", False)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# Uploads are size-limited (imports stream from disk beyond the memory limit).
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("TIKTING_MAX_REQUEST_BYTES", str(5 * 1024 * 1024)))
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
TIKTING_MAX_UPLOAD_BYTES = int(os.environ.get("TIKTING_MAX_UPLOAD_BYTES", str(50 * 1024 * 1024)))
# Files uploaded on /imports/ wait here between their dry run and their import (then deleted). With
# several machines, the web processes and the workers must share it (docs/deployment.md).
TIKTING_IMPORT_UPLOAD_DIR = Path(os.environ.get("TIKTING_IMPORT_UPLOAD_DIR", VAR_DIR / "imports"))
# Attachments (tikting/attachments, docs/collaboration.md): files kept through Django's default
# storage (STORAGES["default"]; local files under MEDIA_ROOT, in var/ unless set), never served from
# MEDIA_URL: every download goes through a view that checks who may see the file's record.
MEDIA_ROOT = Path(os.environ.get("TIKTING_MEDIA_ROOT", VAR_DIR / "media"))
TIKTING_ATTACHMENT_MAX_BYTES = int(os.environ.get("TIKTING_ATTACHMENT_MAX_BYTES", str(10 * 1024 * 1024)))
# Extension → (the type the download is served as, what the content must be: tikting/lib/files.py
# sniff). No HTML, SVG or script: nothing a browser would run. TIKTING_ATTACHMENT_EXTENSIONS narrows it.
_OOXML = "application/vnd.openxmlformats-officedocument."
TIKTING_ATTACHMENT_TYPES = {
    "pdf": ("application/pdf", "application/pdf"),
    "png": ("image/png", "image/png"),
    "jpg": ("image/jpeg", "image/jpeg"),
    "jpeg": ("image/jpeg", "image/jpeg"),
    "gif": ("image/gif", "image/gif"),
    "txt": ("text/plain; charset=utf-8", "text/plain"),
    "log": ("text/plain; charset=utf-8", "text/plain"),
    "md": ("text/markdown; charset=utf-8", "text/plain"),
    "csv": ("text/csv; charset=utf-8", "text/plain"),
    "json": ("application/json", "text/plain"),
    "docx": (_OOXML + "wordprocessingml.document", "application/zip"),
    "xlsx": (_OOXML + "spreadsheetml.sheet", "application/zip"),
    "pptx": (_OOXML + "presentationml.presentation", "application/zip"),
    "odt": ("application/vnd.oasis.opendocument.text", "application/zip"),
    "ods": ("application/vnd.oasis.opendocument.spreadsheet", "application/zip"),
    "zip": ("application/zip", "application/zip"),
    "doc": ("application/msword", "application/x-ole-storage"),
    "xls": ("application/vnd.ms-excel", "application/x-ole-storage"),
    "msg": ("application/vnd.ms-outlook", "application/x-ole-storage"),
}
_allowed_extensions = env_list("TIKTING_ATTACHMENT_EXTENSIONS", "")
if _allowed_extensions:
    TIKTING_ATTACHMENT_TYPES = {
        ext: kind for ext, kind in TIKTING_ATTACHMENT_TYPES.items() if ext in _allowed_extensions
    }
# Zip archives an import reads (the ServiceNow log, the BPI Challenge 2014 files): a member unpacking
# to more than this many bytes, or (when over 1 MiB) compressed more than this ratio to 1, is refused
# as a possible zip bomb; the bytes actually unpacked are counted too (docs/deployment.md).
TIKTING_IMPORT_MAX_UNPACKED_BYTES = int(os.environ.get("TIKTING_IMPORT_MAX_UNPACKED_BYTES", str(1 << 30)))
TIKTING_IMPORT_MAX_ZIP_RATIO = float(os.environ.get("TIKTING_IMPORT_MAX_ZIP_RATIO", "100"))
# Files up to FILE_UPLOAD_MAX_MEMORY_SIZE stay in memory; bigger ones go to a temporary file that
# never holds more than TIKTING_MAX_UPLOAD_BYTES (the import answers 413 beyond it).
FILE_UPLOAD_HANDLERS = [
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "tikting.core.uploads.BoundedTemporaryFileUploadHandler",
]

# Security: secure defaults in production (TIKTING_DEBUG off); the demo serves plain HTTP locally.
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SAMESITE = "Lax"
_https = env_bool("TIKTING_HTTPS", False)
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
SECURE_SSL_REDIRECT = _https and env_bool("TIKTING_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = int(os.environ.get("TIKTING_HSTS_SECONDS", "31536000" if _https else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = _https
SECURE_HSTS_PRELOAD = _https
TIKTING_BEHIND_PROXY = env_bool("TIKTING_BEHIND_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TIKTING_BEHIND_PROXY else None

# Sign-in throttling (tikting/accounts/throttle.py, django-axes): after this many failed sign-ins
# (passwords on the login and admin pages, unknown API tokens) within the lockout time, for one
# username or from one address, sign-ins are refused (429) until the failures are that old.
# `tikting unlock USERNAME` (or --ip) lifts a lockout at once.
AXES_FAILURE_LIMIT = int(os.environ.get("TIKTING_LOGIN_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("TIKTING_LOGIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = "tikting.accounts.throttle.lockout_parameters"
AXES_CLIENT_IP_CALLABLE = "tikting.accounts.throttle.client_ip"
AXES_LOCKOUT_CALLABLE = "tikting.accounts.throttle.lockout_response"
# A try during a lockout does not extend it (the Retry-After given stays true).
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_DISABLE_ACCESS_LOG = True  # no row per successful sign-in

# Background work: Django's Tasks API on the database backend, run with the schedule by
# `tikting worker` (docs/deployment.md).
TASKS = {
    "default": {
        "BACKEND": os.environ.get("TIKTING_TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
    }
}

# The register's governance knobs.
TIKTING_STALE_DAYS = int(os.environ.get("TIKTING_STALE_DAYS", "30"))
# Improvement sprints: planning past this many items warns and asks for a reason (docs/cadence.md).
TIKTING_SPRINT_MAX_ITEMS = int(os.environ.get("TIKTING_SPRINT_MAX_ITEMS", "5"))
# Protected capacity: a team that logged under this share of its planned improvement hours is flagged.
TIKTING_CAPACITY_FLAG_BELOW = float(os.environ.get("TIKTING_CAPACITY_FLAG_BELOW", "0.5"))
TIKTING_CONTROL_PERIOD_DAYS = int(os.environ.get("TIKTING_CONTROL_PERIOD_DAYS", "90"))
TIKTING_DUE_SOON_FRACTION = float(os.environ.get("TIKTING_DUE_SOON_FRACTION", "0.15"))
TIKTING_MEASUREMENT_INTERVAL_DAYS = int(os.environ.get("TIKTING_MEASUREMENT_INTERVAL_DAYS", "30"))
# Metric answers are reused until a record they read changes; a backlog "as of now" for at most
# this long (0: no reuse at all).
TIKTING_METRICS_CACHE_SECONDS = int(os.environ.get("TIKTING_METRICS_CACHE_SECONDS", "600"))
TIKTING_PAGE_SIZE = int(os.environ.get("TIKTING_PAGE_SIZE", "50"))
# An open action is announced to its owner this many days before its due date (docs/notifications.md).
TIKTING_ACTION_DUE_SOON_DAYS = int(os.environ.get("TIKTING_ACTION_DUE_SOON_DAYS", "3"))

# E-mail (docs/deployment.md, "E-mail"): Django's e-mail framework. Production: SMTP with the
# variables below; `make demo` prints the e-mails on the worker's console
# (TIKTING_EMAIL_BACKEND=django.core.mail.backends.console.EmailBackend).
EMAIL_BACKEND = os.environ.get("TIKTING_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("TIKTING_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("TIKTING_EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("TIKTING_EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("TIKTING_EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("TIKTING_EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("TIKTING_EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = int(os.environ.get("TIKTING_EMAIL_TIMEOUT", "20"))
DEFAULT_FROM_EMAIL = os.environ.get("TIKTING_EMAIL_FROM", "tikting <tikting@localhost>")
# The address links in e-mails start with (no request there): "https://tikting.example.org".
TIKTING_BASE_URL = os.environ.get("TIKTING_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# Sending a notification by e-mail, and a webhook delivery: attempts in all, and the wait before
# each retry in seconds (the last wait repeats).
TIKTING_EMAIL_ATTEMPTS = int(os.environ.get("TIKTING_EMAIL_ATTEMPTS", "5"))
TIKTING_WEBHOOK_ATTEMPTS = int(os.environ.get("TIKTING_WEBHOOK_ATTEMPTS", "5"))
TIKTING_RETRY_BACKOFF = [int(s) for s in env_list("TIKTING_RETRY_BACKOFF", "60,300,1800,7200")]
# A webhook subscription is disabled after this many failed attempts in a row.
TIKTING_WEBHOOK_DISABLE_AFTER = int(os.environ.get("TIKTING_WEBHOOK_DISABLE_AFTER", "10"))
TIKTING_WEBHOOK_TIMEOUT = float(os.environ.get("TIKTING_WEBHOOK_TIMEOUT", "10"))
# Webhooks to loopback, private, link-local and reserved addresses are refused (SSRF) unless an
# administrator allows them here (a receiver on the same host or network).
TIKTING_WEBHOOK_ALLOW_PRIVATE = env_bool("TIKTING_WEBHOOK_ALLOW_PRIVATE", False)


def env_json(name: str, default: Any) -> Any:
    """A JSON value from the environment, or from the file its `<name>_FILE` variable names (both
    given: the file first, then the variable over it, for dicts). Fails loudly on bad JSON."""
    values = []
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            values.append(json.loads(Path(path).read_text()))
        except (OSError, ValueError) as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path}: cannot read it as JSON ({exc}).") from exc
    raw = os.environ.get(name)
    if raw:
        try:
            values.append(json.loads(raw))
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name}: not valid JSON ({exc}).") from exc
    return values or [default]


def override_entries(defaults: dict[str, Any], overrides: list[Any]) -> dict[str, Any]:
    """Defaults overridden entry by entry: an override's keys replace the default entry's keys, a new
    name adds an entry, null removes one."""
    result = {name: dict(spec) for name, spec in defaults.items()}
    for override in overrides:
        if not isinstance(override, dict):
            raise ImproperlyConfigured(f"Expected an object of name → entry, got {override!r}.")
        for name, spec in override.items():
            if spec is None:
                result.pop(name, None)
            elif isinstance(spec, dict) and isinstance(result.get(name), dict):
                result[name] = {**result[name], **spec}
            else:
                result[name] = spec
    return result


# The schedule `tikting worker` keeps (docs/signals.md, "The schedule"): name → {"task": dotted path
# of a django-tasks task, "every": seconds or a daily "HH:MM" in TIKTING_TIME_ZONE, "args", "kwargs"}.
# Overridden entry by entry by TIKTING_SCHEDULE (JSON) and the JSON file TIKTING_SCHEDULE_FILE names,
# e.g. TIKTING_SCHEDULE='{"detectors": {"every": "04:30"}, "metrics": null}'.
TIKTING_SCHEDULE = override_entries(
    {
        # Deferred items back for assessment, computed measurements, sustainment of closed items.
        "housekeeping": {"task": "tikting.improvement.tasks.housekeeping", "every": "02:00"},
        # Deferred candidates back in the intake queue.
        "intake": {"task": "tikting.signals.tasks.housekeeping", "every": "02:10"},
        # Open incidents past their SLA due time become breached.
        "slas": {"task": "tikting.slas.tasks.apply_slas", "every": 3600, "kwargs": {"open_only": True}},
        # The metrics page's default views, computed ahead of the next visitor.
        "metrics": {"task": "tikting.metrics.tasks.warm_metrics", "every": 1800},
        # Every detector of TIKTING_SIGNALS_DETECTORS over the last TIKTING_SIGNALS_WINDOW_DAYS.
        "detectors": {"task": "tikting.signals.tasks.run_detectors", "every": "03:00"},
        # The day's asset data accuracy snapshot (CIs grow stale with the calendar, not only with runs).
        "discovery_snapshot": {"task": "tikting.discovery.tasks.take_snapshot", "every": "02:50"},
        # The daily digest e-mail of those who asked for one instead of an e-mail per notice.
        "digest": {"task": "tikting.notifications.tasks.send_digests", "every": "07:00"},
    },
    env_json("TIKTING_SCHEDULE", {}),
)

# Signals (docs/signals.md): the detector modules run by `tikting signals run` and the schedule,
# their thresholds (TIKTING_SIGNALS = {"<detector>": {"<threshold>": value}}, JSON in the
# environment), the window a scheduled run reads, and how much a dismissed or merged candidate's
# evidence must grow to come back (0.5: by half again).
TIKTING_SIGNALS_DETECTORS = [
    "tikting.signals.detectors.major_incidents",
    "tikting.signals.detectors.changes",
    "tikting.signals.detectors.sla_breaches",
    "tikting.signals.detectors.csat",
    "tikting.signals.detectors.service_requests",
    "tikting.signals.detectors.knowledge",
    "tikting.signals.detectors.recurring_incidents",
    "tikting.signals.detectors.cmdb_hygiene",
]
TIKTING_SIGNALS = override_entries({}, env_json("TIKTING_SIGNALS", {}))
TIKTING_SIGNALS_WINDOW_DAYS = int(os.environ.get("TIKTING_SIGNALS_WINDOW_DAYS", "90"))
TIKTING_SIGNALS_REGROWTH = float(os.environ.get("TIKTING_SIGNALS_REGROWTH", "0.5"))

# Odysseus, discovery and CMDB accuracy (docs/discovery.md). Identification rules, tried in this
# order: serial_manufacturer, uuid, mac, fqdn, hostname, ip (a rule left out is not used).
TIKTING_DISCOVERY_IDENTIFICATION = env_list(
    "TIKTING_DISCOVERY_IDENTIFICATION", "serial_manufacturer,uuid,mac,fqdn,hostname,ip"
)
# Source precedence per CI attribute, highest first ("manual": a value a person gave the CI). An
# attribute not listed follows "*"; a source not listed ranks after the listed ones. Overridden
# attribute by attribute by TIKTING_DISCOVERY_PRECEDENCE (JSON: {"os_name": ["manual", "nmap"]}).
_AGENTS_FIRST = ["glpi-agent", "fusioninventory", "snmp", "netdiscovery", "manual", "csv", "nmap"]
TIKTING_DISCOVERY_PRECEDENCE: dict[str, list[str]] = {
    "*": _AGENTS_FIRST,
    "location": ["manual", "csv", "snmp", "netdiscovery", "glpi-agent", "fusioninventory", "nmap"],
}
for _override in env_json("TIKTING_DISCOVERY_PRECEDENCE", {}):
    if not isinstance(_override, dict) or not all(isinstance(v, list) for v in _override.values()):
        raise ImproperlyConfigured("TIKTING_DISCOVERY_PRECEDENCE: expected {attribute: [source, …]}.")
    TIKTING_DISCOVERY_PRECEDENCE.update(_override)
# The IP rule identifies a device by its address only inside these ranges (static addressing:
# servers, network equipment); none by default, which leaves the rule unused.
TIKTING_DISCOVERY_TRUSTED_RANGES = env_list("TIKTING_DISCOVERY_TRUSTED_RANGES", "")
# An in-scope CI not seen for this many days is stale; coverage counts CIs seen within it.
TIKTING_DISCOVERY_STALE_DAYS = int(os.environ.get("TIKTING_DISCOVERY_STALE_DAYS", "30"))
# The CI classes discovery is expected to find (coverage, stale CIs, completeness).
TIKTING_DISCOVERY_SCOPE_CLASSES = env_list(
    "TIKTING_DISCOVERY_SCOPE_CLASSES", "server,workstation,network,printer,vm,storage"
)
# The attributes whose drift makes a CI inaccurate (the accuracy metric).
TIKTING_DISCOVERY_KEY_ATTRIBUTES = env_list(
    "TIKTING_DISCOVERY_KEY_ATTRIBUTES",
    "serial_number,manufacturer,model_name,system_uuid,os_name,fqdn,hostname,ip_address,mac_address,location",
)
# The attributes a CI of each class must have (the completeness metric); "*" for any class.
TIKTING_DISCOVERY_REQUIRED_ATTRIBUTES: dict[str, list[str]] = {
    "*": ["owner", "service", "location", "serial_number", "manufacturer", "model_name"],
    "server": [
        "owner",
        "service",
        "location",
        "serial_number",
        "manufacturer",
        "model_name",
        "os_name",
        "ip_address",
    ],
    "workstation": ["owner", "location", "serial_number", "manufacturer", "model_name", "os_name"],
    "vm": ["owner", "service", "os_name", "ip_address", "system_uuid"],
    "network": ["owner", "location", "serial_number", "manufacturer", "model_name", "ip_address"],
    "printer": ["location", "serial_number", "manufacturer", "model_name", "ip_address"],
}
for _override in env_json("TIKTING_DISCOVERY_REQUIRED_ATTRIBUTES", {}):
    if not isinstance(_override, dict) or not all(isinstance(v, list) for v in _override.values()):
        raise ImproperlyConfigured("TIKTING_DISCOVERY_REQUIRED_ATTRIBUTES: expected {class: [attribute, …]}.")
    TIKTING_DISCOVERY_REQUIRED_ATTRIBUTES.update(_override)
# Discovery inputs (docs/discovery.md, "Limits"): the largest file, scan output or decompressed
# agent upload a parser reads; the largest request body the agent endpoint accepts; and the
# compression ratio past which (over 1 MiB unpacked) an upload is refused as a zlib/gzip bomb.
TIKTING_DISCOVERY_MAX_BYTES = int(os.environ.get("TIKTING_DISCOVERY_MAX_BYTES", str(64 * 1024 * 1024)))
TIKTING_DISCOVERY_AGENT_MAX_BYTES = int(
    os.environ.get("TIKTING_DISCOVERY_AGENT_MAX_BYTES", str(8 * 1024 * 1024))
)
TIKTING_DISCOVERY_MAX_RATIO = float(os.environ.get("TIKTING_DISCOVERY_MAX_RATIO", "100"))
# Active scans: `tikting discover scan RANGE` runs nmap only on ranges inside these networks
# (comma-separated CIDR); anything else is refused before nmap starts. Loopback only by default.
TIKTING_DISCOVERY_ALLOWED_RANGES = env_list("TIKTING_DISCOVERY_ALLOWED_RANGES", "127.0.0.0/8,::1/128")
TIKTING_DISCOVERY_NMAP = os.environ.get("TIKTING_DISCOVERY_NMAP", "nmap")
# Agents (FusionInventory, GLPI Agent) are told to come back after this many hours.
TIKTING_DISCOVERY_AGENT_INTERVAL_HOURS = int(os.environ.get("TIKTING_DISCOVERY_AGENT_INTERVAL_HOURS", "24"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("TIKTING_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # django-axes says INFO at every start ("AXES: BEGIN …") and sign-in: commands print only
        # what they mean to; failed sign-ins and lockouts are still logged (WARNING).
        "axes": {"level": "WARNING"},
    },
}
