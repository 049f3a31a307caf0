"""A healthy router of every kind gives no warning and no critical verdict: false alarms cost a NOC its trust."""

from __future__ import annotations

from diagnostics.matrix import evaluate
from diagnostics.matrix.base import Verdict
from tests.matrix.builders import (
    changed,
    context,
    healthy_isolated_facts,
    healthy_vpc_facts,
    isolated_router,
    parsed,
    peer,
    vpc_router,
)


def _alarms(verdicts: list[Verdict]) -> list[tuple[str, str, str]]:
    return [(v.rule, v.severity, v.title) for v in verdicts if v.severity != "info"]


def _isolated_single_facts() -> dict:
    facts = healthy_isolated_facts()
    interfaces = facts["interfaces"]
    eth0 = interfaces.get("eth0")
    facts["interfaces"] = changed(
        interfaces,
        interfaces=tuple(
            changed(eth0, addresses=eth0.addresses[:1]) if i.name == "eth0" else i for i in interfaces.interfaces
        ),
    )
    return facts


def test_it_finds_nothing_wrong_with_a_healthy_isolated_router() -> None:
    assert _alarms(evaluate(context(isolated_router(), _isolated_single_facts()))) == []


def test_it_finds_nothing_wrong_with_a_healthy_vpc_router() -> None:
    assert _alarms(evaluate(context(vpc_router(), healthy_vpc_facts()))) == []


def test_it_finds_nothing_wrong_with_a_healthy_redundant_isolated_pair() -> None:
    primary_facts = healthy_isolated_facts()
    primary_facts["vrrp"] = parsed("vrrp", "isolated_primary")
    backup_facts = _isolated_single_facts()
    backup_facts["vrrp"] = parsed("vrrp", "isolated_backup")
    processes = backup_facts["processes"]
    backup_facts["processes"] = changed(
        processes,
        services=tuple(changed(s, running=False, pids=()) if s.name == "dnsmasq" else s for s in processes.services),
    )
    primary_facts["disk"] = backup_facts["disk"] = parsed("disk", "captured_redundant")
    primary = isolated_router(is_redundant=True, redundant_state="PRIMARY")
    backup = isolated_router(id=2, name="r-13-VM", is_redundant=True, redundant_state="BACKUP")
    assert _alarms(evaluate(context(primary, primary_facts, peers=(peer(backup, backup_facts),)))) == []
    assert _alarms(evaluate(context(backup, backup_facts, peers=(peer(primary, primary_facts),)))) == []


def test_it_finds_nothing_wrong_with_a_healthy_redundant_vpc_pair() -> None:
    primary = vpc_router(is_redundant=True, redundant_state="PRIMARY")
    backup = vpc_router(id=2, name="r-21-VM", is_redundant=True, redundant_state="BACKUP")
    primary_facts, backup_facts = healthy_vpc_facts("PRIMARY"), healthy_vpc_facts("BACKUP")
    assert _alarms(evaluate(context(primary, primary_facts, peers=(peer(backup, backup_facts),)))) == []
    assert _alarms(evaluate(context(backup, backup_facts, peers=(peer(primary, primary_facts),)))) == []


def test_it_finds_nothing_wrong_with_a_healthy_direct_access_vmware_router() -> None:
    router = isolated_router(hypervisor="VMware", link_local_ip="10.0.41.155", host_ip=None)
    facts = _isolated_single_facts()
    for host_probe in ("host_cloud0", "host_tap", "host_domstate", "host_qemu_log"):
        facts.pop(host_probe)
    interfaces = facts["interfaces"]
    eth1 = interfaces.get("eth1")
    address = changed(eth1.addresses[0], address="10.0.41.155", prefixlen=24)
    facts["interfaces"] = changed(
        interfaces,
        interfaces=tuple(changed(eth1, addresses=(address,)) if i.name == "eth1" else i for i in interfaces.interfaces),
    )
    nics = tuple(changed(n, ip_address="10.0.41.155") if n.traffic_type == "Control" else n for n in router.nics)
    router = changed(router, nics=nics)
    assert _alarms(evaluate(context(router, facts))) == []


def test_it_finds_nothing_wrong_with_a_router_never_collected() -> None:
    assert _alarms(evaluate(context(isolated_router(), None))) == []
