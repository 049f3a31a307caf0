"""The NAT and firewall rules: source NAT, default policies, SSH exposure, egress policy, port forwarding."""

from __future__ import annotations

from diagnostics.matrix.rules import nat_firewall
from diagnostics.probes import iptables
from tests.matrix.builders import FIXTURES, check, context, isolated_router, parsed, vpc_router


def _filter_with(*lines: str, policy: str = "DROP") -> dict:
    text = (FIXTURES / "iptables_filter" / "isolated.txt").read_text()
    text = text.replace(":INPUT DROP", f":INPUT {policy}").replace("COMMIT", "\n".join(lines) + "\nCOMMIT")
    return {"iptables_filter": iptables.parse(text)}


def test_it_reports_the_missing_source_nat_rule_of_an_isolated_router() -> None:
    [verdict] = nat_firewall.SNAT_MISSING.check(
        context(isolated_router(), {"iptables_nat": parsed("iptables_nat", "isolated_missing_snat")})
    )
    assert verdict.severity == "critical"
    assert "nat POSTROUTING has no '-o eth2 -j SNAT --to-source 198.51.100.10'" in verdict.evidence


def test_it_finds_the_source_nat_rule_of_an_isolated_router() -> None:
    assert (
        nat_firewall.SNAT_MISSING.check(
            context(isolated_router(), {"iptables_nat": parsed("iptables_nat", "isolated")})
        )
        == []
    )


def test_it_finds_the_source_nat_rule_of_a_vpc_router_on_eth1() -> None:
    assert nat_firewall.SNAT_MISSING.check(context(vpc_router(), {"iptables_nat": parsed("iptables_nat", "vpc")})) == []


def test_it_reports_a_source_nat_rule_for_another_address_than_the_api_lists() -> None:
    router = vpc_router(public_ip="198.51.100.99")
    [verdict] = nat_firewall.SNAT_MISSING.check(context(router, {"iptables_nat": parsed("iptables_nat", "vpc")}))
    assert "nat has instead: -A POSTROUTING -o eth1 -j SNAT --to-source 198.51.100.20" in verdict.evidence


def test_it_reports_a_filter_input_policy_of_accept() -> None:
    [verdict] = nat_firewall.DEFAULT_POLICIES.check(context(facts=_filter_with(policy="ACCEPT")))
    assert verdict.evidence == ("filter :INPUT ACCEPT (the VR sets DROP)",)
    assert verdict.severity == "warning"


def test_it_accepts_the_vrs_default_policies() -> None:
    assert (
        nat_firewall.DEFAULT_POLICIES.check(context(facts={"iptables_filter": parsed("iptables_filter", "isolated")}))
        == []
    )


def test_it_reports_port_3922_accepted_on_the_public_nic() -> None:
    rule = "-A INPUT -i eth2 -p tcp -m tcp --dport 3922 -j ACCEPT"
    [verdict] = nat_firewall.SSH_EXPOSED.check(context(isolated_router(), _filter_with(rule)))
    assert f"filter: {rule}" in verdict.evidence


def test_it_accepts_port_3922_on_the_vpc_control_nic() -> None:
    assert (
        nat_firewall.SSH_EXPOSED.check(context(vpc_router(), {"iptables_filter": parsed("iptables_filter", "vpc")}))
        == []
    )


def test_it_advises_on_an_egress_default_allow() -> None:
    [verdict] = nat_firewall.EGRESS_ALLOW.check(context(isolated_router(egress_default_allow=True)))
    assert verdict.severity == "info"


def test_it_says_nothing_of_an_egress_default_deny() -> None:
    assert (
        nat_firewall.EGRESS_ALLOW.check(
            context(
                isolated_router(egress_default_allow=False), {"iptables_filter": parsed("iptables_filter", "isolated")}
            )
        )
        == []
    )


def test_it_reports_port_forwarding_rules_the_nat_table_lacks() -> None:
    details = "Missing port forwarding rules in Iptables-\n [{'sourceIp': '198.51.100.10', 'destIp': '10.1.1.30'}]"
    router = isolated_router(health_checks=(check("iptables_check.py", details, kind="advanced"),))
    [verdict] = nat_firewall.PF_MISSING.check(context(router, {"iptables_nat": parsed("iptables_nat", "isolated")}))
    assert "nat table now has no DNAT rule naming 10.1.1.30" in verdict.evidence


def test_it_drops_a_port_forwarding_failure_the_nat_table_no_longer_shows() -> None:
    details = "Missing port forwarding rules in Iptables-\n [{'sourceIp': '198.51.100.10', 'destIp': '10.1.1.13'}]"
    router = isolated_router(health_checks=(check("iptables_check.py", details, kind="advanced"),))
    assert nat_firewall.PF_MISSING.check(context(router, {"iptables_nat": parsed("iptables_nat", "isolated")})) == []


def _real_failure(dport: str, vm: str) -> str:
    """iptables_check.py's own output: one list per missing rule (PREROUTING and OUTPUT)."""
    return (
        "Missing port forwarding rules in Iptables-\n "
        f"['PREROUTING', '-d 198.51.100.10', '--dport {dport}', '--to-destination {vm}']\n"
        f"['OUTPUT', '-d 198.51.100.10', '--dport {dport}', '--to-destination {vm}']\n"
    )


def test_it_reads_iptables_check_lists_and_names_each_rule_the_nat_table_lacks() -> None:
    router = isolated_router(
        health_checks=(check("iptables_check.py", _real_failure("8080", "10.1.1.13:80"), kind="advanced"),)
    )
    [verdict] = nat_firewall.PF_MISSING.check(context(router, {"iptables_nat": parsed("iptables_nat", "isolated")}))
    assert verdict.evidence[1:] == (
        "nat table now lacks: -A PREROUTING ... -d 198.51.100.10 ... --dport 8080 ... --to-destination 10.1.1.13:80",
        "nat table now lacks: -A OUTPUT ... -d 198.51.100.10 ... --dport 8080 ... --to-destination 10.1.1.13:80",
    )


def test_it_drops_an_iptables_check_failure_whose_rules_are_all_present_now() -> None:
    router = isolated_router(
        health_checks=(check("iptables_check.py", _real_failure("2222", "10.1.1.13:22"), kind="advanced"),)
    )
    assert nat_firewall.PF_MISSING.check(context(router, {"iptables_nat": parsed("iptables_nat", "isolated")})) == []
