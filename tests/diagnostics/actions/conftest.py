"""Fixtures of the error-triage and action tests: a CloudStack simulator synced into the database.

The console is configured with the simulator as its one region (CLOUDSTACK_URL...), the fleet
is synced the real way; tests pick routers of the kind they need (support.pick). Jobs are quick
(0.2 s) and the action poll interval short, so a followed job ends in well under a second.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devcloud.simulator.server import RunningSimulator, start_simulator
from tests.diagnostics.actions.support import REGION
from vrconsole.cloudstack.regions import RegionConfig
from vrconsole.models import Region, SyncStatus
from vrconsole.sync import sync_region


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[RunningSimulator]:
    """60 synthetic routers; failed starts write management-server.log lines under tmp_path."""
    running = start_simulator(routers=60, seed=11, job_delay=0.2, management_log=tmp_path / "management-server.log")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def synced(sim: RunningSimulator, settings: Any) -> Region:
    """The simulator configured as the console's region and synced into the database."""
    settings.CLOUDSTACK_CONFIG = None
    settings.CLOUDSTACK_URL = sim.url
    settings.CLOUDSTACK_API_KEY = sim.api_key
    settings.CLOUDSTACK_SECRET_KEY = sim.secret_key
    settings.CLOUDSTACK_REGION = REGION
    settings.CLOUDSTACK_TIMEOUT = 5
    settings.ACTION_POLL_SECONDS = 0.05
    settings.ACTION_JOB_TIMEOUT_SECONDS = 30
    settings.MANAGEMENT_SERVERS = []
    result = sync_region(RegionConfig(REGION, sim.url, sim.api_key, sim.secret_key, timeout=5))
    assert result.status == SyncStatus.OK, result.error
    return Region.objects.get(name=REGION)
