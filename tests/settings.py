"""Settings for the test suite: real PostgreSQL and Redis, the defaults of the local machine.

DATABASE_URL and REDIS_URL may be overridden (CI and parallel runs use their own names).
"""

import os

from tests.lab_slots import claim_slot

# Two runs on one machine (a CI beside an engineer's run) keep apart: each claims a slot, which
# shifts its lab names and blocks, its test database and its Redis database (15, 14, … 10).
TEST_SLOT = claim_slot()
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/vrconsole")
os.environ.setdefault("REDIS_URL", f"redis://127.0.0.1:6379/{15 - TEST_SLOT}")
# Tests only ever reach loopback and the lab: a mistake must fail, not leave the machine.
os.environ.setdefault("SSH_ALLOWED_NETWORKS", "127.0.0.0/8,198.19.0.0/16")
# The unit tests' "routers" behind a "host" are sshd processes on loopback; the lab's are link-local.
os.environ.setdefault("SSH_FORWARD_ALLOWED_NETWORKS", "169.254.0.0/16,127.0.0.0/8")
os.environ.setdefault("FLEET_SUMMARY_CACHE_SECONDS", "0")
# Each xdist worker its own channel-layer names (they share the slot's Redis database): a
# fleet event one worker's test publishes must not reach a socket another worker's test holds
# open. Set in the worker (xdist names it before Django's settings load), not inherited from
# the controller; processes a test starts inherit it (the browser tests' daphne is given it).
if os.environ.get("PYTEST_XDIST_WORKER"):
    _prefix = os.environ.get("CHANNELS_PREFIX", "vrconsole")
    os.environ["CHANNELS_PREFIX"] = f"{_prefix}-{os.environ['PYTEST_XDIST_WORKER']}"
# The tests drive the dev cloud (simulator, lab, their commands): install its app.
os.environ.setdefault("VRCONSOLE_DEVCLOUD", "true")
os.environ.setdefault("SECRET_KEY", "test-secret-key-that-is-long-enough-for-the-check")
# The test servers (daphne in the browser tests) speak plain HTTP on loopback.
os.environ.setdefault("PLAIN_HTTP", "true")

from vrconsole.settings import *  # noqa: E402,F401,F403

if TEST_SLOT and DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":  # noqa: F405
    # (A SQLite database's name is its file's path: a run on SQLite names its own file.)
    _database = DATABASES["default"]  # noqa: F405
    _database.setdefault("TEST", {}).setdefault("NAME", f"test_{_database['NAME']}_s{TEST_SLOT}")

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
