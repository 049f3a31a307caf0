"""conntrackd, site-to-site and remote-access VPN rules on real lab routers: quiet when healthy, firing on real faults.

A lab of its own (name `vrvp`, base block 77). Its redundant pair runs conntrackd with the
VR's settings, syncing over the guest network; the VPC router gets a site-to-site tunnel to
the second isolated router (a strongSwan customer gateway) and the first isolated router
serves remote-access VPN (charon with L2TP-PSK, xl2tpd), each set up with the files
configure.py writes. Each fault breaks the real daemon or link, then the router is collected
with the real probes and judged by the whole registry, as diagnostics.evaluate does.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from devcloud import lab
from devcloud.lab import faults_vpn, vpn
from devcloud.lab.topology import LabPlan
from diagnostics import evaluate as evaluation
from diagnostics.matrix import evaluate
from diagnostics.matrix.base import CollectionView, PeerView, RouterContext, Verdict
from diagnostics.matrix.thresholds import DEFAULTS
from tests.diagnostics.lab_inventory import fresh_lab
from tests.lab_slots import lab_block, lab_name
from tests.matrix.lab_judging import collected, inventory

pytestmark = [pytest.mark.lab, pytest.mark.slow]

LAB_NAME = lab_name("vrvp")
LAB_BLOCK = lab_block(77)


@pytest.fixture(scope="module")
def vpn_lab() -> Iterator[LabPlan]:
    with fresh_lab(LAB_NAME, LAB_BLOCK) as plan:
        faults_vpn.enable_site_to_site(plan, LAB_NAME)
        faults_vpn.enable_remote_access(plan, LAB_NAME)
        yield plan


def _context(
    kind: str, member: int, seen: CollectionView, plan: LabPlan, peers: tuple[PeerView, ...] = ()
) -> RouterContext:
    return RouterContext(
        router=evaluation.router_view(inventory(plan, kind, member)),
        collection=seen,
        previous=None,
        peers=peers,
        thresholds={name: float(default) for name, (default, _, _) in DEFAULTS.items()},
        now=datetime.now(UTC),
    )


def _judge(plan: LabPlan, kind: str, member: int = 0) -> list[Verdict]:
    router = inventory(plan, kind, member)
    return evaluate(_context(kind, member, collected(router), plan))


def _name(plan: LabPlan, kind: str, member: int = 0) -> str:
    return [router.name for router in plan.routers if router.kind == kind][member]


def _alarms(verdicts: list[Verdict]) -> list[tuple[str, str]]:
    return [(v.rule, v.title) for v in verdicts if v.severity != "info"]


@pytest.mark.django_db
def test_it_finds_nothing_wrong_with_healthy_routers_running_conntrackd_and_vpns(
    vpn_lab: LabPlan, lab_settings: Any
) -> None:
    alarms = {
        (kind, member): _alarms(_judge(vpn_lab, kind, member))
        for kind, member in (
            ("isolated", 0),
            ("isolated", 1),
            ("vpc", 0),
            ("redundant", 0),
            ("redundant", 1),
            ("direct", 0),
        )
    }
    assert alarms == {key: [] for key in alarms}


@pytest.mark.django_db
def test_it_sees_the_tunnel_up_and_remote_access_served_on_healthy_routers(vpn_lab: LabPlan, lab_settings: Any) -> None:
    tunnel = collected(inventory(vpn_lab, "vpc")).fact("vpn")
    remote = collected(inventory(vpn_lab, "isolated")).fact("vpn")
    connection = faults_vpn.site_to_site_connection(vpn_lab)
    assert ([c.name for c in tunnel.connections], tunnel.is_up(connection)) == ([connection], True)
    assert (remote.remote_access, remote.xl2tpd_running, "L2TP-PSK" in remote.loaded) == (
        (vpn.remote_access_router(vpn_lab).public.ipaddress,),
        True,
        True,
    )


@pytest.mark.django_db
def test_it_sees_both_members_of_a_pair_syncing_conntrackd(vpn_lab: LabPlan, lab_settings: Any) -> None:
    seen = {}
    for member in (0, 1):
        router = collected(inventory(vpn_lab, "redundant", member))
        facts = router.fact("conntrackd")
        seen[router.fact("vrrp").state] = (
            facts.running,
            facts.multicast_address,
            facts.later.packets_recv > facts.first.packets_recv,
        )
    assert seen == {"PRIMARY": (True, "225.0.0.50", True), "BACKUP": (True, "225.0.0.50", True)}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "fault", "rule_id"),
    [
        ("redundant", "conntrackd-down", "conntrackd-not-running"),
        ("redundant", "conntrackd-not-syncing", "conntrackd-not-syncing"),
        ("isolated", "remote-access-vpn-down", "remote-access-vpn-down"),
        ("vpc", "s2s-tunnel-down", "site-to-site-vpn-tunnel-down"),
    ],
)
def test_it_fires_on_a_fault_injected_into_a_lab_router(
    vpn_lab: LabPlan, lab_settings: Any, kind: str, fault: str, rule_id: str
) -> None:
    name = _name(vpn_lab, kind)
    lab.inject_fault(name, fault, lab=LAB_NAME)
    try:
        verdicts = _judge(vpn_lab, kind)
    finally:
        lab.clear_fault(name, fault, lab=LAB_NAME)
    assert rule_id in {v.rule for v in verdicts if v.severity != "info"}


@pytest.mark.django_db
def test_it_names_the_connection_the_peer_and_the_reason_of_a_tunnel_down(vpn_lab: LabPlan, lab_settings: Any) -> None:
    name = _name(vpn_lab, "vpc")
    _, peer = vpn.site_to_site_pair(vpn_lab)
    lab.inject_fault(name, "s2s-tunnel-down", lab=LAB_NAME)
    try:
        verdicts = _judge(vpn_lab, "vpc")
    finally:
        lab.clear_fault(name, "s2s-tunnel-down", lab=LAB_NAME)
    [down] = [v for v in verdicts if v.rule == "site-to-site-vpn-tunnel-down"]
    assert down.title.startswith(
        f"site-to-site VPN vpn-{peer.public.ipaddress} to peer {peer.public.ipaddress} is down"
    )
    assert any("AUTHENTICATION_FAILED" in line for line in down.evidence)
    assert "ipsec-negotiation-errors" not in {v.rule for v in verdicts}


@pytest.mark.django_db
def test_it_accepts_a_backup_with_remote_access_configured_and_its_daemons_stopped(
    vpn_lab: LabPlan, lab_settings: Any
) -> None:
    members = {}
    for member in (0, 1):
        router = [r for r in vpn_lab.routers if r.kind == "redundant"][member]
        target = faults_vpn.configure_remote_access(vpn_lab, LAB_NAME, router)
        state = collected(inventory(vpn_lab, "redundant", member)).fact("vrrp").state
        if state == "PRIMARY":
            faults_vpn.start_remote_access(target)
        members[state] = member
    seen = {}
    for state, member in members.items():
        facts = collected(inventory(vpn_lab, "redundant", member)).fact("vpn")
        vpn_alarms = [
            a
            for a in _alarms(_judge(vpn_lab, "redundant", member))
            if a[0].startswith(("remote-access", "site-to-site"))
        ]
        seen[state] = (bool(facts.remote_access), facts.xl2tpd_running, vpn_alarms)
    assert seen == {"PRIMARY": (True, True, []), "BACKUP": (True, False, [])}
