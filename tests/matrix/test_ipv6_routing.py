"""The IPv6 firewall, radvd and BGP rules, on facts parsed from fixtures captured on lab routers."""

from __future__ import annotations

from typing import Any

from diagnostics.matrix.rules import ipv6_routing
from tests.matrix.builders import changed, context, healthy_vpc_facts, parsed, vpc_router


def _facts(ipv6: str = "lab_isolated", interfaces: str = "lab_ipv6_guest", frr: str = "absent") -> dict[str, Any]:
    return {
        "ipv6": parsed("ipv6", ipv6),
        "interfaces": parsed("interfaces", interfaces),
        "frr": parsed("frr", frr),
        "vrrp": parsed("vrrp", "isolated_not_redundant"),
    }


def _fired(facts: dict[str, Any], **router: Any) -> dict[str, list[str]]:
    ctx = context(facts=facts) if not router else context(vpc_router(**router), facts=facts)
    return {r.id: [v.title for v in r.check(ctx)] for r in ipv6_routing.RULES if r.check(ctx)}


def test_it_is_quiet_on_the_healthy_ipv6_lab_router() -> None:
    assert _fired(_facts(frr="lab_established")) == {}


def test_it_is_quiet_on_a_router_without_ipv6_or_bgp() -> None:
    assert _fired(_facts(ipv6="no_ipv6", interfaces="lab_isolated")) == {}


def test_it_reports_the_missing_ip6_firewall_table_with_the_ipv6_evidence() -> None:
    [verdict] = ipv6_routing.FIREWALL_MISSING.check(context(facts=_facts("table_missing")))
    assert verdict.evidence[:3] == (
        "nft list ruleset ip6: no table ip6_firewall (ip6 tables: none)",
        "eth0 has fd00:198:206::1/64",
        "/etc/radvd.conf advertises fd00:198:206::/64 on eth0",
    )
    assert (verdict.category, verdict.severity) == ("firewall", "critical")


def test_it_says_nothing_about_the_firewall_when_nft_could_not_run() -> None:
    assert ipv6_routing.FIREWALL_MISSING.check(context(facts=_facts("nft_failed"))) == []


def test_it_reports_an_input_chain_that_accepts_by_default() -> None:
    [verdict] = ipv6_routing.FIREWALL_OPEN.check(context(facts=_facts("input_policy_accept")))
    assert verdict.evidence == ("chain fw_input (hook input) has policy accept, not drop",)


def test_it_reads_ip6_acl_on_a_vpc_router() -> None:
    facts = healthy_vpc_facts()
    eth2 = facts["interfaces"].get("eth2")
    v6 = changed(eth2.addresses[0], family="inet6", address="fd00:172:16::1", prefixlen=64, scope="global")
    facts["interfaces"] = changed(
        facts["interfaces"],
        interfaces=tuple(
            changed(i, addresses=(*i.addresses, v6)) if i.name == "eth2" else i for i in facts["interfaces"].interfaces
        ),
    )
    facts["ipv6"] = parsed("ipv6", "vpc_acl")
    ctx = context(vpc_router(), facts=facts)
    assert [r.check(ctx) for r in ipv6_routing.RULES] == [[], [], [], [], []]
    ctx = context(vpc_router(), facts={**facts, "ipv6": parsed("ipv6", "table_missing")})
    [verdict] = ipv6_routing.FIREWALL_MISSING.check(ctx)
    assert verdict.title == "IPv6 network without its firewall: table ip6 ip6_acl missing"


def test_it_reports_radvd_not_running_on_an_ipv6_network() -> None:
    assert _fired(_facts("radvd_down")) == {"radvd-not-running": ["radvd not running: no IPv6 router advertisements"]}


def test_it_leaves_radvd_alone_on_a_redundant_backup() -> None:
    facts = _facts("radvd_down")
    facts["vrrp"] = changed(parsed("vrrp", "vpc_backup_eth1_down"), state="BACKUP")
    assert ipv6_routing.RADVD_DOWN.check(context(facts=facts)) == []


def test_it_reports_radvd_advertising_on_another_interface_than_the_guest() -> None:
    [verdict] = ipv6_routing.RADVD_SILENT.check(context(facts=_facts("radvd_wrong_interface")))
    assert verdict.evidence == ("eth0 has fd00:198:206::1/64 but /etc/radvd.conf has no advertising block for it",)


def test_it_reports_a_bgp_peer_that_is_not_established() -> None:
    [verdict] = ipv6_routing.BGP_DOWN.check(context(facts=_facts(frr="peer_down")))
    assert verdict.evidence == ("neighbor 100.64.0.1 (ipv4Unicast) remote-as 65000: Active for 00:00:04, 1 drop(s)",)
    assert verdict.title == "BGP: 1 configured peer session not Established"


def test_it_reports_every_peer_down_when_bgpd_is_not_running() -> None:
    [verdict] = ipv6_routing.BGP_DOWN.check(context(facts=_facts(frr="bgpd_not_running")))
    assert verdict.evidence == ("neighbor 100.64.0.1 remote-as 65000: bgpd is not running",)


def test_it_says_nothing_about_bgp_where_frr_is_not_configured() -> None:
    assert ipv6_routing.BGP_DOWN.check(context(facts=_facts(frr="absent"))) == []


def test_it_names_advsendadvert_off_as_the_reason_radvd_is_silent() -> None:
    facts = _facts()
    ipv6 = facts["ipv6"]
    facts["ipv6"] = changed(ipv6, radvd_interfaces=(changed(ipv6.radvd_interfaces[0], send_advert=False),))
    [verdict] = ipv6_routing.RADVD_SILENT.check(context(facts=facts))
    assert verdict.evidence == ("eth0 has fd00:198:206::1/64 but /etc/radvd.conf says AdvSendAdvert off on eth0",)


def test_it_names_the_stale_prefix_radvd_advertises_instead_of_the_guests() -> None:
    facts = _facts()
    ipv6 = facts["ipv6"]
    stale = changed(ipv6.radvd_interfaces[0], prefixes=("fd00:198:206:ffff::/64",))
    facts["ipv6"] = changed(ipv6, radvd_interfaces=(stale,))
    [verdict] = ipv6_routing.RADVD_SILENT.check(context(facts=facts))
    assert verdict.evidence == ("eth0 has fd00:198:206::1/64 but /etc/radvd.conf advertises fd00:198:206:ffff::/64",)
