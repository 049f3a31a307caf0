"""The DHCP/DNS rules: dnsmasq running where it must, leases, stale leases, VMs missing from its files."""

from __future__ import annotations

from datetime import UTC, datetime

from diagnostics.matrix.rules import dhcp_dns
from tests.matrix.builders import changed, check, context, healthy_isolated_facts, isolated_router, parsed

# The dnsmasq.log fixture lines are from the morning of 20 February.
FEB_20 = datetime(2025, 2, 20, 11, 0, tzinfo=UTC)


def _without_dnsmasq(facts: dict) -> dict:
    processes = facts["processes"]
    services = tuple(changed(s, running=False, pids=()) if s.name == "dnsmasq" else s for s in processes.services)
    return {**facts, "processes": changed(processes, services=services)}


def test_it_reports_dnsmasq_not_running() -> None:
    [verdict] = dhcp_dns.DNSMASQ_NOT_RUNNING.check(
        context(isolated_router(), {"processes": parsed("processes", "keepalived_and_dnsmasq_down")})
    )
    assert verdict.severity == "critical"
    assert verdict.evidence[0] == "ps: no dnsmasq process"


def test_it_says_nothing_when_dnsmasq_runs() -> None:
    assert dhcp_dns.DNSMASQ_NOT_RUNNING.check(context(isolated_router(), healthy_isolated_facts())) == []


def test_it_accepts_dnsmasq_not_running_on_a_redundant_backup() -> None:
    facts = _without_dnsmasq(healthy_isolated_facts())
    facts["vrrp"] = parsed("vrrp", "isolated_backup")
    router = isolated_router(is_redundant=True, redundant_state="BACKUP")
    assert dhcp_dns.DNSMASQ_NOT_RUNNING.check(context(router, facts)) == []


def test_it_reports_dnsmasq_not_running_on_the_primary_of_a_pair() -> None:
    facts = _without_dnsmasq(healthy_isolated_facts())
    facts["vrrp"] = parsed("vrrp", "isolated_primary")
    router = isolated_router(is_redundant=True, redundant_state="PRIMARY")
    assert len(dhcp_dns.DNSMASQ_NOT_RUNNING.check(context(router, facts))) == 1


def test_it_reports_leases_near_dhcp_lease_max() -> None:
    dnsmasq = parsed("dnsmasq", "healthy")
    [verdict] = dhcp_dns.LEASES_NEAR_MAX.check(context(facts={"dnsmasq": changed(dnsmasq, dhcp_lease_max=3)}))
    assert verdict.evidence == ("3 leases in /var/lib/misc/dnsmasq.leases of dhcp-lease-max 3 (100.0 %)",)


def test_it_accepts_leases_well_below_the_max() -> None:
    assert dhcp_dns.LEASES_NEAR_MAX.check(context(facts={"dnsmasq": parsed("dnsmasq", "healthy")})) == []


def test_it_reports_a_stale_lease_with_the_lease_and_log_lines() -> None:
    facts = {"dnsmasq": parsed("dnsmasq", "stale_lease"), "logs": parsed("logs", "dhcp_and_daemon_problems")}
    [verdict] = dhcp_dns.STALE_LEASE.check(context(facts=facts))
    assert "dnsmasq.leases: 0 1e:00:ac:00:08:8d 10.1.1.14 old-web-2 *" in verdict.evidence
    assert "dhcphosts.txt: 02:00:4c:5e:00:02,10.1.1.14,web-2,infinite" in verdict.evidence
    assert any(
        "not using configured address 10.1.1.14 because it is leased to 1e:00:ac:00:08:8d" in e
        for e in verdict.evidence
    )


def test_it_says_nothing_when_no_lease_is_stale() -> None:
    assert dhcp_dns.STALE_LEASE.check(context(facts={"dnsmasq": parsed("dnsmasq", "healthy")})) == []


def test_it_reports_no_address_available_with_the_log_line() -> None:
    ctx = context(facts={"logs": parsed("logs", "dhcp_and_daemon_problems")}, now=FEB_20)
    [verdict] = dhcp_dns.NO_ADDRESS.check(ctx)
    assert (
        "Feb 20 10:59:34 dnsmasq-dhcp[1014]: DHCPDISCOVER(eth0) 1e:00:ac:00:08:8d no address available"
        in verdict.evidence
    )


def test_it_says_nothing_when_dnsmasq_log_shows_no_refusal() -> None:
    assert dhcp_dns.NO_ADDRESS.check(context(facts={"logs": parsed("logs", "benign_errors_only")}, now=FEB_20)) == []


def test_it_ignores_a_refusal_older_than_the_window() -> None:
    assert dhcp_dns.NO_ADDRESS.check(context(facts={"logs": parsed("logs", "dhcp_and_daemon_problems")})) == []


def _dhcp_check(details: str) -> tuple:
    return (check("dhcp_check.py", details, kind="advanced"),)


def test_it_confirms_a_vm_missing_from_dhcphosts_against_the_file() -> None:
    router = isolated_router(
        health_checks=_dhcp_check("Missing elements in dhcphosts.txt - \n02:00:4c:5e:00:09 10.1.1.20 web-9")
    )
    [verdict] = dhcp_dns.DHCP_MISSING.check(context(router, healthy_isolated_facts()))
    assert verdict.severity == "warning"
    assert "not in /etc/dhcphosts.txt: 02:00:4c:5e:00:09 10.1.1.20 web-9" in verdict.evidence


def test_it_drops_a_dhcp_check_failure_the_file_no_longer_shows() -> None:
    router = isolated_router(
        health_checks=_dhcp_check("Missing elements in dhcphosts.txt - \n02:00:4c:5e:00:01 10.1.1.13 web-1")
    )
    assert dhcp_dns.DHCP_MISSING.check(context(router, healthy_isolated_facts())) == []


def test_it_downgrades_a_dhcp_check_failure_for_vms_outside_its_subnets() -> None:
    router = isolated_router(
        health_checks=_dhcp_check("Missing elements in dhcphosts.txt - \n02:00:4c:5e:00:09 10.20.0.5 other-tier")
    )
    [verdict] = dhcp_dns.DHCP_MISSING.check(context(router, healthy_isolated_facts()))
    assert verdict.severity == "info"
    assert "#8761" in verdict.remediation


def test_it_downgrades_a_dhcp_check_failure_on_a_network_without_dhcp() -> None:
    router = isolated_router(
        network_services=("Dns", "SourceNat"),
        health_checks=_dhcp_check("Missing elements in dhcphosts.txt - \n02:00:4c:5e:00:09 10.1.1.20 web-9"),
    )
    [verdict] = dhcp_dns.DHCP_MISSING.check(context(router, healthy_isolated_facts()))
    assert verdict.severity == "info"


def test_it_says_nothing_when_the_dhcp_check_passes() -> None:
    router = isolated_router(
        health_checks=(check("dhcp_check.py", "All 3 VMs are present in dhcphosts.txt", success=True),)
    )
    assert dhcp_dns.DHCP_MISSING.check(context(router, healthy_isolated_facts())) == []


def test_it_reports_a_vm_missing_from_etc_hosts_in_a_served_subnet() -> None:
    router = isolated_router(
        health_checks=(check("dns_check.py", "Missing entry in /etc/hosts - 10.1.1.20 web-9", kind="advanced"),)
    )
    [verdict] = dhcp_dns.DNS_MISSING.check(context(router, healthy_isolated_facts()))
    assert verdict.severity == "warning"


def test_it_downgrades_a_dns_check_failure_for_a_vm_outside_its_subnets() -> None:
    router = isolated_router(
        health_checks=(check("dns_check.py", "Missing entry in /etc/hosts - 10.20.0.5 other-tier", kind="advanced"),)
    )
    [verdict] = dhcp_dns.DNS_MISSING.check(context(router, healthy_isolated_facts()))
    assert verdict.severity == "info"


def test_it_says_nothing_when_the_dns_check_passes() -> None:
    router = isolated_router(
        health_checks=(check("dns_check.py", "All 3 VMs are present in /etc/hosts", success=True),)
    )
    assert dhcp_dns.DNS_MISSING.check(context(router, healthy_isolated_facts())) == []


def test_it_expects_no_dnsmasq_on_a_vpc_router_without_tiers() -> None:
    router = isolated_router(
        router_type="vpc", nics=tuple(n for n in isolated_router().nics if n.traffic_type != "Guest")
    )
    assert (
        dhcp_dns.DNSMASQ_NOT_RUNNING.check(
            context(router, {"processes": parsed("processes", "keepalived_and_dnsmasq_down")})
        )
        == []
    )


def test_it_reports_a_dhcp_range_without_options() -> None:
    dnsmasq = parsed("dnsmasq", "healthy")
    [verdict] = dhcp_dns.RANGE_WITHOUT_OPTIONS.check(context(facts={"dnsmasq": changed(dnsmasq, range_options=())}))
    assert verdict.evidence == (
        "cloud.conf: dhcp-range=set:interface-eth0-0,10.1.1.1,static has no dhcp-option=tag:interface-eth0-0,...",
    )


def test_it_accepts_dhcp_ranges_with_their_options() -> None:
    assert dhcp_dns.RANGE_WITHOUT_OPTIONS.check(context(facts={"dnsmasq": parsed("dnsmasq", "healthy")})) == []
