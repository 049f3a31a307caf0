"""The VPN rules: IKE negotiation errors, IPsec not running where a site-to-site VPN is configured."""

from __future__ import annotations

from diagnostics.matrix.rules import vpn
from diagnostics.probes import iptables
from tests.matrix.builders import FIXTURES, changed, context, parsed


def _s2s_filter() -> object:
    text = (FIXTURES / "iptables_filter" / "vpc.txt").read_text()
    rules = (
        "-A INPUT -s 203.0.113.7/32 -p udp -m udp --dport 500 -j ACCEPT\n-A INPUT -s 203.0.113.7/32 -p esp -j ACCEPT\n"
    )
    return iptables.parse(text.replace("COMMIT", rules + "COMMIT"))


def _charon_stopped() -> object:
    facts = parsed("processes", "healthy")
    return changed(
        facts, services=tuple(changed(s, running=False, pids=()) if s.name == "charon" else s for s in facts.services)
    )


def test_it_reports_ike_negotiation_errors_with_the_lines() -> None:
    [verdict] = vpn.IKE_ERRORS.check(context(facts={"logs": parsed("logs", "dhcp_and_daemon_problems")}))
    assert "Mar 18 22:01:05 r-12-VM charon: 09[IKE] received NO_PROPOSAL_CHOSEN notify error" in verdict.evidence


def test_it_says_nothing_without_ike_errors() -> None:
    assert vpn.IKE_ERRORS.check(context(facts={"logs": parsed("logs", "benign_errors_only")})) == []


def test_it_reports_ipsec_down_where_a_site_to_site_vpn_is_configured() -> None:
    [verdict] = vpn.IPSEC_DOWN.check(context(facts={"processes": _charon_stopped(), "iptables_filter": _s2s_filter()}))
    assert "filter: -A INPUT -s 203.0.113.7/32 -p esp -j ACCEPT" in verdict.evidence


def test_it_accepts_ipsec_down_without_a_site_to_site_vpn() -> None:
    facts = {"processes": _charon_stopped(), "iptables_filter": parsed("iptables_filter", "vpc")}
    assert vpn.IPSEC_DOWN.check(context(facts=facts)) == []
