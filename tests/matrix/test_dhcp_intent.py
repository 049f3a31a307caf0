"""dhcphosts.txt and /etc/hosts against the dhcpentry databag."""

from __future__ import annotations

from diagnostics.matrix.rules import dhcp_dns, dhcp_intent
from tests.matrix.builders import check, context, isolated_router, parsed


def _facts(intent: str = "healthy", dnsmasq: str = "healthy") -> dict[str, object]:
    return {"dhcp_intent": parsed("dhcp_intent", intent), "dnsmasq": parsed("dnsmasq", dnsmasq)}


def test_it_is_quiet_when_the_files_match_the_databag() -> None:
    ctx = context(facts=_facts())
    assert [r.check(ctx) for r in dhcp_intent.RULES] == [[], [], []]


def test_it_names_a_vm_the_databag_lists_but_dhcphosts_lacks() -> None:
    [verdict] = dhcp_intent.DIFFER.check(context(facts=_facts("vm_not_written_out")))
    assert verdict.evidence[0] == "app-1 02:00:4c:5e:00:04 10.1.1.16: not in /etc/dhcphosts.txt"
    assert verdict.severity == "critical"


def test_it_names_a_vm_missing_from_etc_hosts() -> None:
    [verdict] = dhcp_intent.HOSTS_DIFFER.check(context(facts=_facts("vm_not_written_out")))
    assert (verdict.category, verdict.evidence[0]) == ("dns", "app-1 10.1.1.16: not in /etc/hosts")


def test_it_reports_dhcphosts_missing_as_no_lease_for_anyone() -> None:
    [verdict] = dhcp_intent.FILE_MISSING.check(context(facts=_facts(dnsmasq="files_missing")))
    assert verdict.evidence[0] == "No such file or directory: '/etc/dhcphosts.txt'"


def test_it_says_nothing_without_the_databag() -> None:
    ctx = context(facts=_facts("databag_missing"))
    assert dhcp_intent.DIFFER.check(ctx) == [] and dhcp_intent.HOSTS_DIFFER.check(ctx) == []


def test_it_carries_a_failing_dhcp_check_as_evidence_instead_of_a_second_finding() -> None:
    details = "Missing elements in dhcphosts.txt - \n02:00:4c:5e:00:04 10.1.1.16 app-1"
    router = isolated_router(health_checks=(check("dhcp_check.py", details, kind="advanced"),))
    ctx = context(router, _facts("vm_not_written_out"))
    [verdict] = dhcp_intent.DIFFER.check(ctx)
    assert verdict.evidence[-1].startswith("CloudStack health check dhcp_check.py failed too:")
    assert dhcp_dns.DHCP_MISSING.check(ctx) == []
