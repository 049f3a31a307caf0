"""Settings for VR Console, read from the environment.

Everything that differs between a laptop, CI and a deployment comes from environment
variables (or a `.env` file named by VRCONSOLE_ENV_FILE). With nothing set, the console runs
on embedded defaults: SQLite in WAL mode under `var/`, a local Redis, the demo simulator.
A malformed value stops start-up with a message that names the variable and what it
expected, because a console that silently falls back to a default misleads the operator.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VRCONSOLE_VAR_DIR", str(BASE_DIR / "var")))

env = environ.Env()
_env_file = os.environ.get("VRCONSOLE_ENV_FILE")
if _env_file:
    if not Path(_env_file).is_file():
        raise ImproperlyConfigured(f"VRCONSOLE_ENV_FILE={_env_file!r}: no such file")
    environ.Env.read_env(_env_file)


def _secret_env(name: str, default: str = "") -> str:
    """A secret from NAME, or from the file NAME_FILE names (container secrets); never both.

    The file's content is stripped of surrounding whitespace (a trailing newline is usual).
    """
    file_name = os.environ.get(f"{name}_FILE", "")
    value = os.environ.get(name, "")
    if file_name and value:
        raise ImproperlyConfigured(f"Set either {name} or {name}_FILE, not both")
    if not file_name:
        return value or default
    try:
        return Path(file_name).read_text().strip()
    except OSError as exc:
        raise ImproperlyConfigured(f"{name}_FILE={file_name!r}: cannot read the file ({exc.strerror or exc})") from None


def mask_url(raw: str) -> str:
    """The URL with its password replaced by `***`, for error messages (never echo a secret)."""
    parsed = urlparse(raw)
    try:
        password = parsed.password
    except ValueError:
        password = None
    if password:
        return raw.replace(f":{password}@", ":***@", 1)
    if "@" in raw:
        # Unparseable but looks like it carries credentials: keep the scheme and the host part only.
        return f"{raw.split(':', 1)[0]}://***@{raw.rsplit('@', 1)[1]}"
    return raw


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: expected a boolean (true/false, yes/no, 1/0)")


def _number(name: str, default: float, kind: type, minimum: float | None, maximum: float | None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw.strip())
    except ValueError:
        expected = "a whole number" if kind is int else "a number"
        raise ImproperlyConfigured(f"{name}={raw!r}: expected {expected}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r}: must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={raw!r}: must be at most {maximum}")
    return value


def _int(name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
    return int(_number(name, default, int, minimum, maximum))


def _float(name: str, default: float, minimum: float | None = None, maximum: float | None = None) -> float:
    return float(_number(name, default, float, minimum, maximum))


def _url(name: str, default: str, schemes: set[str], raw: str | None = None) -> str:
    raw = raw or os.environ.get(name) or default
    try:
        parsed = urlparse(raw)
        hostname = parsed.hostname
        parsed.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={mask_url(raw)!r}: not a valid URL ({exc})") from None
    if parsed.scheme not in schemes:
        raise ImproperlyConfigured(
            f"{name}={mask_url(raw)!r}: expected a URL with scheme {' or '.join(sorted(schemes))}"
        )
    if parsed.scheme not in {"sqlite", "unix"} and not hostname:
        raise ImproperlyConfigured(f"{name}={mask_url(raw)!r}: the URL has no host")
    return raw


def _json_object(name: str) -> dict:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ImproperlyConfigured(f"{name}: expected a JSON object")
    return value


def _path(name: str, default: str | None) -> str | None:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw


# --- Core -------------------------------------------------------------------------------

DEBUG = _bool("DEBUG", False)
_secret = _secret_env("SECRET_KEY")
if not _secret:
    # A single-host install keeps a generated key in VAR_DIR (mode 0600), made on first use;
    # a deployment passes SECRET_KEY (docker-compose.yml requires it).
    _key_file = VAR_DIR / "secret_key"
    try:
        _secret = _key_file.read_text().strip()
    except FileNotFoundError:
        import secrets as _secrets

        VAR_DIR.mkdir(parents=True, exist_ok=True)
        _secret = _secrets.token_urlsafe(50)
        _fd = os.open(_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(_fd, "w") as _handle:
            _handle.write(_secret)
    except OSError as exc:
        raise ImproperlyConfigured(f"SECRET_KEY is not set and {_key_file} cannot be read ({exc})") from None
if len(_secret) < 32:
    raise ImproperlyConfigured("SECRET_KEY is too short: use at least 32 characters")
SECRET_KEY = _secret

ALLOWED_HOSTS = [
    h.strip() for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()
]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]
for _origin in CSRF_TRUSTED_ORIGINS:
    if not _origin.startswith(("http://", "https://")):
        raise ImproperlyConfigured(f"CSRF_TRUSTED_ORIGINS entry {_origin!r}: must start with http:// or https://")

INSTALLED_APPS = [
    "daphne",
    "vrconsole.apps.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_rq",
    "vrconsole",
    "diagnostics",
]
# The dev cloud (CloudStack API simulator, lab of real routers, their commands) is for the
# local run, the tests and the benchmarks only: scripts/run, scripts/test and bench/ switch
# it on. A deployment never sets this, and its image does not even contain the app.
DEVCLOUD = _bool("VRCONSOLE_DEVCLOUD", False)
if DEVCLOUD:
    INSTALLED_APPS.append("devcloud")

MIDDLEWARE = [
    # /healthz and /readyz answer before the host check and the HTTPS redirect: a container
    # healthcheck or a load balancer asks by address over plain HTTP.
    "vrconsole.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "vrconsole.security_headers.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "vrconsole.urls"
ASGI_APPLICATION = "vrconsole.asgi.application"
WSGI_APPLICATION = None

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
                "vrconsole.context_processors.console",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------
# PostgreSQL in deployment and tests; SQLite (WAL) is only the zero-setup local default.

DATABASE_URL = _url(
    "DATABASE_URL",
    f"sqlite:///{VAR_DIR / 'vrconsole.sqlite3'}",
    {"sqlite", "postgres", "postgresql", "pgsql"},
    raw=_secret_env("DATABASE_URL"),
)
try:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
except Exception as exc:  # django-environ raises several types on a bad URL
    raise ImproperlyConfigured(f"DATABASE_URL={mask_url(DATABASE_URL)!r}: {type(exc).__name__}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update(
        {
            # WAL lets the web process read while a worker writes a sync.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", _int("DATABASE_CONN_MAX_AGE", 60, minimum=0))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
    # A database that does not answer fails a request in seconds (a clear 503 page), not minutes.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", _int("DATABASE_CONNECT_TIMEOUT", 5, minimum=1, maximum=300)
    )
    # Server-side binding sends parameters apart from the SQL: the sync's bulk upserts pass
    # tens of megabytes of JSON as one parameter (vrconsole/bulk.py), never quoted into the text.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("server_side_binding", True)
    # No JIT compilation: the console's queries are short, and once a fleet is large enough for
    # the planner's cost estimate of a search to pass jit_above_cost, compiling it took 30 ms of
    # a 50 ms query, on every request. Sent as a startup option (options in DATABASE_URL come
    # after it and win); a pooler that refuses startup options (PgBouncer) needs
    # DATABASE_JIT_OFF=false and `ALTER ROLE … SET jit = off` instead.
    if _bool("DATABASE_JIT_OFF", True):
        _pg_options = DATABASES["default"]["OPTIONS"].get("options", "")
        DATABASES["default"]["OPTIONS"]["options"] = f"-c jit=off {_pg_options}".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: RQ queues and the Channels layer --------------------------------------------

REDIS_URL = _url("REDIS_URL", "redis://127.0.0.1:6379/0", {"redis", "rediss", "unix"}, raw=_secret_env("REDIS_URL"))
# Seconds to connect to Redis and to wait for one answer: an unreachable Redis fails a
# request or a job in seconds instead of stalling it until TCP gives up. RQ and the Channels
# layer get them in their URL (REDIS_CONNECTION_URL), the tail store as arguments; RQ raises
# the read timeout of its own blocking dequeue above its wait by itself.
REDIS_CONNECT_TIMEOUT = _float("REDIS_CONNECT_TIMEOUT", 5.0, minimum=0.1, maximum=120)
REDIS_SOCKET_TIMEOUT = _float("REDIS_SOCKET_TIMEOUT", 10.0, minimum=0.1, maximum=600)
_redis_parts = urlparse(REDIS_URL)
_redis_query = dict(parse_qsl(_redis_parts.query))
_redis_query.setdefault("socket_connect_timeout", f"{REDIS_CONNECT_TIMEOUT:g}")
_redis_query.setdefault("socket_timeout", f"{REDIS_SOCKET_TIMEOUT:g}")
_redis_query.setdefault("health_check_interval", "30")
REDIS_CONNECTION_URL = urlunparse(_redis_parts._replace(query=urlencode(_redis_query)))

# Queue names are declared once, in vrconsole/queues.py; RQ_QUEUES is built from them.
from vrconsole.queues import QUEUE_TIMEOUTS  # noqa: E402

RQ_QUEUES = {
    name: {"URL": REDIS_CONNECTION_URL, "DEFAULT_TIMEOUT": timeout} for name, timeout in QUEUE_TIMEOUTS.items()
}
RQ_SHOW_ADMIN_LINK = False

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [REDIS_CONNECTION_URL],
            "prefix": os.environ.get("CHANNELS_PREFIX", "vrconsole"),
        },
    }
}

# --- CloudStack regions -----------------------------------------------------------------
# Either one region from CLOUDSTACK_URL/_API_KEY/_SECRET_KEY, or a cs-style ini file
# (CLOUDSTACK_CONFIG) with one section per region. Keys are read here and never stored.

CLOUDSTACK_CONFIG = _path("CLOUDSTACK_CONFIG", None)
CLOUDSTACK_URL = os.environ.get("CLOUDSTACK_URL", "")
CLOUDSTACK_API_KEY = _secret_env("CLOUDSTACK_API_KEY")
CLOUDSTACK_SECRET_KEY = _secret_env("CLOUDSTACK_SECRET_KEY")
CLOUDSTACK_REGION = os.environ.get("CLOUDSTACK_REGION", "default")
CLOUDSTACK_TIMEOUT = _int("CLOUDSTACK_TIMEOUT", 30, minimum=1, maximum=600)
CLOUDSTACK_PAGE_SIZE = _int("CLOUDSTACK_PAGE_SIZE", 500, minimum=1, maximum=500)
CLOUDSTACK_VERIFY_TLS = _bool("CLOUDSTACK_VERIFY_TLS", True)
if CLOUDSTACK_URL:
    _url("CLOUDSTACK_URL", CLOUDSTACK_URL, {"http", "https"})
    if not (CLOUDSTACK_API_KEY and CLOUDSTACK_SECRET_KEY):
        raise ImproperlyConfigured(
            "CLOUDSTACK_URL is set: CLOUDSTACK_API_KEY and CLOUDSTACK_SECRET_KEY are required too"
        )
if CLOUDSTACK_CONFIG and CLOUDSTACK_URL:
    raise ImproperlyConfigured("Set either CLOUDSTACK_URL (one region) or CLOUDSTACK_CONFIG (an ini file), not both")

# --- Schedules --------------------------------------------------------------------------

SYNC_INTERVAL_SECONDS = _int("SYNC_INTERVAL_SECONDS", 60, minimum=10, maximum=86400)
# A sync that would mark more than this fraction of a region's routers removed at once is
# refused (a permission change or an API bug looks exactly like that), unless forced.
SYNC_MASS_REMOVAL_GUARD = _float("SYNC_MASS_REMOVAL_GUARD", 0.5, minimum=0.0, maximum=1.0)
SWEEP_INTERVAL_SECONDS = _int("SWEEP_INTERVAL_SECONDS", 300, minimum=30, maximum=86400)
# The fleet summary band (a handful of aggregates over the whole fleet) is reused for this
# many seconds by every screen showing it; 0 computes it on every request. The data under it
# changes at the sync and sweep intervals, so a few seconds cost no freshness.
FLEET_SUMMARY_CACHE_SECONDS = _int("FLEET_SUMMARY_CACHE_SECONDS", 10, minimum=0, maximum=300)
# A router seen in a transitional state (Starting, Stopping...) longer than this is "stuck".
STUCK_TRANSITION_MINUTES = _int("STUCK_TRANSITION_MINUTES", 10, minimum=1, maximum=1440)

# --- Fleet sweep scale ------------------------------------------------------------------
# One collect worker process runs this many router sessions at once (threads around SSH:
# a collection is mostly waiting on the network and the routers' 1 s CPU sample). At most
# COLLECT_HOST_CONCURRENCY of them go through one KVM host, all over ONE login to that host
# per batch; a sweep queues its routers in batches (RQ jobs) of SWEEP_BATCH_SIZE, grouped by
# host. Sizing: worker processes = routers / SWEEP_INTERVAL_SECONDS / per-worker rate (README).
COLLECT_CONCURRENCY = _int("COLLECT_CONCURRENCY", 16, minimum=1, maximum=256)
COLLECT_HOST_CONCURRENCY = _int("COLLECT_HOST_CONCURRENCY", 8, minimum=1, maximum=256)
SWEEP_BATCH_SIZE = _int("SWEEP_BATCH_SIZE", 64, minimum=1, maximum=10000)

# --- SSH to routers ---------------------------------------------------------------------
# Key files are named here and read by the worker; they are never stored or shown.

VR_SSH_KEY_FILE = _path("VR_SSH_KEY_FILE", str(VAR_DIR / "lab" / "keys" / "id_rsa.cloud"))
HOST_SSH_USER = os.environ.get("HOST_SSH_USER", "root")
HOST_SSH_KEY_FILE = _path("HOST_SSH_KEY_FILE", str(VAR_DIR / "lab" / "keys" / "id_rsa.host"))
HOST_SSH_PORT = _int("HOST_SSH_PORT", 22, minimum=1, maximum=65535)
VR_SSH_PORT = _int("VR_SSH_PORT", 3922, minimum=1, maximum=65535)
SSH_KNOWN_HOSTS_FILE = _path("SSH_KNOWN_HOSTS_FILE", str(VAR_DIR / "known_hosts"))
SSH_CONNECT_TIMEOUT = _float("SSH_CONNECT_TIMEOUT", 10.0, minimum=0.5, maximum=300)
SSH_COMMAND_TIMEOUT = _float("SSH_COMMAND_TIMEOUT", 20.0, minimum=0.5, maximum=600)
SSH_MAX_OUTPUT_BYTES = _int("SSH_MAX_OUTPUT_BYTES", 2 * 1024 * 1024, minimum=4096)
# Networks the workers may open SSH connections to (comma-separated CIDRs), checked before
# any connection: a tampered or odd API answer cannot point a worker anywhere else. Empty
# means no restriction. The local run limits it to the lab's 198.19.0.0/16.
SSH_ALLOWED_NETWORKS = []
for _cidr in os.environ.get("SSH_ALLOWED_NETWORKS", "").split(","):
    if _cidr.strip():
        try:
            SSH_ALLOWED_NETWORKS.append(ipaddress.ip_network(_cidr.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"SSH_ALLOWED_NETWORKS: {_cidr.strip()!r} is not a network (e.g. 10.0.0.0/8)"
            ) from None
# Addresses a KVM host may be asked to forward to (the VR's control address): CloudStack's
# control network, link-local 169.254.0.0/16 unless its control.cidr setting was changed.
SSH_FORWARD_ALLOWED_NETWORKS = []
for _cidr in (os.environ.get("SSH_FORWARD_ALLOWED_NETWORKS", "") or "169.254.0.0/16").split(","):
    if _cidr.strip():
        try:
            SSH_FORWARD_ALLOWED_NETWORKS.append(ipaddress.ip_network(_cidr.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"SSH_FORWARD_ALLOWED_NETWORKS: {_cidr.strip()!r} is not a network (e.g. 169.254.0.0/16)"
            ) from None
# Seconds of silence after which an open SSH session sends a keepalive (NATs, firewalls).
SSH_KEEPALIVE_SECONDS = _int("SSH_KEEPALIVE_SECONDS", 15, minimum=1, maximum=3600)
# Per-zone or per-host overrides: a JSON object, e.g.
# {"zone:<zone uuid or name>": {"HOST_SSH_USER": "cloudops"}, "host:<host uuid or name>": {...}}
SSH_OVERRIDES = _json_object("SSH_OVERRIDES")

# --- Live pages and tails -------------------------------------------------------------------
# Every open socket re-reads its session this often and closes when the user signed out.
LIVE_SESSION_CHECK_SECONDS = _float("LIVE_SESSION_CHECK_SECONDS", 10.0, minimum=0.1, maximum=3600)
# A new tail starts with the log's last N lines; a new viewer of a running tail gets as many.
TAIL_BACKFILL_LINES = _int("TAIL_BACKFILL_LINES", 200, minimum=0, maximum=5000)
# Lines kept per tail in Redis for reconnecting and slow viewers (a viewer further behind is
# told how many lines it skipped), and for how long after the tail's last line.
TAIL_BACKLOG_LINES = _int("TAIL_BACKLOG_LINES", 5000, minimum=100, maximum=100000)
TAIL_BACKLOG_TTL_SECONDS = _int("TAIL_BACKLOG_TTL_SECONDS", 3600, minimum=60, maximum=7 * 86400)
# A tail stops this long after its last viewer left (a page reload must not restart it).
TAIL_GRACE_SECONDS = _float("TAIL_GRACE_SECONDS", 15.0, minimum=0.0, maximum=3600)
# Tails one tail worker process holds at most; more tails need more tail_worker processes.
TAIL_MAX_PER_WORKER = _int("TAIL_MAX_PER_WORKER", 100, minimum=1, maximum=2000)
# Per viewer: lines per second sent at most, and lines sent but not yet shown by the page.
TAIL_VIEWER_LINES_PER_SECOND = _int("TAIL_VIEWER_LINES_PER_SECOND", 2000, minimum=10, maximum=100000)
TAIL_VIEWER_WINDOW_LINES = _int("TAIL_VIEWER_WINDOW_LINES", 2000, minimum=50, maximum=100000)
# Longest wait between two attempts to re-open a failed tail session.
TAIL_RETRY_MAX_SECONDS = _float("TAIL_RETRY_MAX_SECONDS", 60.0, minimum=1.0, maximum=3600)
# A quiet tail checks that its SSH session still answers after this many silent seconds.
TAIL_KEEPALIVE_SECONDS = _float("TAIL_KEEPALIVE_SECONDS", 15.0, minimum=1.0, maximum=600)
# --- Management servers: their log, read over SSH for the error triage (optional) --------
# Addresses (comma-separated IPs) of the management servers whose log names the exception
# behind a router's failure; logged in to like the KVM hosts. Empty: the log is not read.
MANAGEMENT_SERVERS: list[str] = []
for _address in os.environ.get("MANAGEMENT_SERVERS", "").split(","):
    if _address.strip():
        try:
            MANAGEMENT_SERVERS.append(str(ipaddress.ip_address(_address.strip())))
        except ValueError:
            raise ImproperlyConfigured(
                f"MANAGEMENT_SERVERS: {_address.strip()!r} is not an IP address (e.g. 10.0.0.5,10.0.0.6)"
            ) from None
MANAGEMENT_SSH_USER = os.environ.get("MANAGEMENT_SSH_USER", HOST_SSH_USER)
MANAGEMENT_SSH_KEY_FILE = _path("MANAGEMENT_SSH_KEY_FILE", HOST_SSH_KEY_FILE)
MANAGEMENT_SSH_PORT = _int("MANAGEMENT_SSH_PORT", 22, minimum=1, maximum=65535)
MANAGEMENT_LOG_FILE = os.environ.get("MANAGEMENT_LOG_FILE", "/var/log/cloudstack/management/management-server.log")
if not MANAGEMENT_LOG_FILE.startswith("/"):
    raise ImproperlyConfigured(f"MANAGEMENT_LOG_FILE={MANAGEMENT_LOG_FILE!r}: expected an absolute path")
MANAGEMENT_LOG_TIMEOUT = _float("MANAGEMENT_LOG_TIMEOUT", 30.0, minimum=1, maximum=600)
# Entries kept: those up to this many minutes before the failure (and a third of it after), at most MAX_ENTRIES.
MANAGEMENT_LOG_WINDOW_MINUTES = _int("MANAGEMENT_LOG_WINDOW_MINUTES", 30, minimum=1, maximum=7 * 24 * 60)
MANAGEMENT_LOG_MAX_ENTRIES = _int("MANAGEMENT_LOG_MAX_ENTRIES", 40, minimum=1, maximum=1000)

# --- Error triage and operator actions -----------------------------------------------------
# How far back the triage reads a failing router's events and async jobs.
FAILURE_EVIDENCE_HOURS = _int("FAILURE_EVIDENCE_HOURS", 24, minimum=1, maximum=24 * 30)
# How often an action polls queryAsyncJobResult, and how long it follows a job before giving up
# (CloudStack's job goes on; the console then says it no longer knows the outcome).
ACTION_POLL_SECONDS = _float("ACTION_POLL_SECONDS", 2.0, minimum=0.1, maximum=60)
ACTION_JOB_TIMEOUT_SECONDS = _int("ACTION_JOB_TIMEOUT_SECONDS", 1800, minimum=10, maximum=6 * 3600)
# Raw output kept per probe of an evidence collection (taken before a destructive action and
# kept beyond retention): larger than RAW_OUTPUT_MAX_BYTES, since the router will be gone.
EVIDENCE_RAW_MAX_BYTES = _int("EVIDENCE_RAW_MAX_BYTES", 2 * 1024 * 1024, minimum=1024)

# --- Troubleshooting matrix ---------------------------------------------------------------
# Threshold overrides as a JSON object, e.g. {"conntrack_warning_pct": 70}; names and
# defaults are listed on the console's /matrix/ page (diagnostics/matrix/thresholds.py).
MATRIX_THRESHOLDS = _json_object("MATRIX_THRESHOLDS")
if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in MATRIX_THRESHOLDS.values()):
    raise ImproperlyConfigured(
        'MATRIX_THRESHOLDS: expected a JSON object of numbers, e.g. {"conntrack_warning_pct": 70}'
    )

# --- History and retention ---------------------------------------------------------------
# The history job (every HISTORY_INTERVAL_SECONDS) rolls health samples up into hourly and
# daily aggregates and records the fleet counts; the retention job (every
# RETENTION_INTERVAL_SECONDS) deletes, in short batches, what is older than these. The
# latest collection of each router, the collections that opened or resolved a finding
# (for COLLECTION_EVIDENCE_RETENTION_DAYS) and the latest config snapshot of each kind are
# kept whatever their age; the audit log is kept longest.

RAW_OUTPUT_MAX_BYTES = _int("RAW_OUTPUT_MAX_BYTES", 256 * 1024, minimum=1024)
HISTORY_INTERVAL_SECONDS = _int("HISTORY_INTERVAL_SECONDS", 300, minimum=60, maximum=3600)
RETENTION_INTERVAL_SECONDS = _int("RETENTION_INTERVAL_SECONDS", 3600, minimum=300, maximum=86400)
# Raw health samples (one per collection).
HEALTH_RETENTION_DAYS = _int("HEALTH_RETENTION_DAYS", 14, minimum=1, maximum=3650)
# Hourly and daily aggregates, finding events, state changes and fleet counts.
HEALTH_ROLLUP_RETENTION_DAYS = _int("HEALTH_ROLLUP_RETENTION_DAYS", 400, minimum=1, maximum=3650)
# Collections with their probe results (the raw output, the largest thing stored) and verdicts.
COLLECTION_RETENTION_DAYS = _int("COLLECTION_RETENTION_DAYS", 7, minimum=1, maximum=3650)
COLLECTION_EVIDENCE_RETENTION_DAYS = _int("COLLECTION_EVIDENCE_RETENTION_DAYS", 90, minimum=1, maximum=3650)
CONFIG_SNAPSHOT_RETENTION_DAYS = _int("CONFIG_SNAPSHOT_RETENTION_DAYS", 90, minimum=1, maximum=3650)
SYNC_RUN_RETENTION_DAYS = _int("SYNC_RUN_RETENTION_DAYS", 30, minimum=1, maximum=3650)
AUDIT_RETENTION_DAYS = _int("AUDIT_RETENTION_DAYS", 400, minimum=1, maximum=3650)
# Rows deleted per statement (each in its own short transaction).
RETENTION_BATCH_SIZE = _int("RETENTION_BATCH_SIZE", 5000, minimum=100, maximum=100000)
_longest_other = max(
    HEALTH_RETENTION_DAYS,
    HEALTH_ROLLUP_RETENTION_DAYS,
    COLLECTION_RETENTION_DAYS,
    COLLECTION_EVIDENCE_RETENTION_DAYS,
    CONFIG_SNAPSHOT_RETENTION_DAYS,
    SYNC_RUN_RETENTION_DAYS,
)
if AUDIT_RETENTION_DAYS < _longest_other:
    raise ImproperlyConfigured(
        f"AUDIT_RETENTION_DAYS={AUDIT_RETENTION_DAYS}: the audit log is kept longest; "
        f"raise it to at least {_longest_other} (the longest other retention)"
    )
if COLLECTION_EVIDENCE_RETENTION_DAYS < COLLECTION_RETENTION_DAYS:
    raise ImproperlyConfigured(
        "COLLECTION_EVIDENCE_RETENTION_DAYS must be at least COLLECTION_RETENTION_DAYS "
        "(collections that opened or resolved a finding are kept longer, never shorter)"
    )

# --- On call: notifications ----------------------------------------------------------------
# When a finding opens at warning or critical, escalates, stays open past the reminder
# interval or resolves, the notify queue's worker tells every destination: webhooks
# (comma-separated http(s) URLs get a JSON body; prefix one with `slack+` — e.g.
# slack+https://hooks.slack.com/services/… — for the Slack/Mattermost `{"text": …}` form) and
# e-mail addresses (through EMAIL_URL). Webhook URLs often carry a token: they are never
# stored, logged or shown, only their host and a hash.
NOTIFY_WEBHOOKS = [part.strip() for part in os.environ.get("NOTIFY_WEBHOOKS", "").split(",") if part.strip()]
for _position, _hook in enumerate(NOTIFY_WEBHOOKS, start=1):
    _parsed_hook = urlparse(_hook.removeprefix("slack+"))
    if _parsed_hook.scheme not in {"http", "https"} or not _parsed_hook.hostname:
        # The URL itself is not repeated: it may carry a token.
        raise ImproperlyConfigured(f"NOTIFY_WEBHOOKS: entry {_position} is not an http(s) URL (optionally slack+)")
NOTIFY_EMAILS = [part.strip() for part in os.environ.get("NOTIFY_EMAILS", "").split(",") if part.strip()]
for _address in NOTIFY_EMAILS:
    if "@" not in _address or any(ch.isspace() or ch in "<>,;" for ch in _address) or _address.startswith("@"):
        raise ImproperlyConfigured(f"NOTIFY_EMAILS: {_address!r} is not an e-mail address")
# Mail server for NOTIFY_EMAILS, as a URL: smtp://user:password@host:25, smtp+tls://…:587,
# smtp+ssl://…:465, or consolemail:// (printed by the worker: a trial run).
EMAIL_URL = os.environ.get("EMAIL_URL") or "smtp://127.0.0.1:25"
_email_scheme = urlparse(EMAIL_URL).scheme
if _email_scheme not in {"smtp", "smtps", "smtp+tls", "smtp+ssl", "consolemail"}:
    raise ImproperlyConfigured(f"EMAIL_URL: scheme {_email_scheme!r}: expected smtp, smtp+tls, smtp+ssl or consolemail")
if _email_scheme != "consolemail" and not urlparse(EMAIL_URL).hostname:
    raise ImproperlyConfigured("EMAIL_URL: the URL has no host")
_email = env.email_url_config(EMAIL_URL)
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email["EMAIL_HOST"] or "localhost"
EMAIL_PORT = _email["EMAIL_PORT"] or 25
EMAIL_HOST_USER = _email["EMAIL_HOST_USER"] or ""
EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"] or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS", False))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL", False))
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("NOTIFY_FROM", "vrconsole@localhost")
# The console's address as the paged person reaches it (https://vrconsole.example.org): the
# messages' and the ticket reports' links start with it. Empty: links are paths only.
CONSOLE_URL = os.environ.get("CONSOLE_URL", "").rstrip("/")
if CONSOLE_URL:
    _url("CONSOLE_URL", CONSOLE_URL, {"http", "https"})
# A finding still open (not acknowledged, not silenced) notifies again this often; 0: never.
NOTIFY_REMINDER_SECONDS = _int("NOTIFY_REMINDER_SECONDS", 4 * 3600, minimum=0)
# Flap damping: a finding that opened this many times within the window notifies once, as
# flapping, and then not again for its openings and resolutions until the window has passed.
NOTIFY_FLAP_COUNT = _int("NOTIFY_FLAP_COUNT", 3, minimum=2)
NOTIFY_FLAP_WINDOW_SECONDS = _int("NOTIFY_FLAP_WINDOW_SECONDS", 3600, minimum=60)
# Retries of a failed delivery, as the waits before each (seconds, comma-separated): RQ
# re-queues it after each wait (the notify worker runs --with-scheduler). A dead destination
# costs nothing but its own retries: collections never wait on a notification.
_retry_raw = os.environ.get("NOTIFY_RETRY_SECONDS", "30,120,600")
try:
    NOTIFY_RETRY_SECONDS = [int(part) for part in _retry_raw.split(",") if part.strip()]
except ValueError:
    raise ImproperlyConfigured(
        f"NOTIFY_RETRY_SECONDS={_retry_raw!r}: expected whole seconds, comma-separated"
    ) from None
if any(wait < 0 for wait in NOTIFY_RETRY_SECONDS) or len(NOTIFY_RETRY_SECONDS) > 20:
    raise ImproperlyConfigured(f"NOTIFY_RETRY_SECONDS={_retry_raw!r}: at most 20 waits, none negative")
# Every webhook request gives up after this many seconds.
NOTIFY_TIMEOUT_SECONDS = _float("NOTIFY_TIMEOUT_SECONDS", 10.0, minimum=1.0, maximum=120.0)

# --- Prometheus ---------------------------------------------------------------------------
# /metrics answers only a request bearing `Authorization: Bearer <METRICS_TOKEN>`; with no
# token set the endpoint does not exist (404). At least 24 characters: it is a password.
METRICS_TOKEN = _secret_env("METRICS_TOKEN")
if METRICS_TOKEN and len(METRICS_TOKEN) < 24:
    raise ImproperlyConfigured("METRICS_TOKEN is too short: use at least 24 characters (e.g. openssl rand -hex 24)")

# --- Auth, static, i18n -----------------------------------------------------------------

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "fleet"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Failed sign-ins (console and admin alike) allowed per username and per client address within
# LOGIN_THROTTLE_WINDOW_SECONDS; past that the login form refuses until the window has passed.
# Counted in Redis, so every web process shares the count (vrconsole/login_throttle.py).
LOGIN_THROTTLE_FAILURES = _int("LOGIN_THROTTLE_FAILURES", 5, minimum=1, maximum=1000)
LOGIN_THROTTLE_ADDRESS_FAILURES = _int("LOGIN_THROTTLE_ADDRESS_FAILURES", 20, minimum=1, maximum=10000)
LOGIN_THROTTLE_WINDOW_SECONDS = _int("LOGIN_THROTTLE_WINDOW_SECONDS", 900, minimum=10, maximum=86400)

# --- HTTPS ------------------------------------------------------------------------------------
# Production is HTTPS: HSTS, the redirect to https and secure session and CSRF cookies are on
# unless PLAIN_HTTP=true, the explicit opt-out of a console served on plain HTTP inside a lab
# (the local run and the tests set it). Behind a TLS-terminating reverse proxy the console
# believes the proxy's X-Forwarded-Proto (SECURE_PROXY_SSL_HEADER, empty to ignore it): the
# proxy must set or overwrite that header on every request.
PLAIN_HTTP = _bool("PLAIN_HTTP", False)
SECURE_SSL_REDIRECT = _bool("SECURE_SSL_REDIRECT", not PLAIN_HTTP)
SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", not PLAIN_HTTP)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = _int("SECURE_HSTS_SECONDS", 0 if PLAIN_HTTP else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
# Preloading commits the whole domain to HTTPS in browsers' built-in lists; a console never
# decides that for its organisation, so it is off and Django's reminder about it is silenced.
SECURE_HSTS_PRELOAD = _bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
_proxy_header = os.environ.get("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto").strip()
if _proxy_header and not all(c.isalnum() or c == "-" for c in _proxy_header):
    raise ImproperlyConfigured(f"SECURE_PROXY_SSL_HEADER={_proxy_header!r}: expected a header name or nothing")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_header.upper().replace("-", "_"), "https") if _proxy_header and not PLAIN_HTTP else None
)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Sent on every response (vrconsole/security_headers.py): scripts, styles, images and
# sockets from the console itself only; the pages have no inline scripts (keep it so). Inline
# styles are allowed: plotly.js writes its chart styles into style elements at run time.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# plotly.js is served from the installed plotly package (vrconsole/vendor_assets.py), never a CDN.
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "vrconsole.vendor_assets.PackagedAssetFinder",
]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
WHITENOISE_USE_FINDERS = True

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(f"LOG_LEVEL={LOG_LEVEL!r}: expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"paramiko": {"level": "WARNING"}, "django.db.backends": {"level": "INFO"}},
}
