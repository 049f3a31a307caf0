"""A lab of its own for one test module, its routers synced from a simulator loaded with it.

The inventory comes the real way: the lab writes its registration file, a CloudStack
simulator serves it over HTTP and `sync_region` mirrors it into PostgreSQL, so Router, Host
and RouterNic rows are exactly what a real fleet would give the collection code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from devcloud import lab
from devcloud.lab.topology import LabPlan, plan_lab
from devcloud.simulator.server import start_simulator
from diagnostics.collect import run_collection
from diagnostics.models import Collection
from vrconsole.cloudstack.regions import RegionConfig
from vrconsole.models import Region, Router, SyncStatus
from vrconsole.sync import sync_region


@dataclass
class SyncedLab:
    """A running lab, its plan and the region its routers were synced into."""

    plan: LabPlan
    region: Region

    def router(self, name: str) -> Router:
        """The synced inventory row of a lab router."""
        return Router.objects.select_related("host", "zone").get(region=self.region, name=name)

    def first_of_kind(self, kind: str) -> str:
        """The name of the first planned router of a kind (isolated, vpc, redundant, direct)."""
        return next(router.name for router in self.plan.routers if router.kind == kind)


def require_lab() -> None:
    """Skip unless this machine can run the lab (Linux, root)."""
    if not (sys.platform.startswith("linux") and os.geteuid() == 0):
        pytest.skip("the lab needs Linux and root")


@contextmanager
def fresh_lab(name: str, block: int) -> Iterator[LabPlan]:
    """A default lab of that name for one test module (a leftover of a killed run is taken down first)."""
    require_lab()
    if lab.status(name).get("status") is not None:
        lab.down(name)
    lab.up(name=name, block=block)
    try:
        yield plan_lab(name, block)
    finally:
        lab.down(name)


def sync_lab_inventory(name: str, region_name: str) -> Region:
    """Serve the lab's registration file from a simulator and sync it into the database."""
    simulator = start_simulator(routers=0, lab_file=lab.registration_path(name), prewarm=False)
    try:
        result = sync_region(
            RegionConfig(region_name, simulator.url, simulator.api_key, simulator.secret_key, timeout=10)
        )
    finally:
        simulator.stop()
    assert result.status == SyncStatus.OK, result.error
    return Region.objects.get(name=region_name)


@contextmanager
def synced_lab(name: str, block: int, router_count: int | None = None) -> Iterator[SyncedLab]:
    """Bring a lab up (replacing a leftover one of the same name), sync it, and take it down after."""
    require_lab()
    if lab.status(name).get("status") is not None:
        lab.down(name)
    lab.up(name=name, block=block, router_count=router_count)
    region: Region | None = None
    try:
        region = sync_lab_inventory(name, f"lab-{name}")
        yield SyncedLab(plan=plan_lab(name, block, router_count), region=region)
    finally:
        lab.down(name)
        if region is not None:
            region.delete()


def collect(router: Router) -> Collection:
    """One collection of a router with the real probes and SSH, outside any queue."""
    return run_collection(Collection.objects.create(router=router), publish=lambda *_: None)
