"""IP sets behind egress rules, against FW_EGRESS_RULES and the firewallrules databag (fixtures from a lab router)."""

from __future__ import annotations

from typing import Any

from diagnostics.matrix.rules import egress_sets
from tests.matrix.builders import context, parsed, vpc_router

RULE = "-A FW_EGRESS_RULES -p tcp -m set --match-set sourceCidrIpset-41 src -m tcp --dport 25 -j DROP"


def _facts(ipset: str = "lab_egress_rule", iptables: str = "lab_egress_ipset") -> dict[str, Any]:
    return {"ipset": parsed("ipset", ipset), "iptables_filter": parsed("iptables_filter", iptables)}


def test_it_is_quiet_when_the_set_holds_what_the_databag_says() -> None:
    assert egress_sets.EGRESS_SETS.check(context(facts=_facts())) == []


def test_it_reports_a_flushed_set_as_a_rule_that_matches_nothing() -> None:
    [verdict] = egress_sets.EGRESS_SETS.check(context(facts=_facts("set_flushed")))
    assert verdict.evidence == (f"{RULE}: set sourceCidrIpset-41 is empty, the rule matches nothing",)
    assert (verdict.category, verdict.severity) == ("firewall", "critical")


def test_it_names_the_cidr_the_set_lacks_against_the_databag() -> None:
    [verdict] = egress_sets.EGRESS_SETS.check(context(facts=_facts("member_missing")))
    assert verdict.evidence == (
        f"{RULE}: set sourceCidrIpset-41 lacks 10.1.0.64/27 against /etc/cloudstack/firewallrules.json",
    )


def test_it_reports_a_set_the_kernel_does_not_have() -> None:
    [verdict] = egress_sets.EGRESS_SETS.check(context(facts=_facts("no_sets")))
    assert verdict.evidence == (f"{RULE}: set sourceCidrIpset-41 does not exist",)


def test_it_says_nothing_when_ipset_could_not_run() -> None:
    assert egress_sets.EGRESS_SETS.check(context(facts=_facts("command_failed"))) == []


def test_it_says_nothing_on_a_router_without_set_matches() -> None:
    assert egress_sets.EGRESS_SETS.check(context(facts=_facts("no_sets", "lab_isolated"))) == []


def test_it_leaves_vpc_routers_alone() -> None:
    assert egress_sets.EGRESS_SETS.check(context(vpc_router(), facts=_facts("set_flushed"))) == []
