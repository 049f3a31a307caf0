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
