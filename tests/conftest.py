"""Shared fixtures: a CloudStack API simulator serving a small synthetic fleet over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devcloud.simulator.server import RunningSimulator, start_simulator


@pytest.fixture
def cloudstack_sim() -> Iterator[RunningSimulator]:
    """A simulator with 50 routers on an ephemeral loopback port; async jobs take 0.2 s. No database."""
    sim = start_simulator(routers=50, seed=7, job_delay=0.2)
    try:
        yield sim
    finally:
        sim.stop()
