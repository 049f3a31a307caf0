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
