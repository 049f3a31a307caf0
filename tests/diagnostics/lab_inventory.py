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
from typing import Any

import pytest

from devcloud import lab
from devcloud.lab.lifecycle import mount_file
from devcloud.lab.system_commands import run_inside
from devcloud.lab.topology import LabPlan, plan_lab
from devcloud.simulator.server import RunningSimulator, start_simulator
from diagnostics.collect import run_collection
from diagnostics.models import Collection
from tests.lab_slots import require_serial
from vrconsole.cloudstack.regions import RegionConfig
from vrconsole.models import Host, Network, Region, Router, SyncStatus, Zone
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
    """Skip unless this machine can run the lab (Linux, root); refuse a second xdist worker."""
    if not (sys.platform.startswith("linux") and os.geteuid() == 0):
        pytest.skip("the lab needs Linux and root")
    require_serial()


@contextmanager
def fresh_lab(name: str, block: int, router_count: int | None = None) -> Iterator[LabPlan]:
    """A lab of that name for one test module (a leftover of a killed run is taken down first)."""
    require_lab()
    if lab.status(name).get("status") is not None:
        lab.down(name)
    lab.up(name=name, block=block, router_count=router_count)
    try:
        yield plan_lab(name, block, router_count)
    finally:
        lab.down(name)


@contextmanager
def lab_simulator(name: str, block: int) -> Iterator[RunningSimulator]:
    """A fresh lab and a CloudStack simulator serving it (jobs take 0.2 s, as a real one's take time)."""
    with fresh_lab(name, block):
        simulator = start_simulator(routers=0, lab_file=lab.registration_path(name), prewarm=False, job_delay=0.2)
        try:
            yield simulator
        finally:
            simulator.stop()


def inside(lab_name: str, router: str, command: str) -> str:
    """A shell command run inside a lab router (r-10-VM is the lab's first), its output whatever its status."""
    namespace = f"{lab_name}-r{int(router.split('-')[1]) - 10}"
    return run_inside(namespace, mount_file(lab_name, namespace), ["/bin/sh", "-c", command], check=False, timeout=30)


def isolated_router_rows(plan: LabPlan, region_name: str, **fields: Any) -> Router:
    """Inventory rows of the lab's isolated router, written directly: its region, zone, KVM host and network.

    The network has the services of the VR's usual isolated offering (they decide which rules apply).
    """
    region = Region.objects.create(name=region_name)
    zone = Zone.objects.create(region=region, uuid=plan.zone_id, name=f"{plan.name}-zone1")
    planned = next(router for router in plan.routers if router.kind == "isolated")
    host = Host.objects.create(
        region=region,
        zone=zone,
        uuid=plan.host_id,
        name=plan.host_name,
        ipaddress=plan.host_ip,
        hypervisor="KVM",
        state="Up",
    )
    network = Network.objects.create(
        region=region,
        zone=zone,
        uuid=f"{planned.id}-network",
        name="lab-guest",
        services=["Dhcp", "Dns", "SourceNat", "Firewall", "PortForwarding", "StaticNat", "UserData"],
        egress_default_policy=False,
    )
    return Router.objects.create(
        region=region,
        zone=zone,
        host=host,
        network=network,
        uuid=planned.id,
        name=planned.name,
        state="Running",
        hypervisor=planned.hypervisor,
        link_local_ip=planned.control.ipaddress,
        **fields,
    )


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
