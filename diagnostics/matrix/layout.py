"""Which ethN of a router plays which role, which interface is which CloudStack NIC, and its VRRP role.

The layout is fixed by router type (CLOUDSTACK.md §0.1, `cs/CsHelper.py`): an isolated
router has eth0 guest, eth1 control, eth2 public (eth3+ extra public); a VPC router has
eth0 control, eth1 public, eth2+ tiers; a shared-network DHCP router has eth0 guest, eth1
control. The NIC list of listRouters has no device id, so a NIC whose device is not fixed
by its role (VPC tiers, extra public NICs) is found by its MAC, then by its address.
"""

from __future__ import annotations

from diagnostics.matrix.base import NicView, RouterContext, RouterView
from diagnostics.probes.interfaces import Interface, InterfacesFacts

CONTROL_DEVICE = {"isolated": "eth1", "vpc": "eth0", "shared": "eth1"}
PUBLIC_DEVICE = {"isolated": "eth2", "vpc": "eth1"}
GUEST_DEVICE = {"isolated": "eth0", "shared": "eth0"}


def control_device(router: RouterView) -> str | None:
    """The control (link-local, or private on VMware) NIC's device."""
    return CONTROL_DEVICE.get(router.router_type)


def public_device(router: RouterView) -> str | None:
    """The source-NAT public NIC's device; None for shared-network routers."""
    return PUBLIC_DEVICE.get(router.router_type)


def fixed_device(router: RouterView, nic: NicView) -> str | None:
    """The device a NIC must be by its role, or None when only its MAC or address can tell."""
    kind = nic.traffic_type.lower()
    if kind == "control":
        return control_device(router)
    if kind == "public" and nic.ip_address and nic.ip_address == router.public_ip:
        return public_device(router)
    if kind == "guest":
        guests = [n for n in router.nics if n.traffic_type.lower() == "guest"]
        if len(guests) == 1:
            return GUEST_DEVICE.get(router.router_type)
    return None


def locate(router: RouterView, nic: NicView, facts: InterfacesFacts) -> tuple[str, Interface | None]:
    """The device name expected (or a description when not fixed) and the interface found for the NIC."""
    device = fixed_device(router, nic)
    if device:
        return device, facts.get(device)
    mac = nic.mac_address.lower()
    for interface in facts.interfaces:
        if mac and interface.mac.lower() == mac:
            return interface.name, interface
    for interface in facts.interfaces:
        if nic.ip_address and any(a.address == nic.ip_address for a in interface.ipv4):
            return interface.name, interface
    return f"the interface with MAC {nic.mac_address or '?'} / address {nic.ip_address or '?'}", None


def is_public(router: RouterView, nic: NicView, device: str) -> bool:
    """A public NIC: the ones a redundant BACKUP brings down on purpose."""
    return nic.traffic_type.lower() == "public" or device == public_device(router)


def own_redundant_state(ctx: RouterContext) -> str:
    """The router's VRRP role as the router itself shows it (checkrouter's logic), else as CloudStack last saw it."""
    if not is_redundant(ctx):
        return ""
    vrrp = ctx.collection.fact("vrrp") if ctx.collection else None
    if vrrp is not None and vrrp.state in ("PRIMARY", "BACKUP", "FAULT"):
        return str(vrrp.state)
    return ctx.router.redundant_state


def is_redundant(ctx: RouterContext) -> bool:
    """A member of a redundant pair, by CloudStack's word or the router's own cmdline."""
    vrrp = ctx.collection.fact("vrrp") if ctx.collection else None
    return ctx.router.is_redundant or bool(vrrp is not None and vrrp.redundant)


def is_standby(ctx: RouterContext) -> bool:
    """A redundant router that is BACKUP or FAULT: it stops dnsmasq and downs its public NICs on purpose."""
    return own_redundant_state(ctx) in ("BACKUP", "FAULT")
