"""Builders of router contexts for the matrix tests: routers as CloudStack lists them, facts from the golden fixtures.

The healthy facts are the fixtures captured from lab routers (tests/fixtures/<probe>/),
parsed by each probe's own parser, so a rule is tested on what a router really prints.
Every builder takes keyword changes so a test states only what its case is about.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from diagnostics.matrix.base import CollectionView, NicView, PeerView, RouterContext, RouterView
from diagnostics.matrix.thresholds import DEFAULTS
from diagnostics.probes import PROBES_BY_NAME

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# The fixtures' logs are from the evening of 2025-03-18.
NOW = datetime(2025, 3, 18, 22, 30, tzinfo=UTC)
SIGNATURE = "3c9d7f1e0b2a4c6d8e0f1a2b3c4d5e6f"


def parsed(probe: str, case: str) -> Any:
    """The facts of one golden fixture, parsed by the probe's own parser."""
    return PROBES_BY_NAME[probe].parse((FIXTURES / probe / f"{case}.txt").read_text())


def changed(facts: Any, **changes: Any) -> Any:
    """A copy of frozen facts with some fields changed."""
    return dataclasses.replace(facts, **changes)


def nic(traffic_type: str, ip: str, mac: str = "", mtu: int | None = 1500, broadcast_uri: str = "") -> NicView:
    return NicView(
        position=0,
        traffic_type=traffic_type,
        ip_address=ip,
        netmask="255.255.255.0",
        gateway="",
        mac_address=mac,
        mtu=mtu,
        network_uuid="",
        is_default=traffic_type == "Guest",
        broadcast_uri=broadcast_uri,
    )


def isolated_router(**changes: Any) -> RouterView:
    """An isolated router whose NICs match the isolated_primary interfaces fixture."""
    values: dict[str, Any] = dict(
        id=1,
        uuid="0c9e2f5a-0000-4000-8000-000000000001",
        name="r-12-VM",
        state="Running",
        state_since=NOW - timedelta(days=3),
        router_type="isolated",
        hypervisor="KVM",
        is_redundant=False,
        redundant_state="",
        template_version="4.20.1",
        scripts_version=SIGNATURE,
        software_version="",
        requires_upgrade=False,
        link_local_ip="169.254.3.93",
        guest_ip="10.1.1.2",
        public_ip="198.51.100.10",
        health_checks=(),
        nics=(
            nic("Guest", "10.1.1.2", "de:86:87:c1:de:db"),
            nic("Control", "169.254.3.93", "46:de:fa:a5:31:50"),
            nic("Public", "198.51.100.10", "ca:e1:7c:f5:04:b1"),
        ),
        zone_name="zone-1",
        host_name="kvm-1",
        host_ip="198.19.0.10",
        host_state="Up",
        network_name="net-1",
        zone_system_template_ready=True,
        zone_system_template_name="systemvm-kvm-4.20.1",
    )
    values.update(changes)
    return RouterView(**values)


def vpc_router(**changes: Any) -> RouterView:
    """A VPC router whose NICs match the vpc interfaces fixture (eth0 control, eth1 public, eth2 tier)."""
    values: dict[str, Any] = dict(
        name="r-20-VM",
        router_type="vpc",
        link_local_ip="169.254.1.20",
        guest_ip="10.10.1.1",
        public_ip="198.51.100.20",
        nics=(
            nic("Control", "169.254.1.20", "22:5d:da:23:70:8f"),
            nic("Public", "198.51.100.20", "12:66:66:57:c3:6d"),
            nic("Guest", "10.10.1.1", "8a:c9:c6:b4:c6:e8", mtu=1450),
        ),
    )
    values.update(changes)
    return isolated_router(**values)


def healthy_isolated_facts() -> dict[str, Any]:
    """Every probe's facts of a healthy isolated router (redundant PRIMARY layout: eth0 carries the VIP)."""
    return {
        "interfaces": parsed("interfaces", "isolated_primary"),
        "routes": parsed("routes", "isolated"),
        "iptables_filter": parsed("iptables_filter", "isolated"),
        "iptables_nat": parsed("iptables_nat", "isolated"),
        "iptables_mangle": parsed("iptables_mangle", "isolated"),
        "conntrack": parsed("conntrack", "healthy"),
        "softirq": parsed("softirq", "captured"),
        "cpu": parsed("cpu", "captured"),
        "softnet": parsed("softnet", "captured"),
        "system": parsed("system", "captured"),
        "disk": parsed("disk", "captured"),
        "processes": parsed("processes", "healthy"),
        "vrrp": parsed("vrrp", "isolated_not_redundant"),
        "dnsmasq": parsed("dnsmasq", "healthy"),
        "logs": parsed("logs", "benign_errors_only"),
        "versions": parsed("versions", "healthy"),
        "logfiles": parsed("logfiles", "rotated"),
        "config": parsed("config", "isolated_redundant"),
        "host_cloud0": parsed("host_cloud0", "healthy"),
        "host_tap": parsed("host_tap", "attached"),
        "host_domstate": parsed("host_domstate", "running"),
        "host_qemu_log": parsed("host_qemu_log", "missing"),
    }


def healthy_vpc_facts(state: str = "") -> dict[str, Any]:
    """A healthy VPC router's facts; `state` PRIMARY or BACKUP makes it a redundant member (BACKUP: eth1 down)."""
    facts = healthy_isolated_facts()
    interfaces = parsed("interfaces", "vpc_backup_eth1_down")
    vrrp = parsed("vrrp", "vpc_backup_eth1_down")
    if state != "BACKUP":
        eth1 = changed(interfaces.get("eth1"), operstate="UP", admin_up=True, carrier=True)
        interfaces = changed(
            interfaces, interfaces=tuple(eth1 if i.name == "eth1" else i for i in interfaces.interfaces)
        )
        vrrp = changed(vrrp, eth1_state="UP", state="PRIMARY", recorded_state="PRIMARY", reason="eth1 (public) is UP")
    if not state:
        vrrp = changed(vrrp, redundant=False, keepalived_active=False, keepalived_status="inactive", state="FAULT")
    if state:
        # A redundant member keeps keepalived's state on its /ramdisk tmpfs.
        facts["disk"] = parsed("disk", "captured_redundant")
    if state == "BACKUP":
        processes = facts["processes"]
        stopped = tuple(
            changed(s, running=False, pids=(), states=()) if s.name in ("dnsmasq", "charon", "password_server") else s
            for s in processes.services
        )
        facts["processes"] = changed(processes, services=stopped)
    facts.update(
        interfaces=interfaces,
        vrrp=vrrp,
        iptables_filter=parsed("iptables_filter", "vpc"),
        iptables_nat=parsed("iptables_nat", "vpc"),
        iptables_mangle=parsed("iptables_mangle", "vpc"),
    )
    return facts


def collection(facts: dict[str, Any] | None = None, **changes: Any) -> CollectionView:
    values: dict[str, Any] = dict(
        id=1,
        status="succeeded",
        reason="",
        error="",
        finished=NOW - timedelta(minutes=1),
        access_path="host",
        facts=facts if facts is not None else {},
    )
    values.update(changes)
    return CollectionView(**values)


def context(
    router: RouterView | None = None,
    facts: dict[str, Any] | None = None,
    *,
    current: CollectionView | None = None,
    previous: dict[str, Any] | None = None,
    peers: tuple[PeerView, ...] = (),
    thresholds: dict[str, float] | None = None,
    now: datetime = NOW,
) -> RouterContext:
    """A context for one router: `facts` become the current collection, `previous` the one before."""
    values = {name: float(default) for name, (default, _, _) in DEFAULTS.items()}
    values.update(thresholds or {})
    if current is None and facts is not None:
        current = collection(facts)
    return RouterContext(
        router=router or isolated_router(),
        collection=current,
        previous=collection(previous, id=0, finished=NOW - timedelta(minutes=16)) if previous is not None else None,
        peers=peers,
        thresholds=values,
        now=now,
    )


def peer(router: RouterView, facts: dict[str, Any] | None = None) -> PeerView:
    return PeerView(router=router, collection=collection(facts) if facts is not None else None)


def check(name: str, details: str, success: bool = False, kind: str = "basic") -> dict[str, Any]:
    """One entry of CloudStack's health-check results as the inventory stores it."""
    return {
        "checkname": name,
        "checktype": kind,
        "success": success,
        "lastupdated": "2025-03-18T22:20:00+0000",
        "details": details,
    }
