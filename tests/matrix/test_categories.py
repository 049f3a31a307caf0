"""Verdicts name every category their fault takes down, and one cause still gives one finding."""

from __future__ import annotations

import pytest

from diagnostics.findings import merge_by_rule
from diagnostics.matrix import RULES, evaluate, rule
from diagnostics.matrix.base import CATEGORIES, Rule
from diagnostics.matrix.rules import interfaces
from tests.matrix.builders import changed, check, context, healthy_isolated_facts, isolated_router


@pytest.mark.parametrize("one", [r for r in RULES if r.also], ids=lambda r: r.id)
def test_it_names_further_categories_only_from_the_vocabulary_and_never_the_primary_again(one: Rule) -> None:
    assert set(one.also) <= set(CATEGORIES)
    assert one.category not in one.also
    assert one.categories == (one.category, *one.also)


def test_it_files_dnsmasq_down_under_dhcp_and_dns() -> None:
    assert rule("dnsmasq-not-running").categories == ("dhcp", "dns")


def test_it_does_not_file_apache2_down_under_password_the_password_server_being_its_own_process() -> None:
    assert rule("apache2-not-running").categories == ("userdata",)


def _dnsmasq_down_with_its_health_check_failing() -> object:
    facts = healthy_isolated_facts()
    processes = facts["processes"]
    facts["processes"] = changed(
        processes,
        services=tuple(changed(s, running=False, pids=()) if s.name == "dnsmasq" else s for s in processes.services),
    )
    router = isolated_router(health_checks=(check("dhcp.service", "service down at last check 1742334000"),))
    return context(router, facts)


def test_it_gives_one_finding_naming_dhcp_and_dns_when_dnsmasq_is_down_and_its_health_check_fails() -> None:
    verdicts = [v for v in evaluate(_dnsmasq_down_with_its_health_check_failing()) if v.severity != "info"]
    assert [(v.rule, v.categories) for v in verdicts] == [("dnsmasq-not-running", ("dhcp", "dns"))]
    [verdict] = verdicts
    assert "CloudStack health check dhcp.service failed: service down at last check 1742334000" in verdict.evidence
    assert verdict.title == "dnsmasq is not running: no DHCP and no DNS for the VMs"


def test_it_carries_every_category_into_the_json_and_the_finding() -> None:
    [verdict] = [v for v in evaluate(_dnsmasq_down_with_its_health_check_failing()) if v.severity != "info"]
    assert verdict.as_json()["categories"] == ["dhcp", "dns"]
    assert merge_by_rule([verdict])["dnsmasq-not-running"].categories == "dhcp,dns"


def test_it_names_what_a_guest_interface_takes_down_with_it() -> None:
    facts = healthy_isolated_facts()
    eth0 = changed(facts["interfaces"].get("eth0"), operstate="DOWN", admin_up=False, carrier=False)
    facts["interfaces"] = changed(
        facts["interfaces"], interfaces=tuple(eth0 if i.name == "eth0" else i for i in facts["interfaces"].interfaces)
    )
    [verdict] = interfaces.DOWN.check(context(isolated_router(), facts))
    assert verdict.categories == ("interfaces", "nat", "dhcp", "dns", "password", "userdata")
    assert "the VMs lose NAT, DHCP, DNS, password resets and userdata through it" in verdict.remediation
