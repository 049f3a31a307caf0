"""IP sets behind egress rules, the IPv6 firewall, radvd and BGP, judged on real lab routers.

A lab of its own (name `vrn6`, base block 78). Its first isolated router carries an IPv6 guest
prefix with table ip6 ip6_firewall and radvd, an egress rule matching sourceCidrIpset-41, and a
BGP session to an upstream bgpd (devcloud.lab.network_features); every other router is a plain
IPv4 VR. Each fault changes the real thing (a set flushed, the nft table deleted, radvd or the
upstream bgpd stopped), then the router is collected over SSH with the real probes and judged
by the whole registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from devcloud import lab
from devcloud.lab.network_features import features_router
from devcloud.lab.topology import LabPlan
from diagnostics import evaluate as evaluation
from diagnostics.matrix import evaluate
from diagnostics.matrix.base import RouterContext, Verdict
from diagnostics.matrix.thresholds import DEFAULTS
from tests.diagnostics.lab_inventory import fresh_lab
from tests.lab_slots import lab_block, lab_name
from tests.matrix.lab_judging import collected, inventory

pytestmark = [pytest.mark.lab, pytest.mark.slow]

LAB_NAME = lab_name("vrn6")
LAB_BLOCK = lab_block(78)


@pytest.fixture(scope="module")
def network_lab() -> Iterator[LabPlan]:
    with fresh_lab(LAB_NAME, LAB_BLOCK) as plan:
        yield plan


def _judge(plan: LabPlan, kind: str, member: int = 0) -> tuple[Any, list[Verdict]]:
    router = inventory(plan, kind, member)
    seen = collected(router)
    ctx = RouterContext(
        router=evaluation.router_view(router),
        collection=seen,
        previous=None,
        peers=(),
        thresholds={name: float(default) for name, (default, _, _) in DEFAULTS.items()},
        now=datetime.now(UTC),
    )
    return seen, evaluate(ctx)


def _alarms(verdicts: list[Verdict]) -> list[tuple[str, str]]:
    return [(v.rule, v.title) for v in verdicts if v.severity != "info"]


@pytest.mark.django_db
def test_it_sees_ipv6_sets_and_bgp_on_the_features_router_and_finds_nothing_wrong(
    network_lab: LabPlan, lab_settings: Any
) -> None:
    chosen = features_router(network_lab)
    assert chosen is not None and chosen.name == inventory(network_lab, "isolated").name
    seen, verdicts = _judge(network_lab, "isolated")
    ipv6, frr, ipset = seen.fact("ipv6"), seen.fact("frr"), seen.fact("ipset")
    assert (ipv6.table("ip6_firewall").chain("fw_input").policy, ipv6.radvd_running) == ("drop", True)
    assert [(p.address, p.state) for p in frr.peers] == [("100.64.0.1", "Established")]
    assert ipset.named("sourceCidrIpset-41").members == ("10.1.0.0/26",)
    assert _alarms(verdicts) == []


@pytest.mark.django_db
def test_it_finds_nothing_wrong_with_the_plain_ipv4_routers(network_lab: LabPlan, lab_settings: Any) -> None:
    alarms = {}
    for kind, member in (("vpc", 0), ("direct", 0), ("redundant", 0), ("redundant", 1)):
        seen, verdicts = _judge(network_lab, kind, member)
        assert seen.fact("frr").configured is False
        alarms[f"{kind}{member}"] = _alarms(verdicts)
    assert alarms == {"vpc0": [], "direct0": [], "redundant0": [], "redundant1": []}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fault", "rule_id"),
    [
        ("ipset-members-missing", "egress-ipset-mismatch"),
        ("ip6-firewall-missing", "ipv6-firewall-missing"),
        ("ip6-firewall-policy-open", "ipv6-firewall-policy-open"),
        ("radvd-down", "radvd-not-running"),
        ("radvd-stale-prefix", "radvd-not-advertising"),
        ("bgp-peer-down", "bgp-peer-not-established"),
    ],
)
def test_it_fires_on_a_fault_injected_into_the_features_router(
    network_lab: LabPlan, lab_settings: Any, fault: str, rule_id: str
) -> None:
    name = inventory(network_lab, "isolated").name
    lab.inject_fault(name, fault, lab=LAB_NAME)
    try:
        _, verdicts = _judge(network_lab, "isolated")
    finally:
        lab.clear_fault(name, fault, lab=LAB_NAME)
    assert [rule for rule, _ in _alarms(verdicts)] == [rule_id]


@pytest.mark.django_db
def test_it_refuses_a_network_fault_on_a_router_without_the_features(network_lab: LabPlan) -> None:
    with pytest.raises(lab.LabError, match="has no IPv6"):
        lab.inject_fault(inventory(network_lab, "vpc").name, "radvd-down", lab=LAB_NAME)
