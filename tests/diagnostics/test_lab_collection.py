"""Integration: a collection with the real probe registry against real lab routers.

A lab of its own (name `vrcs`, block 198.19.67.0/24) so it can run beside the lab tests.
Inventory rows are built from the lab plan, the way the sync would build them from the
simulator; keys come from the default settings (var/lab/keys).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devcloud.lab.topology import LabPlan
from diagnostics.collect import run_collection
from diagnostics.models import Collection, CollectionStatus, ConfigSnapshot, HealthSample, ProbeResult
from tests.diagnostics.lab_inventory import fresh_lab
from tests.lab_slots import lab_block, lab_name
from vrconsole.models import Host, Region, Router, Zone

pytestmark = [pytest.mark.lab, pytest.mark.slow]

LAB_NAME = lab_name("vrcs")
LAB_BLOCK = lab_block(67)


@pytest.fixture(scope="module")
def collection_lab() -> Iterator[LabPlan]:
    with fresh_lab(LAB_NAME, LAB_BLOCK) as plan:
        yield plan


@pytest.fixture
def lab_settings(settings: Any, tmp_path: Path) -> Any:
    settings.SSH_KNOWN_HOSTS_FILE = str(tmp_path / "known_hosts")
    settings.SSH_OVERRIDES = {}
    return settings


def inventory_router(plan: LabPlan, kind: str) -> Router:
    region = Region.objects.create(name=f"lab-{kind}")
    zone = Zone.objects.create(region=region, uuid=plan.zone_id, name=f"{plan.name}-zone1")
    planned = next(router for router in plan.routers if router.kind == kind)
    host = None
    if planned.hypervisor == "KVM":
        host = Host.objects.create(
            region=region, zone=zone, uuid=plan.host_id, name=plan.host_name, ipaddress=plan.host_ip, hypervisor="KVM"
        )
    return Router.objects.create(
        region=region,
        zone=zone,
        host=host,
        uuid=planned.id,
        name=planned.name,
        state="Running",
        hypervisor=planned.hypervisor,
        link_local_ip=planned.control.ipaddress,
    )


@pytest.mark.django_db
def test_it_collects_a_lab_kvm_router_through_the_host(collection_lab: LabPlan, lab_settings: Any) -> None:
    router = inventory_router(collection_lab, "isolated")
    collection = run_collection(Collection.objects.create(router=router), publish=lambda *_: None)
    failed = dict(ProbeResult.objects.filter(collection=collection, ok=False).values_list("name", "error"))
    assert collection.status == CollectionStatus.SUCCEEDED, collection.error
    assert "iptables_filter" in collection.facts and "conntrack" in collection.facts, failed
    assert ProbeResult.objects.filter(collection=collection, scope="host", ok=True).exists(), failed
    assert HealthSample.objects.get(collection=collection).conntrack_max is not None
    assert ConfigSnapshot.objects.filter(router=router, kind="iptables-filter").exists()


@pytest.mark.django_db
def test_it_collects_a_lab_router_reached_directly(collection_lab: LabPlan, lab_settings: Any) -> None:
    router = inventory_router(collection_lab, "direct")
    collection = run_collection(Collection.objects.create(router=router), publish=lambda *_: None)
    assert collection.status == CollectionStatus.SUCCEEDED, collection.error
    assert "conntrack" in collection.facts
