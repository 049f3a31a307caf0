"""The VPN rules: IKE negotiation errors, IPsec not running where a site-to-site VPN is configured."""

from __future__ import annotations

from diagnostics.matrix.rules import vpn
from diagnostics.probes import iptables
from tests.matrix.builders import FIXTURES, changed, context, isolated_router, parsed


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


def test_it_finds_a_site_to_site_tunnel_up() -> None:
    assert vpn.TUNNEL_DOWN.check(context(facts={"vpn": parsed("vpn", "site_to_site_up")})) == []


def test_it_reports_a_tunnel_down_naming_connection_peer_and_reason() -> None:
    [verdict] = vpn.TUNNEL_DOWN.check(context(facts={"vpn": parsed("vpn", "site_to_site_down")}))
    assert verdict.title == (
        "site-to-site VPN vpn-100.64.1.3 to peer 100.64.1.3 is down: "
        "no IKE SA: only the trap policy is installed, the tunnel is not negotiated"
    )
    assert any("received AUTHENTICATION_FAILED notify error" in line for line in verdict.evidence)


def test_it_keeps_ike_errors_on_the_tunnel_down_verdict_only() -> None:
    facts = {"vpn": parsed("vpn", "site_to_site_down"), "logs": parsed("logs", "dhcp_and_daemon_problems")}
    assert vpn.IKE_ERRORS.check(context(facts=facts)) == []


def test_it_reports_tunnels_down_when_charon_stopped_without_the_input_rules() -> None:
    [verdict] = vpn.TUNNEL_DOWN.check(context(facts={"vpn": parsed("vpn", "site_to_site_charon_stopped")}))
    assert verdict.title.endswith("is down: charon (strongSwan) is not running")


def test_it_leaves_charon_stopped_to_site_to_site_vpn_down_when_that_fires() -> None:
    facts = {
        "vpn": parsed("vpn", "site_to_site_charon_stopped"),
        "processes": _charon_stopped(),
        "iptables_filter": _s2s_filter(),
    }
    assert vpn.TUNNEL_DOWN.check(context(facts=facts)) == []


def test_it_says_nothing_of_tunnels_when_charon_runs_but_does_not_answer() -> None:
    facts = changed(parsed("vpn", "site_to_site_up"), statusall_answered=False, sas=(), loaded=())
    assert vpn.TUNNEL_DOWN.check(context(facts={"vpn": facts})) == []


def test_it_reports_a_databag_connection_without_its_file() -> None:
    facts = changed(parsed("vpn", "site_to_site_up"), s2s_peers=("100.64.1.3", "192.0.2.77"))
    [verdict] = vpn.TUNNEL_DOWN.check(context(facts={"vpn": facts}))
    assert verdict.title == "site-to-site VPN to peer 192.0.2.77 is not configured on the router"


def test_it_accepts_vpn_daemons_stopped_on_a_backup() -> None:
    router = isolated_router(is_redundant=True, redundant_state="BACKUP")
    facts = {"vpn": parsed("vpn", "remote_access_xl2tpd_down")}
    assert vpn.REMOTE_ACCESS_DOWN.check(context(router, facts)) == []


def test_it_finds_remote_access_served() -> None:
    assert vpn.REMOTE_ACCESS_DOWN.check(context(facts={"vpn": parsed("vpn", "remote_access_up")})) == []


def test_it_reports_remote_access_enabled_without_xl2tpd() -> None:
    [verdict] = vpn.REMOTE_ACCESS_DOWN.check(context(facts={"vpn": parsed("vpn", "remote_access_xl2tpd_down")}))
    assert verdict.title == "remote-access VPN on 100.64.1.2 is down: xl2tpd is not running"


def test_it_reports_remote_access_without_the_l2tp_connection_loaded() -> None:
    facts = changed(parsed("vpn", "remote_access_up"), loaded=())
    [verdict] = vpn.REMOTE_ACCESS_DOWN.check(context(facts={"vpn": facts}))
    assert "L2TP-PSK" in verdict.title


def test_it_says_nothing_of_vpns_on_a_router_without_any() -> None:
    ctx = context(facts={"vpn": parsed("vpn", "no_vpn")})
    assert vpn.TUNNEL_DOWN.check(ctx) == vpn.REMOTE_ACCESS_DOWN.check(ctx) == []
