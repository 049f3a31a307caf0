"""Rules on IPv6 guest networks (the nftables IPv6 firewall, radvd) and on BGP of 4.20 routed networks.

A network with IPv6 shows on its router as a global IPv6 address on a guest interface, or as
radvd.conf advertising a prefix. On such a router configure.py keeps an nftables table of the
ip6 family (`ip6_firewall` on an isolated network's router, `ip6_acl` on a VPC router) whose
input-hook base chain drops by default; radvd sends the router advertisements from which VMs
take their address (SLAAC) and their default route. A redundant BACKUP holds no guest gateway
and sends no advertisements on purpose, so the radvd rules leave it alone. For BGP, the peers
CsBgpPeers wrote into frr.conf must be Established in bgpd: otherwise the upstream stops
routing the network's prefixes. Each rule says nothing when its probe could not run.
"""

from __future__ import annotations

import ipaddress

from diagnostics.matrix.base import RouterContext, Rule, Verdict
from diagnostics.matrix.evidence import facts_of, quoted, verdict
from diagnostics.matrix.layout import GUEST_DEVICE, control_device, is_standby, public_device
from diagnostics.matrix.rules.api_state import restart_action
from diagnostics.probes.ipv6 import RADVD_CONF


def firewall_table(ctx: RouterContext) -> str:
    """The nftables ip6 table configure.py keeps on this kind of router."""
    return "ip6_acl" if ctx.router.router_type == "vpc" else "ip6_firewall"


def _guest_devices(ctx: RouterContext) -> set[str] | None:
    """The guest interfaces by the router's layout: eth0 on isolated and shared routers, the tiers on a VPC."""
    fixed = GUEST_DEVICE.get(ctx.router.router_type)
    if fixed:
        return {fixed}
    interfaces = facts_of(ctx, "interfaces")
    if interfaces is None:
        return None
    others = {control_device(ctx.router), public_device(ctx.router)}
    return {i.name for i in interfaces.interfaces if i.name.startswith("eth") and i.name not in others}


def guest_ipv6(ctx: RouterContext) -> dict[str, list[ipaddress.IPv6Interface]]:
    """The global IPv6 addresses on the router's guest interfaces, by device."""
    interfaces = facts_of(ctx, "interfaces")
    devices = _guest_devices(ctx)
    if interfaces is None or not devices:
        return {}
    found: dict[str, list[ipaddress.IPv6Interface]] = {}
    for interface in interfaces.interfaces:
        if interface.name not in devices:
            continue
        for address in interface.addresses:
            if address.family != "inet6" or address.scope != "global":
                continue
            try:
                found.setdefault(interface.name, []).append(
                    ipaddress.IPv6Interface(f"{address.address}/{address.prefixlen}")
                )
            except ValueError:
                continue
    return found


def ipv6_evidence(ctx: RouterContext) -> list[str]:
    """Why this router serves an IPv6 guest network ([] when nothing shows it does)."""
    lines = [
        f"{device} has {address}" for device, addresses in sorted(guest_ipv6(ctx).items()) for address in addresses
    ]
    ipv6 = facts_of(ctx, "ipv6")
    for block in ipv6.radvd_interfaces or () if ipv6 is not None else ():
        if block.prefixes:
            lines.append(f"{RADVD_CONF} advertises {', '.join(block.prefixes)} on {block.name}")
    return lines


def _firewall_missing(ctx: RouterContext) -> list[Verdict]:
    ipv6 = facts_of(ctx, "ipv6")
    if ipv6 is None or ipv6.tables is None:
        return []
    evidence = ipv6_evidence(ctx)
    table = firewall_table(ctx)
    if not evidence or ipv6.table(table) is not None:
        return []
    present = ", ".join(t.name for t in ipv6.tables) or "none"
    evidence = [f"nft list ruleset ip6: no table {table} (ip6 tables: {present})", *quoted(evidence, 6)]
    remediation = (
        f"Without table ip6 {table} nothing filters IPv6 on this router: every VM of the IPv6 network is open to "
        "any IPv6 source, whatever its IPv6 firewall rules or ACLs say, and so are the router's own services. "
        f"Re-apply the rules: {restart_action(ctx.router)} (configure.py rebuilds the table); "
        "`nft list ruleset ip6` on the router shows what is there."
    )
    return [
        verdict(
            FIREWALL_MISSING, f"IPv6 network without its firewall: table ip6 {table} missing", evidence, remediation
        )
    ]


FIREWALL_MISSING = Rule(
    id="ipv6-firewall-missing",
    category="firewall",
    severity="critical",
    summary="The router serves an IPv6 guest network but nftables has no table ip6 ip6_firewall (ip6_acl on a VPC).",
    remedy="Restart the network (or VPC) with cleanup so configure.py rebuilds the IPv6 firewall.",
    reads=("facts:ipv6", "facts:interfaces", "api"),
    thresholds=(),
    check=_firewall_missing,
)


def _firewall_open(ctx: RouterContext) -> list[Verdict]:
    ipv6 = facts_of(ctx, "ipv6")
    table = ipv6.table(firewall_table(ctx)) if ipv6 is not None else None
    if table is None:
        return []
    problems = []
    inputs = [c for c in table.chains if c.hook == "input"]
    if not inputs:
        problems.append(f"table ip6 {table.name} has no chain on the input hook")
    problems += [
        f"chain {c.name} (hook input) has policy {c.policy or '?'}, not drop" for c in inputs if c.policy != "drop"
    ]
    if not any(c.hook == "forward" for c in table.chains):
        problems.append(f"table ip6 {table.name} has no chain on the forward hook: the guest chains are never reached")
    if not problems:
        return []
    remediation = (
        "The VR's IPv6 firewall drops what its input chain does not accept and sends forwarded traffic through "
        "the network's ingress and egress chains; here that default is gone, so the router (and with a missing "
        "forward chain, the VMs) take any IPv6 traffic. Someone changed the table by hand or an apply stopped "
        f"half-way: {restart_action(ctx.router)} rebuilds it."
    )
    return [verdict(FIREWALL_OPEN, f"IPv6 firewall table {table.name} does not drop by default", problems, remediation)]


FIREWALL_OPEN = Rule(
    id="ipv6-firewall-policy-open",
    category="firewall",
    severity="warning",
    summary="The IPv6 firewall table exists but its input-hook chain's policy is not drop, or it has no input or "
    "forward base chain.",
    remedy="Restart the network (or VPC) with cleanup so configure.py rebuilds the table with its default policy.",
    reads=("facts:ipv6",),
    thresholds=(),
    check=_firewall_open,
)


def _radvd_not_running(ctx: RouterContext) -> list[Verdict]:
    ipv6 = facts_of(ctx, "ipv6")
    if ipv6 is None or ipv6.radvd_running is not False or is_standby(ctx):
        return []
    evidence = ipv6_evidence(ctx)
    if not evidence:
        return []
    remediation = (
        "Without router advertisements, VMs of the IPv6 network get no address by SLAAC and no IPv6 default "
        "route (running VMs lose them when their lifetimes run out). On the router: `systemctl restart radvd`, "
        f"then read /var/log/daemon.log for why it stopped; {restart_action(ctx.router)} sets it up again."
    )
    return [
        verdict(
            RADVD_DOWN,
            "radvd not running: no IPv6 router advertisements",
            ["pidof radvd: no process", *quoted(evidence, 6)],
            remediation,
        )
    ]


RADVD_DOWN = Rule(
    id="radvd-not-running",
    category="dhcp",
    severity="critical",
    summary="The router serves an IPv6 guest network but no radvd process runs (a redundant BACKUP is left alone).",
    remedy="systemctl restart radvd on the router; restart the network with cleanup if radvd.conf is wrong.",
    reads=("facts:ipv6", "facts:interfaces", "facts:vrrp"),
    thresholds=(),
    check=_radvd_not_running,
)


def _radvd_gaps(ctx: RouterContext) -> list[str]:
    ipv6 = facts_of(ctx, "ipv6")
    if ipv6 is None:
        return []
    gaps = []
    for device, addresses in sorted(guest_ipv6(ctx).items()):
        advertised = ipv6.advertised_prefixes(device)
        for address in addresses:
            if ipv6.radvd_interfaces is None:
                gaps.append(f"{device} has {address} but {RADVD_CONF} does not exist")
            elif str(address.network) not in advertised:
                silenced = any(b.name == device and not b.send_advert for b in ipv6.radvd_interfaces)
                what = (
                    f"advertises {', '.join(advertised)}"
                    if advertised
                    else f"says AdvSendAdvert off on {device}"
                    if silenced
                    else "has no advertising block for it"
                )
                gaps.append(f"{device} has {address} but {RADVD_CONF} {what}")
    return gaps


def _radvd_not_advertising(ctx: RouterContext) -> list[Verdict]:
    if is_standby(ctx):
        return []
    gaps = _radvd_gaps(ctx)
    if not gaps:
        return []
    remediation = (
        "radvd advertises only what radvd.conf names: VMs on that interface get no IPv6 prefix or default route "
        f"from it. {restart_action(ctx.router)} rewrites radvd.conf from radvd.conf.tmpl and restarts radvd."
    )
    return [
        verdict(RADVD_SILENT, "radvd does not advertise the guest network's IPv6 prefix", quoted(gaps, 6), remediation)
    ]


RADVD_SILENT = Rule(
    id="radvd-not-advertising",
    category="dhcp",
    severity="critical",
    summary="A guest interface has a global IPv6 address whose prefix radvd.conf does not advertise on it "
    "(no file, another interface, AdvSendAdvert off or another prefix).",
    remedy="Restart the network (or VPC) with cleanup so radvd.conf is rewritten and radvd restarted.",
    reads=("facts:ipv6", "facts:interfaces", "facts:vrrp"),
    thresholds=(),
    check=_radvd_not_advertising,
)


def _bgp_down(ctx: RouterContext) -> list[Verdict]:
    frr = facts_of(ctx, "frr")
    if frr is None or not frr.configured or not frr.neighbors or is_standby(ctx):
        return []
    down = []
    if frr.bgpd_running is False:
        down = [f"neighbor {n.address} remote-as {n.remote_as}: bgpd is not running" for n in frr.neighbors]
    elif frr.peers is not None:
        for neighbor in frr.neighbors:
            states = frr.states_of(neighbor.address)
            if not states:
                down.append(f"neighbor {neighbor.address} remote-as {neighbor.remote_as}: not in show bgp summary")
            for state in states:
                if state.state != "Established":
                    down.append(
                        f"neighbor {neighbor.address} ({state.address_family}) remote-as {state.remote_as}: "
                        f"{state.state or '?'} for {state.uptime or '?'}, {state.connections_dropped} drop(s)"
                    )
    if not down:
        return []
    remediation = (
        "While a BGP session is down the upstream router no longer learns the network's prefixes: the routed "
        "network's VMs are unreachable from outside through that peer. Check the peer's address, AS and password "
        "(listBgpPeers / the network's BGP peers), that the peer is up and reaches the router's public address on "
        "tcp 179; `vtysh -c 'show bgp summary'` and /var/log/frr on the router tell why. "
        f"{restart_action(ctx.router)} rewrites frr.conf and restarts frr."
    )
    count = len(down)
    title = f"BGP: {count} configured peer session{'s' if count != 1 else ''} not Established"
    return [verdict(BGP_DOWN, title, quoted(down, 8), remediation)]


BGP_DOWN = Rule(
    id="bgp-peer-not-established",
    category="interfaces",
    severity="critical",
    summary="A BGP peer configured in /etc/frr/frr.conf (4.20 routed networks) is not Established in bgpd, or "
    "bgpd is not running; routers without BGP are not judged.",
    remedy="Fix the peer (address, AS, password, reachability on tcp 179), then restart the network with cleanup.",
    reads=("facts:frr", "facts:vrrp"),
    thresholds=(),
    check=_bgp_down,
)

RULES = (FIREWALL_MISSING, FIREWALL_OPEN, RADVD_DOWN, RADVD_SILENT, BGP_DOWN)
