"""Rules on the router's interfaces against CloudStack's NIC list: missing, down, other address or MAC, MTU.

The device each NIC must be is fixed by router type (see diagnostics.matrix.layout). A
redundant BACKUP (or FAULT) brings its public NICs down on purpose (§3.8), so a down
public NIC there is no fault. A guest network carried in VXLAN loses 50 bytes to the
encapsulation: a 1500-byte guest MTU then needs 1550 on the physical path.
"""

from __future__ import annotations

from diagnostics.matrix.base import RouterContext, Rule, Verdict
from diagnostics.matrix.evidence import facts_of, verdict
from diagnostics.matrix.layout import is_public, is_standby, locate
from diagnostics.matrix.rules.api_state import restart_action

VXLAN_OVERHEAD = 50


def _nic_label(nic: object) -> str:
    return f"{nic.traffic_type} NIC {nic.ip_address or ''} ({nic.mac_address or 'no MAC'})".replace("  ", " ")  # type: ignore[attr-defined]


def _missing(ctx: RouterContext) -> list[Verdict]:
    interfaces = facts_of(ctx, "interfaces")
    if interfaces is None:
        return []
    verdicts = []
    for nic in ctx.router.nics:
        device, interface = locate(ctx.router, nic, interfaces)
        if interface is not None:
            continue
        present = ", ".join(i.name for i in interfaces.interfaces if i.name != "lo")
        evidence = [
            f"CloudStack lists {_nic_label(nic)} as {device}",
            f"ip addr on the router shows: {present or 'no interfaces'}",
        ]
        remediation = (
            "The router lacks a NIC CloudStack gave it (a failed hot-plug, or udev renamed it). Reboot the router "
            f"(rebootRouter) so the NICs are plugged again; if it persists, {restart_action(ctx.router)}."
        )
        verdicts.append(verdict(MISSING, f"{nic.traffic_type} interface {device} missing", evidence, remediation))
    return verdicts


MISSING = Rule(
    id="interface-missing",
    category="interfaces",
    severity="critical",
    summary="An interface CloudStack lists (by role: isolated eth0 guest/eth1 control/eth2 public, VPC eth0 control/eth1 public/eth2+ tiers) is absent.",
    remedy="Reboot the router to replug its NICs; restart the network with cleanup if it persists.",
    reads=("api", "facts:interfaces"),
    thresholds=(),
    check=_missing,
)


def _down(ctx: RouterContext) -> list[Verdict]:
    interfaces = facts_of(ctx, "interfaces")
    if interfaces is None:
        return []
    standby = is_standby(ctx)
    verdicts = []
    for nic in ctx.router.nics:
        device, interface = locate(ctx.router, nic, interfaces)
        if interface is None or (interface.admin_up and interface.operstate != "DOWN"):
            continue
        if standby and is_public(ctx.router, nic, interface.name):
            continue
        evidence = [
            f"{interface.name} ({_nic_label(nic)}): state {interface.operstate}, admin {'up' if interface.admin_up else 'down'}, carrier {'yes' if interface.carrier else 'no'}"
        ]
        lost = _lost_with(nic.traffic_type)
        remediation = (
            f"Traffic through {interface.name} stops{_lost_words(lost)}. If admin down: `ip link set {interface.name} up` on the router "
            "and find who downed it (cloud.log). If up but no carrier: the vnet/tap on the host is down or detached "
            f"(`virsh domiflist {ctx.router.name}` on the host). Reboot the router if it stays down."
        )
        verdicts.append(
            verdict(DOWN, f"{nic.traffic_type} interface {interface.name} is down", evidence, remediation, also=lost)
        )
    return verdicts


# What the tenant loses with an interface, by CloudStack traffic type: the guest NIC carries the
# VMs' gateway, DHCP, DNS, password server and userdata; the public NIC their NAT (outbound and
# port forwarding). The control NIC is the management path only.
_LOST_WITH = {
    "guest": ("nat", "dhcp", "dns", "password", "userdata"),
    "public": ("nat",),
}
_LOST_WORDS = {
    "nat": "NAT",
    "dhcp": "DHCP",
    "dns": "DNS",
    "password": "password resets",
    "userdata": "userdata",
}


def _lost_with(traffic_type: str) -> tuple[str, ...]:
    return _LOST_WITH.get(traffic_type.lower(), ())


def _lost_words(lost: tuple[str, ...]) -> str:
    if not lost:
        return ""
    words = [_LOST_WORDS[name] for name in lost]
    listed = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
    return f": the VMs lose {listed} through it"


DOWN = Rule(
    id="interface-down",
    category="interfaces",
    severity="critical",
    summary="A CloudStack NIC's interface is down (a redundant BACKUP's public NIC is down on purpose and is left out); "
    "a guest NIC down also takes NAT, DHCP, DNS, passwords and userdata, a public one NAT.",
    remedy="Bring it up and find who downed it; check the host-side tap when there is no carrier.",
    reads=("api", "facts:interfaces", "facts:vrrp"),
    thresholds=(),
    check=_down,
)


def _address_or_mac(ctx: RouterContext) -> list[Verdict]:
    interfaces = facts_of(ctx, "interfaces")
    if interfaces is None:
        return []
    standby = is_standby(ctx)
    verdicts = []
    for nic in ctx.router.nics:
        device, interface = locate(ctx.router, nic, interfaces)
        if interface is None:
            continue
        evidence = []
        addresses = [a.address for a in interface.ipv4]
        # A standby's public NIC is down on purpose; its address is not the point there.
        if (
            nic.ip_address
            and nic.ip_address not in addresses
            and not (standby and is_public(ctx.router, nic, interface.name))
        ):
            evidence.append(
                f"CloudStack: {interface.name} {nic.ip_address}; router: {', '.join(addresses) or 'no IPv4 address'}"
            )
        if nic.mac_address and interface.mac and nic.mac_address.lower() != interface.mac.lower():
            evidence.append(f"CloudStack: {interface.name} MAC {nic.mac_address}; router: {interface.mac}")
        if not evidence:
            continue
        remediation = (
            "The router's interface does not carry what CloudStack assigned: NICs swapped (udev naming), or a "
            "failed ip_associations/guest_network apply. Traffic for the assigned address goes nowhere. Check "
            f"/etc/cloudstack/ips.json and cloud.log; {restart_action(ctx.router)} reprograms the NICs."
        )
        verdicts.append(
            verdict(
                ADDRESS, f"{interface.name} differs from CloudStack's {nic.traffic_type} NIC", evidence, remediation
            )
        )
    return verdicts


ADDRESS = Rule(
    id="interface-address-mismatch",
    category="interfaces",
    severity="critical",
    summary="An interface lacks the address CloudStack assigned to its NIC, or has another MAC.",
    remedy="Check ips.json and cloud.log for a failed apply; restart the network with cleanup.",
    reads=("api", "facts:interfaces"),
    thresholds=(),
    check=_address_or_mac,
)


def _mtu(ctx: RouterContext) -> list[Verdict]:
    interfaces = facts_of(ctx, "interfaces")
    if interfaces is None:
        return []
    verdicts = []
    for nic in ctx.router.nics:
        device, interface = locate(ctx.router, nic, interfaces)
        if interface is None or not nic.mtu or not interface.mtu or nic.mtu == interface.mtu:
            continue
        evidence = [f"CloudStack: {_nic_label(nic)} MTU {nic.mtu}; router: {interface.name} MTU {interface.mtu}"]
        remediation = (
            "VMs and the router disagree on packet size: large packets are dropped or fragmented (stalled TLS, SSH "
            f"hanging after login). Set it on the router for now: `ip link set {interface.name} mtu {nic.mtu}`; for "
            "good, check vr.public.interface.max.mtu / vr.private.interface.max.mtu and the network's MTU "
            f"(apache/cloudstack#10001), then {restart_action(ctx.router)}."
        )
        verdicts.append(
            verdict(MTU, f"{interface.name} MTU {interface.mtu}, CloudStack says {nic.mtu}", evidence, remediation)
        )
    return verdicts


MTU = Rule(
    id="mtu-mismatch",
    category="mtu",
    severity="warning",
    summary="An interface's MTU differs from the MTU CloudStack lists for its NIC.",
    remedy="Set the MTU on the router; fix the network's MTU settings and restart the network.",
    reads=("api", "facts:interfaces"),
    thresholds=(),
    check=_mtu,
)


def _encapsulation(ctx: RouterContext) -> list[Verdict]:
    interfaces = facts_of(ctx, "interfaces")
    verdicts = []
    for nic in ctx.router.nics:
        if nic.traffic_type.lower() != "guest" or not nic.broadcast_uri.lower().startswith("vxlan://"):
            continue
        mtu = nic.mtu
        if interfaces is not None:
            _, interface = locate(ctx.router, nic, interfaces)
            mtu = interface.mtu if interface is not None else mtu
        if not mtu or mtu < 1500:
            continue
        evidence = [f"{_nic_label(nic)}: broadcast URI {nic.broadcast_uri}, MTU {mtu}"]
        remediation = (
            f"VXLAN adds {VXLAN_OVERHEAD} bytes: a {mtu}-byte guest frame needs an MTU of at least "
            f"{mtu + VXLAN_OVERHEAD} on the hosts' VXLAN interfaces and every switch between them. If the physical "
            "path is 1500, large packets are dropped: raise the underlay MTU, or lower the guest network's MTU "
            f"to {1500 - VXLAN_OVERHEAD}."
        )
        verdicts.append(
            verdict(ENCAPSULATION, f"guest MTU {mtu} over VXLAN needs underlay headroom", evidence, remediation)
        )
    return verdicts


ENCAPSULATION = Rule(
    id="mtu-encapsulation-overhead",
    category="mtu",
    severity="info",
    summary="A guest NIC of 1500 bytes or more rides a VXLAN broadcast URI: the underlay needs 50 bytes of headroom.",
    remedy="Make sure the underlay MTU is at least guest MTU + 50, or lower the guest MTU.",
    reads=("api", "facts:interfaces"),
    thresholds=(),
    check=_encapsulation,
)

RULES = (MISSING, DOWN, ADDRESS, MTU, ENCAPSULATION)
