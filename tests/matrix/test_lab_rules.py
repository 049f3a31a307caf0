"""The rules on facts collected from real lab routers: quiet on healthy ones, firing on injected faults.

A lab of its own (name `vrcm`, base block 71 (tests/lab_slots.py)) so it can run beside the other lab
tests. (dnsmasq-down is left out: lab routers share the machine's PID namespace, so `ps`
in one sees every lab's dnsmasq.) Each test builds the router's inventory rows from the lab's registration (what the
API simulator would list) through the sync's own mapping, collects it with the real probes,
builds the context the way diagnostics.evaluate does, and runs the whole registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from devcloud import lab
from devcloud.lab.topology import LabPlan
from diagnostics import evaluate as evaluation
from diagnostics.collect import run_collection
from diagnostics.matrix import evaluate
from diagnostics.matrix.base import CollectionView, PeerView, RouterContext, Verdict
from diagnostics.matrix.thresholds import DEFAULTS
from diagnostics.models import Collection, CollectionStatus
from tests.diagnostics.lab_inventory import fresh_lab
from tests.lab_slots import lab_block, lab_name
from tests.matrix.lab_judging import collected, inventory
from vrconsole.models import Router

pytestmark = [pytest.mark.lab, pytest.mark.slow]

LAB_NAME = lab_name("vrcm")
LAB_BLOCK = lab_block(71)


@pytest.fixture(scope="module")
def rules_lab() -> Iterator[LabPlan]:
    with fresh_lab(LAB_NAME, LAB_BLOCK) as plan:
        yield plan


def _context(router: Router, collection: CollectionView, peers: tuple[PeerView, ...] = ()) -> RouterContext:
    return RouterContext(
        router=evaluation.router_view(router),
        collection=collection,
        previous=None,
        peers=peers,
        thresholds={name: float(default) for name, (default, _, _) in DEFAULTS.items()},
        now=datetime.now(UTC),
    )


def _judge(plan: LabPlan, kind: str, member: int = 0, peers: tuple[PeerView, ...] = ()) -> list[Verdict]:
    router = inventory(plan, kind, member)
    return evaluate(_context(router, collected(router), peers))


def _router_name(plan: LabPlan, kind: str) -> str:
    return next(router.name for router in plan.routers if router.kind == kind)


def _alarms(verdicts: list[Verdict]) -> list[tuple[str, str]]:
    return [(v.rule, v.title) for v in verdicts if v.severity != "info"]


@pytest.mark.django_db
def test_it_finds_nothing_wrong_with_healthy_lab_routers(rules_lab: LabPlan, lab_settings: Any) -> None:
    alarms = {kind: _alarms(_judge(rules_lab, kind)) for kind in ("isolated", "vpc", "direct")}
    assert alarms == {"isolated": [], "vpc": [], "direct": []}


@pytest.mark.django_db
def test_it_finds_nothing_wrong_with_a_healthy_lab_redundant_pair(rules_lab: LabPlan, lab_settings: Any) -> None:
    first = inventory(rules_lab, "redundant", 0)
    first_peer = PeerView(evaluation.router_view(first), collected(first))
    second_verdicts = _judge(rules_lab, "redundant", 1, peers=(first_peer,))
    second = inventory(rules_lab, "redundant", 1)
    second_peer = PeerView(evaluation.router_view(second), collected(second))
    first_verdicts = _judge(rules_lab, "redundant", 0, peers=(second_peer,))
    assert {first_peer.router.redundant_state, second_peer.router.redundant_state} == {"PRIMARY", "BACKUP"}
    assert (_alarms(first_verdicts), _alarms(second_verdicts)) == ([], [])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "fault", "rule_id"),
    [
        ("isolated", "snat-missing", "snat-rule-missing"),
        ("isolated", "mtu-mismatch", "mtu-mismatch"),
        ("isolated", "log-not-rotating", "log-not-rotating"),
        ("isolated", "var-log-full", "filesystem-near-full"),
        ("isolated", "config-apply-failed", "config-apply-failed"),
        ("isolated", "zombie-haproxy", "haproxy-defunct-children"),
        ("isolated", "stale-lease", "dhcp-stale-lease"),
        ("isolated", "dnsmasq-down", "dnsmasq-not-running"),
        ("isolated", "conntrack-near-limit", "conntrack-table-near-full"),
        ("isolated", "outdated-template", "template-version-mismatch"),
        ("isolated", "qemu-tap-failure", "qemu-log-errors"),
    ],
)
def test_it_fires_on_a_fault_injected_into_a_lab_router(
    rules_lab: LabPlan, lab_settings: Any, kind: str, fault: str, rule_id: str
) -> None:
    name = _router_name(rules_lab, kind)
    lab.inject_fault(name, fault, lab=LAB_NAME)
    try:
        verdicts = _judge(rules_lab, kind)
    finally:
        lab.clear_fault(name, fault, lab=LAB_NAME)
    assert rule_id in {v.rule for v in verdicts if v.severity != "info"}


@pytest.mark.django_db
def test_it_calls_a_running_router_without_sshd_unmanageable(rules_lab: LabPlan, lab_settings: Any) -> None:
    name = _router_name(rules_lab, "isolated")
    lab.inject_fault(name, "sshd-down", lab=LAB_NAME)
    try:
        router = inventory(rules_lab, "isolated")
        collection = run_collection(Collection.objects.create(router=router), publish=lambda *_: None)
    finally:
        lab.clear_fault(name, "sshd-down", lab=LAB_NAME)
    assert collection.status == CollectionStatus.FAILED
    verdicts = evaluate(_context(router, evaluation.collection_view(collection)))
    assert "router-unmanageable" in {v.rule for v in verdicts if v.severity != "info"}


@pytest.mark.django_db
def test_it_sees_split_brain_when_both_members_of_a_lab_pair_are_primary(rules_lab: LabPlan, lab_settings: Any) -> None:
    name = [router.name for router in rules_lab.routers if router.kind == "redundant"][0]
    lab.inject_fault(name, "split-brain", lab=LAB_NAME)
    try:
        first, second = inventory(rules_lab, "redundant", 0), inventory(rules_lab, "redundant", 1)
        first_seen, second_seen = collected(first), collected(second)
    finally:
        lab.clear_fault(name, "split-brain", lab=LAB_NAME)
    verdicts = evaluate(_context(first, first_seen, peers=(PeerView(evaluation.router_view(second), second_seen),)))
    assert "split-brain" in {v.rule for v in verdicts if v.severity == "critical"}
