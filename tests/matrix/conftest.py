"""Fixtures of the matrix tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def lab_settings(settings: Any, tmp_path: Path) -> Any:
    """Settings for SSH to lab routers: a known-hosts file of the test's own, no overrides."""
    settings.SSH_KNOWN_HOSTS_FILE = str(tmp_path / "known_hosts")
    settings.SSH_OVERRIDES = {}
    return settings
