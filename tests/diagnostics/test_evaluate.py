"""Tests of building the rules' context from the database and of evaluating after a collection."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from diagnostics.evaluate import build_context, restore_facts
from diagnostics.jobs import collect_and_evaluate
from diagnostics.models import Collection, CollectionStatus, Finding, ProbeResult
from diagnostics.probes.disk import DiskFacts
from diagnostics.probes.processes import ProcessesFacts
from tests.diagnostics.matrix_doubles import FakeMatrix, finished_collection, stored_facts
from tests.vrconsole.router_factory import make_host, make_network, make_region, make_router, make_zone
from vrconsole import events
from vrconsole.events import FLEET_GROUP, router_group
from vrconsole.models import RouterNic

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_matrix():
    return FakeMatrix()


@pytest.fixture
def zone():
    return make_zone(make_region(), name="zone-a")


class Recorder:
    """A publisher that keeps what it was given, by group."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, group: str, message: dict[str, Any]) -> None:
        self.events.append((group, dict(message)))

    @property
    def fleet_events(self) -> list[dict[str, Any]]:
        return [message for group, message in self.events if group == FLEET_GROUP]

    @property
    def router_events(self) -> list[tuple[str, dict[str, Any]]]:
        return [(group, message) for group, message in self.events if group != FLEET_GROUP]


def test_it_builds_the_router_view_from_the_inventory(fake_matrix, zone):
    network = make_network(zone, name="shop-prod")
    network.services = ["Dhcp", "Dns", "SourceNat"]
    network.egress_default_policy = False
    network.save()
    host = make_host(zone, name="kvm-07", ipaddress="198.19.0.17")
    router = make_router(zone, name="r-231-VM", host=host, network=network, link_local_ip="169.254.3.4")
    RouterNic.objects.create(router=router, position=1, traffic_type="Guest", ip_address="10.1.1.1", mtu=1500)
    RouterNic.objects.create(router=router, position=0, traffic_type="Control", ip_address="169.254.3.4")
    _, _, context = build_context(router, thresholds={})
    view = context.router
    assert (view.name, view.zone_name, view.host_name, view.host_ip, view.host_state) == (
        "r-231-VM",
        "zone-a",
        "kvm-07",
        "198.19.0.17",
        "Up",
    )
    assert (view.network_name, view.egress_default_allow, view.network_services) == (
        "shop-prod",
        False,
        ("Dhcp", "Dns", "SourceNat"),
    )
    assert [(nic.position, nic.traffic_type, nic.mtu) for nic in view.nics] == [
        (0, "Control", None),
        (1, "Guest", 1500),
    ]


def test_it_reads_the_stored_facts_back_into_the_probes_dataclasses(fake_matrix, zone):
    router = make_router(zone)
    finished_collection(router, facts=stored_facts("processes", "disk"))
    _, _, context = build_context(router, thresholds={})
    assert isinstance(context.collection.fact("processes"), ProcessesFacts)
    assert isinstance(context.collection.fact("disk"), DiskFacts)
    assert context.collection.succeeded


def test_it_reports_unreadable_stored_facts_as_probe_errors_not_crashes() -> None:
    facts, unreadable = restore_facts({"disk": {"nonsense": 1}, "no-such-probe": {}, **stored_facts("processes")})
    assert list(facts) == ["processes"]
    assert set(unreadable) == {"disk", "no-such-probe"}


def test_it_gives_the_rules_the_failed_probes_by_name(fake_matrix, zone):
    router = make_router(zone)
    collection = finished_collection(router, facts=stored_facts("disk"))
    ProbeResult.objects.create(collection=collection, name="processes", ok=False, error="exit status 1: ps: nope")
    _, _, context = build_context(router, thresholds={})
    assert context.collection.probe_errors == {"processes": "exit status 1: ps: nope"}
    assert context.collection.fact("processes") is None


def test_it_uses_the_latest_finished_collection_and_the_successful_one_before(fake_matrix, zone):
    router = make_router(zone)
    older = finished_collection(router, minutes_ago=30)
    finished_collection(router, status=CollectionStatus.FAILED, minutes_ago=20)
    latest = finished_collection(router, minutes_ago=10)
    Collection.objects.create(router=router, status=CollectionStatus.RUNNING)
    _, collection, context = build_context(router, thresholds={})
    assert collection.pk == latest.pk
    assert context.previous.id == older.pk


def test_it_has_no_collection_for_a_router_never_collected(fake_matrix, zone):
    _, collection, context = build_context(make_router(zone), thresholds={})
    assert collection is None and context.collection is None and context.previous is None


def test_it_gives_the_redundant_peers_with_their_latest_collection(fake_matrix, zone):
    network = make_network(zone)
    router = make_router(zone, network=network, is_redundant=True, redundant_state="PRIMARY")
    peer = make_router(zone, network=network, is_redundant=True, redundant_state="BACKUP")
    peer_collection = finished_collection(peer)
    _, _, context = build_context(router, thresholds={})
    assert [(p.router.name, p.router.redundant_state, p.collection.id) for p in context.peers] == [
        (peer.name, "BACKUP", peer_collection.pk)
    ]


def test_it_passes_the_configured_thresholds_by_default(settings, zone):
    settings.MATRIX_THRESHOLDS = {"disk_warning_pct": 70}
    _, _, context = build_context(make_router(zone))
    assert context.threshold("disk_warning_pct") == 70.0


def test_it_passes_the_thresholds_it_is_given(zone):
    _, _, context = build_context(make_router(zone), thresholds={"disk_warning_pct": 60.0})
    assert context.threshold("disk_warning_pct") == 60.0


def test_it_publishes_the_verdicts_to_the_routers_group(fake_matrix, zone):
    router = make_router(zone)
    collection = finished_collection(router, facts=stored_facts("processes", "disk"))
    fake_matrix.fire("dnsmasq-not-running", "no dnsmasq")
    recorder = Recorder()
    fake_matrix.evaluate(router, collection, publish=recorder)
    [(group, message)] = recorder.router_events
    assert group == router_group(router.pk)
    assert message["type"] == "verdicts.updated"
    assert message["status"] == "critical"
    assert message["opened"] == ["dnsmasq-not-running"]
    assert message["verdicts"][0]["evidence"] == ["no dnsmasq"]


def test_it_tells_the_fleet_only_when_the_status_changes(fake_matrix, zone):
    router = make_router(zone)
    fake_matrix.fire("dnsmasq-not-running")
    recorder = Recorder()
    for _ in range(2):
        collection = finished_collection(router, facts=stored_facts("processes"))
        fake_matrix.evaluate(router, collection, publish=recorder)
    assert [(m["type"], m["status"], m["categories"]) for m in recorder.fleet_events] == [
        ("fleet.status", "critical", ["dhcp"])
    ]
    assert recorder.fleet_events[0]["uuid"] == router.uuid


def test_a_collection_is_judged_after_it_fails(zone):
    # No host and no address: the collection fails before any SSH, as an unreachable router does.
    router = make_router(zone, hypervisor="KVM", link_local_ip=None, state="Running")
    collection = collect_and_evaluate(Collection.objects.create(router=router), probes=[], publish=Recorder())
    assert collection.status == CollectionStatus.FAILED
    finding = Finding.objects.get(router=router)
    assert finding.rule == "router-unmanageable"
    assert finding.last_collection == collection


def test_it_keeps_the_collection_when_the_evaluation_breaks(monkeypatch, zone):
    def broken(*args, **kwargs):
        raise RuntimeError("a rule bug")

    monkeypatch.setattr("diagnostics.evaluate.build_context", broken)
    router = make_router(zone, hypervisor="KVM", link_local_ip=None)
    collection = collect_and_evaluate(Collection.objects.create(router=router), probes=[], publish=Recorder())
    collection.refresh_from_db()
    assert collection.status == CollectionStatus.FAILED
    assert not Finding.objects.exists()


async def _receive_both(layer: Any, first: str, second: str) -> tuple[dict[str, Any], dict[str, Any]]:
    # One event loop for both receives: channels_redis buffers per loop.
    return await layer.receive(first), await layer.receive(second)


def test_it_delivers_events_to_the_router_and_fleet_groups(fake_matrix, zone):
    router = make_router(zone)
    layer = get_channel_layer()
    router_channel = async_to_sync(layer.new_channel)()
    fleet_channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(router_group(router.pk), router_channel)
    async_to_sync(layer.group_add)(FLEET_GROUP, fleet_channel)
    fake_matrix.fire("dnsmasq-not-running")
    try:
        fake_matrix.evaluate(
            router, finished_collection(router, facts=stored_facts("processes")), publish=events.publish
        )
        router_message, fleet_message = async_to_sync(_receive_both)(layer, router_channel, fleet_channel)
    finally:
        async_to_sync(layer.group_discard)(router_group(router.pk), router_channel)
        async_to_sync(layer.group_discard)(FLEET_GROUP, fleet_channel)
    assert router_message["type"] == "verdicts.updated"
    assert (fleet_message["type"], fleet_message["router_id"]) == ("fleet.status", router.pk)


def test_it_tells_the_fleet_when_a_stale_router_is_judged_again(fake_matrix, zone):
    from datetime import timedelta

    from django.utils import timezone

    from diagnostics.models import RouterHealth

    router = make_router(zone)
    recorder = Recorder()
    fake_matrix.evaluate(router, finished_collection(router, facts=stored_facts("processes")), publish=recorder)
    # Its row read "unknown: stale" while no sweep reached it; a fresh verdict must reach the wall.
    RouterHealth.objects.filter(router=router).update(evaluated_at=timezone.now() - timedelta(days=1))
    fake_matrix.evaluate(router, finished_collection(router, facts=stored_facts("processes")), publish=recorder)
    assert [(m["type"], m["status"]) for m in recorder.fleet_events] == [("fleet.status", "ok"), ("fleet.status", "ok")]
