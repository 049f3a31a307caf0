"""Rules on a redundant pair: both PRIMARY, none PRIMARY, FAULT, and CloudStack disagreeing with the router.

A member's state is read the way checkrouter.sh decides it (§3.8, the vrrp probe), and
CloudStack's `redundantstate` only where the router was not collected. Split brain
(§5.14, §5.15) and a pair with no PRIMARY both leave the network's VMs without a working
gateway; keepalived logs "received an unexpected ip number count" when the pair's VIP
lists differ (§5.17).
"""

from __future__ import annotations

from diagnostics.matrix.base import CollectionView, RouterContext, RouterView, Rule, Severity, Verdict
from diagnostics.matrix.evidence import facts_of, quoted, recent_lines, verdict
from diagnostics.matrix.layout import is_redundant, own_redundant_state
from diagnostics.matrix.rules.api_state import restart_action
from diagnostics.probes import logs as log_kinds


def _peer_state(router: RouterView, collection: CollectionView | None) -> tuple[str, str]:
    """A peer's state and where it was read."""
    vrrp = collection.fact("vrrp") if collection is not None else None
    if vrrp is not None and vrrp.state in ("PRIMARY", "BACKUP", "FAULT"):
        return vrrp.state, f"{router.name}: checkrouter logic says {vrrp.state} ({vrrp.reason})"
    return router.redundant_state, f"{router.name}: listRouters redundantstate {router.redundant_state or '(none)'}"


def _own(ctx: RouterContext) -> tuple[str, str]:
    vrrp = facts_of(ctx, "vrrp")
    state = own_redundant_state(ctx)
    if vrrp is not None and vrrp.state == state:
        return state, f"{ctx.router.name}: checkrouter logic says {state} ({vrrp.reason})"
    return state, f"{ctx.router.name}: listRouters redundantstate {state or '(none)'}"


def _mismatch_lines(ctx: RouterContext) -> list[str]:
    logs = facts_of(ctx, "logs")
    tail = logs.file("/var/log/daemon.log") if logs is not None else None
    return [line.text for line in tail.of_kind(log_kinds.VRRP_MISMATCH)] if tail is not None else []


def _split_brain(ctx: RouterContext) -> list[Verdict]:
    if not is_redundant(ctx) or not ctx.peers:
        return []
    state, said = _own(ctx)
    if state != "PRIMARY":
        return []
    primaries = [_peer_state(p.router, p.collection) for p in ctx.peers]
    others = [text for peer_state, text in primaries if peer_state == "PRIMARY"]
    if not others:
        return []
    evidence = [said, *others, *quoted(_mismatch_lines(ctx), 3)]
    remediation = (
        "Both members hold the gateway addresses: VMs see ARP flapping and broken connections. 1. Check VRRP "
        "adverts cross between the hosts: `tcpdump -ni <guest dev> vrrp` or `proto 51` on each router (AH, to "
        "224.0.0.18); switches or host firewalls dropping multicast are the usual cause (apache/cloudstack#7838). "
        "2. Compare /etc/keepalived/keepalived.conf on both: different VIP lists (the same tier on two NICs, "
        "#11710) make each reject the other's adverts. 3. Once adverts flow, restart keepalived on the member that "
        f"should be BACKUP; if the configs differ, {restart_action(ctx.router)}."
    )
    return [
        verdict(
            SPLIT_BRAIN,
            "split brain: both redundant routers are PRIMARY (gateway and public addresses flap, NAT breaks)",
            evidence,
            remediation,
        )
    ]


SPLIT_BRAIN = Rule(
    id="split-brain",
    category="vrrp",
    severity="critical",
    summary="This router and a redundant peer are both PRIMARY: the gateway and public addresses flap between "
    "them, so NATed connections break.",
    remedy="Make VRRP adverts cross (multicast/AH between hosts), align keepalived.conf, restart keepalived on one member.",
    reads=("api", "facts:vrrp", "peer", "facts:logs"),
    thresholds=(),
    check=_split_brain,
    also=("nat",),
)


def _no_primary(ctx: RouterContext) -> list[Verdict]:
    if not is_redundant(ctx) or not ctx.peers:
        return []
    state, said = _own(ctx)
    peers = [_peer_state(p.router, p.collection) for p in ctx.peers]
    states = [state] + [s for s, _ in peers]
    # Only a pair whose every member is known and standing by has no PRIMARY; UNKNOWN is not knowledge.
    if not all(s in ("BACKUP", "FAULT") for s in states):
        return []
    if ctx.router.state != "Running" or any(p.router.state != "Running" for p in ctx.peers):
        return []
    evidence = [said, *(text for _, text in peers)]
    remediation = (
        "No member holds the gateway: the network's VMs have no router (no way out, no port forwarding), and a "
        "BACKUP stops dnsmasq and the password server, so no DHCP, DNS or password resets either. 1. Read "
        "keepalived's log on both "
        "(/var/log/daemon.log, /ramdisk/rrouter/keepalived.log): a VPC pair goes PRIMARY only once a tier has "
        "running VMs (§5.16). 2. Restart keepalived on one member; if no member takes over, "
        f"{restart_action(ctx.router)}."
    )
    return [
        verdict(
            NO_PRIMARY, "no redundant router is PRIMARY: no gateway, NAT, DHCP, DNS or passwords", evidence, remediation
        )
    ]


NO_PRIMARY = Rule(
    id="no-primary-router",
    category="vrrp",
    severity="critical",
    summary="Every member of the redundant pair is BACKUP or FAULT: nobody holds the gateway, and no member runs "
    "dnsmasq or the password server.",
    remedy="Read keepalived's logs, restart keepalived on one member, else restart the network with cleanup.",
    reads=("api", "facts:vrrp", "peer"),
    thresholds=(),
    check=_no_primary,
    also=("nat", "dhcp", "dns", "password"),
)


def _fault(ctx: RouterContext) -> list[Verdict]:
    if not is_redundant(ctx):
        return []
    vrrp = facts_of(ctx, "vrrp")
    if vrrp is not None and not vrrp.keepalived_active and vrrp.systemd_answered:
        # keepalived-not-active says it with the cause.
        return []
    if ctx.router.redundant_state != "FAULT":
        return []
    evidence = [f"listRouters redundantstate: {ctx.router.redundant_state}"]
    severity: Severity = "critical"
    if vrrp is not None:
        evidence.append(
            f"on the router: keepalived {vrrp.keepalived_status}, checkrouter logic says {vrrp.state} ({vrrp.reason}), "
            f"cmdline redundant_state {vrrp.recorded_state or '(none)'}"
        )
        evidence += quoted(vrrp.keepalived_log[-3:], 3)
        if vrrp.state in ("PRIMARY", "BACKUP"):
            # The router has recovered since CloudStack last looked.
            severity = "warning"
    remediation = (
        "A FAULT member will not take over. The heartbeat watchdog (check_heartbeat.sh) puts a router in FAULT "
        "after more than 3 missed heartbeats: read /ramdisk/rrouter/keepalived.log for the strikes. Restart "
        f"keepalived (`systemctl restart keepalived`) on the router; if it returns to FAULT, {restart_action(ctx.router)}."
    )
    return [verdict(FAULT, "redundant router in FAULT", evidence, remediation, severity)]


FAULT = Rule(
    id="vrrp-fault",
    category="vrrp",
    severity="critical",
    summary="CloudStack says FAULT while keepalived runs (the heartbeat watchdog fired).",
    remedy="Read the heartbeat strikes in /ramdisk/rrouter/keepalived.log, restart keepalived.",
    reads=("api", "facts:vrrp"),
    thresholds=(),
    check=_fault,
)


def _disagrees(ctx: RouterContext) -> list[Verdict]:
    vrrp = facts_of(ctx, "vrrp")
    api = ctx.router.redundant_state
    if not is_redundant(ctx) or vrrp is None or vrrp.state not in ("PRIMARY", "BACKUP"):
        return []
    if api not in ("PRIMARY", "BACKUP") or api == vrrp.state:
        return []
    evidence = [
        f"listRouters redundantstate: {api}",
        f"on the router, checkrouter logic says {vrrp.state}: {vrrp.reason}",
        f"cmdline redundant_state: {vrrp.recorded_state or '(none)'}",
    ]
    remediation = (
        "CloudStack's view is behind the router's (it polls checkrouter.sh every router.check.interval, 30 s). If "
        "it persists across collections, CloudStack cannot run checkrouter.sh on the router: check the access "
        "verdicts and the management-server log for CheckRouterCommand failures."
    )
    return [verdict(DISAGREES, f"CloudStack says {api}, the router is {vrrp.state}", evidence, remediation)]


DISAGREES = Rule(
    id="redundant-state-disagrees",
    category="vrrp",
    severity="warning",
    summary="CloudStack's redundantstate differs from what checkrouter.sh's logic shows on the router.",
    remedy="Collect again; if it persists, find why CheckRouterCommand fails on the management server.",
    reads=("api", "facts:vrrp"),
    thresholds=(),
    check=_disagrees,
)


def _vip_mismatch(ctx: RouterContext) -> list[Verdict]:
    if not is_redundant(ctx):
        return []
    logs = facts_of(ctx, "logs")
    tail = logs.file("/var/log/daemon.log") if logs is not None else None
    if tail is None:
        return []
    recent = recent_lines(tail.lines, ctx, ctx.threshold("config_error_window_hours"))
    lines = [line.text for line in recent if line.kind == log_kinds.VRRP_MISMATCH]
    if not lines:
        return []
    evidence = [f"{len(lines)} rejected VRRP advert(s) in daemon.log", *quoted(lines[-4:], 4)]
    remediation = (
        "The two members advertise different virtual IP lists, so each rejects the other's adverts (a transient "
        "while a tier is added, apache/cloudstack#8108; lasting when a tier sits on two NICs, #11710) and both may "
        "go PRIMARY. Compare `virtual_ipaddress` in /etc/keepalived/keepalived.conf on both members; if they "
        f"still differ, {restart_action(ctx.router)}."
    )
    return [verdict(VIP_MISMATCH, "VRRP adverts rejected: the pair's VIP lists differ", evidence, remediation)]


VIP_MISMATCH = Rule(
    id="vrrp-vip-mismatch",
    category="vrrp",
    severity="warning",
    summary="keepalived logged `received an unexpected ip number count` in the recent window: the pair's VIP lists differ.",
    remedy="Compare virtual_ipaddress in both keepalived.conf; restart the network with cleanup if they differ.",
    reads=("facts:logs",),
    thresholds=("config_error_window_hours",),
    check=_vip_mismatch,
)

RULES = (SPLIT_BRAIN, NO_PRIMARY, FAULT, DISAGREES, VIP_MISMATCH)
