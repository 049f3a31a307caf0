"""Tests for the iptables ruleset builder (pure, no root needed)."""

from __future__ import annotations

from devcloud.lab.iptables_rules import build_ruleset, snat_rule
from devcloud.lab.topology import Router, plan_lab


def _router(kind: str) -> Router:
    return next(router for router in plan_lab("vrc", 0).routers if router.kind == kind)


def test_it_uses_snat_to_the_public_ip_never_masquerade() -> None:
    router = _router("isolated")
    rules = build_ruleset(router)
    assert snat_rule(router) == f"-A POSTROUTING -o eth2 -j SNAT --to-source {router.public.ipaddress}"
    assert "MASQUERADE" not in rules


def test_it_accepts_ssh_only_on_the_control_nic() -> None:
    rules = build_ruleset(_router("vpc"))
    ssh_rules = [line for line in rules.splitlines() if "--dport 3922" in line]
    assert ssh_rules == ["-A INPUT -i eth0 -p tcp -m tcp --dport 3922 -m state --state NEW,ESTABLISHED -j ACCEPT"]


def test_it_puts_the_isolated_ingress_firewall_in_mangle() -> None:
    router = _router("isolated")
    rules = build_ruleset(router)
    mangle = rules.split("*mangle")[1].split("COMMIT")[0]
    assert f"-A FIREWALL_{router.public.ipaddress} -j DROP" in mangle


def test_it_adds_hairpin_nat_for_port_forwards() -> None:
    router = _router("isolated")
    _, vm, port = router.port_forwards[0]
    assert (
        f"-o eth0 -p tcp -m tcp --dport {port} -j SNAT --to-source {router.guest_nics()[0].gateway}"
        in build_ruleset(router)
    )


def _table(rules: str, table: str) -> list[str]:
    return rules.split(f"*{table}")[1].split("COMMIT")[0].splitlines()


def test_it_accepts_ingress_firewall_rules_as_csacl_writes_them() -> None:
    router = _router("isolated")
    mangle = _table(build_ruleset(router), "mangle")
    pub = router.public.ipaddress
    assert f"-A FIREWALL_{pub} -p tcp -m tcp --dport 2222 -j ACCEPT" in mangle
    assert not [line for line in mangle if line.startswith(f"-A FIREWALL_{pub}") and "RETURN" in line]


def test_it_keeps_only_established_and_return_in_the_vpn_chain() -> None:
    router = _router("isolated")
    pub = router.public.ipaddress
    vpn = [line for line in _table(build_ruleset(router), "mangle") if line.startswith(f"-A VPN_{pub}")]
    assert vpn == [f"-A VPN_{pub} -m state --state RELATED,ESTABLISHED -j ACCEPT", f"-A VPN_{pub} -j RETURN"]


def test_it_marks_port_forwarded_connections_as_forward_vr_does() -> None:
    router = _router("isolated")
    rules = build_ruleset(router)
    pub = router.public.ipaddress
    nat = _table(rules, "nat")
    assert f"-A PREROUTING -d {pub}/32 -i eth2 -p tcp -m tcp --dport 2222 -j MARK --set-xmark 0x66/0xffffffff" in nat
    assert (
        f"-A PREROUTING -d {pub}/32 -i eth2 -p tcp -m tcp --dport 2222 -m state --state NEW "
        "-j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff"
    ) in nat
    assert "-A FORWARD -i eth2 -o eth0 -p tcp -m tcp --dport 22 -m state --state NEW,ESTABLISHED -j ACCEPT" in _table(
        rules, "filter"
    )


def test_it_accepts_apache_and_the_load_balancer_on_input() -> None:
    router = _router("isolated")
    guest = router.guest_nics()[0]
    filter_rules = _table(build_ruleset(router), "filter")
    for port in (80, 443):
        assert (
            f"-A INPUT -d {guest.ipaddress}/32 -i eth0 -p tcp -m tcp --dport {port} -m state --state NEW -j ACCEPT"
            in filter_rules
        )
    assert (
        f"-A INPUT -d {router.public.ipaddress}/32 -p tcp -m tcp --dport 80 -m state --state NEW -j ACCEPT"
        in filter_rules
    )


def test_it_lays_out_the_vpc_router_as_fw_vpcrouter_does() -> None:
    router = _router("vpc")
    rules = build_ruleset(router)
    filter_rules, mangle = _table(rules, "filter"), _table(rules, "mangle")
    forward = [line for line in filter_rules if line.startswith("-A FORWARD")]
    assert forward[2] == "-A FORWARD -s 172.16.0.0/24 ! -d 172.16.0.0/24 -j ACCEPT"
    assert "-A FORWARD -m state --state RELATED,ESTABLISHED -j ACCEPT" in forward
    assert "-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT" in filter_rules
    for tier in router.guest_nics():
        outbound = [line for line in mangle if line.startswith(f"-A ACL_OUTBOUND_{tier.device}")]
        assert outbound[:2] == [
            f"-A ACL_OUTBOUND_{tier.device} -d 224.0.0.18/32 -j ACCEPT",
            f"-A ACL_OUTBOUND_{tier.device} -d 225.0.0.50/32 -j ACCEPT",
        ]
        assert (
            f"-A PREROUTING -i {tier.device} -m state --state RELATED,ESTABLISHED "
            "-j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff"
        ) in mangle
        assert f"-A NETWORK_STATS_eth1 -s {tier.cidr} -o eth1" in filter_rules
