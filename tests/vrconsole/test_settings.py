"""Settings refuse malformed values with a message naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _import_settings(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDSTACK_", "DATABASE_URL", "REDIS_URL"))}
    clean.update({"SECRET_KEY": "s" * 40, "PYTHONPATH": str(ROOT)})
    clean.pop("VRCONSOLE_TESTING", None)
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import vrconsole.settings"],
        env=clean,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_defaults_import_cleanly() -> None:
    result = _import_settings()
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG='maybe': expected a boolean"),
        ({"SYNC_INTERVAL_SECONDS": "often"}, "SYNC_INTERVAL_SECONDS='often': expected a whole number"),
        ({"SYNC_INTERVAL_SECONDS": "1"}, "SYNC_INTERVAL_SECONDS='1': must be at least 10"),
        ({"SSH_CONNECT_TIMEOUT": "-3"}, "SSH_CONNECT_TIMEOUT='-3': must be at least 0.5"),
        ({"DATABASE_URL": "mysql://db/x"}, "DATABASE_URL='mysql://db/x': expected a URL with scheme"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL='localhost:6379': expected a URL with scheme"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY is too short"),
        (
            {"CLOUDSTACK_URL": "ftp://cloud/client/api", "CLOUDSTACK_API_KEY": "k", "CLOUDSTACK_SECRET_KEY": "s"},
            "CLOUDSTACK_URL='ftp://cloud/client/api'",
        ),
        (
            {"CLOUDSTACK_URL": "https://cloud.example/client/api"},
            "CLOUDSTACK_API_KEY and CLOUDSTACK_SECRET_KEY are required",
        ),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD'"),
        ({"SYNC_MASS_REMOVAL_GUARD": "2"}, "SYNC_MASS_REMOVAL_GUARD='2': must be at most 1.0"),
        ({"CSRF_TRUSTED_ORIGINS": "console.example"}, "must start with http:// or https://"),
        ({"SSH_ALLOWED_NETWORKS": "10.0.0.0/8,lab"}, "SSH_ALLOWED_NETWORKS: 'lab' is not a network"),
        ({"MATRIX_THRESHOLDS": "{not json"}, "MATRIX_THRESHOLDS: not valid JSON"),
        ({"SSH_OVERRIDES": "[1]"}, "SSH_OVERRIDES: expected a JSON object"),
    ],
)
def test_it_refuses_a_malformed_value_naming_it(env: dict[str, str], message: str) -> None:
    result = _import_settings(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_without_a_secret_key_one_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    first = _import_settings(SECRET_KEY="", VRCONSOLE_VAR_DIR=str(tmp_path))
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "secret_key"
    key = key_file.read_text()
    assert len(key) >= 32
    assert key_file.stat().st_mode & 0o077 == 0
    second = _import_settings(SECRET_KEY="", VRCONSOLE_VAR_DIR=str(tmp_path))
    assert second.returncode == 0, second.stderr
    assert key_file.read_text() == key


def _show(expression: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDSTACK_", "DATABASE_URL", "REDIS_URL"))}
    clean.update({"SECRET_KEY": "s" * 40, "PYTHONPATH": str(ROOT)})
    clean.pop("PLAIN_HTTP", None)
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", f"import vrconsole.settings as s; print({expression})"],
        env=clean,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_check_deploy_is_clean_with_production_settings() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"PLAIN_HTTP", "DJANGO_SETTINGS_MODULE", "DEBUG"}}
    env.update(
        {
            "SECRET_KEY": "Zq8v-production-secret-key-with-many-different-characters-0123456789",
            "DJANGO_SETTINGS_MODULE": "vrconsole.settings",
        }
    )
    env["DEBUG"] = "false"
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_plain_http_is_an_explicit_opt_out_of_https() -> None:
    production = _show(
        "(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0)"
    )
    assert production.stdout.strip() == "(True, True, True, True)", production.stderr
    lab = _show("(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.SECURE_HSTS_SECONDS)", PLAIN_HTTP="true")
    assert lab.stdout.strip() == "(False, False, 0)", lab.stderr
    assert _show("s.SECURE_PROXY_SSL_HEADER").stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https')"


@pytest.mark.parametrize(
    "name", ["SECRET_KEY", "CLOUDSTACK_API_KEY", "CLOUDSTACK_SECRET_KEY", "METRICS_TOKEN", "DATABASE_URL", "REDIS_URL"]
)
def test_every_secret_can_come_from_a_file(name: str, tmp_path: Path) -> None:
    values = {
        "SECRET_KEY": "a-secret-key-read-from-a-container-secret-file",
        "CLOUDSTACK_API_KEY": "api-key-from-a-file",
        "CLOUDSTACK_SECRET_KEY": "secret-key-from-a-file",
        "METRICS_TOKEN": "a-metrics-token-read-from-a-file",
        "DATABASE_URL": "postgres://vrconsole:pw-from-file@db.example:5432/vrconsole",
        "REDIS_URL": "redis://:pw-from-file@redis.example:6379/0",
    }
    secret_file = tmp_path / name.lower()
    secret_file.write_text(values[name] + "\n")
    env = {f"{name}_FILE": str(secret_file)}
    if name == "SECRET_KEY":
        env["SECRET_KEY"] = ""
    if name.startswith("CLOUDSTACK_"):
        env.update(
            {
                "CLOUDSTACK_URL": "https://cloud.example/client/api",
                "CLOUDSTACK_API_KEY": "k",
                "CLOUDSTACK_SECRET_KEY": "s",
            }
        )
        env.pop(name)
        env[name] = ""
    result = _show(f"s.{name}", **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == values[name]


def test_a_secret_and_its_file_together_are_refused(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("x" * 40)
    result = _import_settings(SECRET_KEY="y" * 40, SECRET_KEY_FILE=str(tmp_path / "key"))
    assert result.returncode != 0 and "Set either SECRET_KEY or SECRET_KEY_FILE, not both" in result.stderr


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("DATABASE_URL", "postgres://vrconsole:hunter2-db-password@db:notaport/vrconsole"),
        ("REDIS_URL", "redis://:hunter2-redis-password@redis:notaport/0"),
        ("REDIS_URL", "http://:hunter2-redis-password@redis:6379/0"),
        ("DATABASE_URL", "mysql://vrconsole:hunter2-db-password@db/vrconsole"),
    ],
)
def test_a_malformed_url_is_reported_with_its_password_masked(name: str, url: str) -> None:
    result = _import_settings(**{name: url})
    assert result.returncode != 0 and name in result.stderr
    assert "hunter2" not in result.stderr and "***" in result.stderr


def test_redis_clients_get_connect_and_read_timeouts() -> None:
    result = _show(
        "s.REDIS_CONNECTION_URL, s.CHANNEL_LAYERS['default']['CONFIG']['hosts'], s.RQ_QUEUES['collect']['URL']",
        REDIS_URL="redis://127.0.0.1:6379/3",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("socket_timeout=10") == 3 and result.stdout.count("socket_connect_timeout=5") == 3
