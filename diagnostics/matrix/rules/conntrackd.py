"""Rules on conntrackd, the connection-state sync between the members of a redundant pair.

CsRedundant runs conntrackd on the PRIMARY and on the BACKUP alike (the BACKUP's notify
script runs `conntrackd -d`, the PRIMARY's commits the external cache with `-c`, `-f`, `-R`,
`-B`); only the heartbeat watchdog stops it, with keepalived, when the router goes FAULT. So
on a redundant router that is not FAULT a missing conntrackd is a fault, and so is a sync
link that carries nothing: without it a failover drops every connection through the pair.
"""

from __future__ import annotations

from diagnostics.matrix.base import RouterContext, Rule, Verdict
from diagnostics.matrix.evidence import facts_of, number, verdict
from diagnostics.matrix.layout import is_redundant, own_redundant_state
from diagnostics.probes.conntrackd import ConntrackdFacts, SyncStats


def _judged(ctx: RouterContext) -> ConntrackdFacts | None:
    """The router's conntrackd facts when it should run conntrackd: redundant, configured, not FAULT."""
    facts = facts_of(ctx, "conntrackd")
    if facts is None or not facts.configured or not is_redundant(ctx) or own_redundant_state(ctx) == "FAULT":
        return None
    return facts


def _link(facts: ConntrackdFacts) -> str:
    return (
        f"conntrackd.conf: multicast {facts.multicast_address or '?'} group {facts.multicast_group or '?'} "
        f"on {facts.multicast_interface or '?'} ({facts.multicast_interface_ip or '?'})"
    )


def _not_running(ctx: RouterContext) -> list[Verdict]:
    facts = _judged(ctx)
    if facts is None or facts.running:
        return []
    role = own_redundant_state(ctx) or "redundant"
    evidence = ["pidof conntrackd: no process", _link(facts), f"VRRP role: {role}"]
    return [verdict(NOT_RUNNING, f"conntrackd not running on this {role} router", evidence)]


NOT_RUNNING = Rule(
    id="conntrackd-not-running",
    category="conntrack",
    severity="warning",
    summary="A redundant router (PRIMARY or BACKUP) has /etc/conntrackd/conntrackd.conf but no conntrackd process.",
    remedy=(
        "Without conntrackd the pair keeps no copy of each other's connection table: the next failover drops "
        "every connection through the router. On the router: `conntrackd -C /etc/conntrackd/conntrackd.conf -d` "
        "(or `systemctl restart conntrackd`), then `conntrackd -s`; /var/log/conntrackd.log and daemon.log say why "
        "it stopped. If it will not stay up, restartNetwork (cleanup=false) rewrites its configuration."
    ),
    reads=("facts:conntrackd", "facts:vrrp"),
    thresholds=(),
    check=_not_running,
)


def _grew(first: SyncStats, later: SyncStats, field: str) -> int:
    return int(getattr(later, field)) - int(getattr(first, field))


def _peer_internal(ctx: RouterContext) -> tuple[str, int] | None:
    """The busiest peer's internal cache (its own connections), from its last collection."""
    busiest: tuple[str, int] | None = None
    for peer in ctx.peers:
        facts = peer.collection.fact("conntrackd") if peer.collection is not None else None
        stats = (facts.later or facts.first) if facts is not None else None
        if stats is not None and (busiest is None or stats.internal_active > busiest[1]):
            busiest = (peer.router.name, stats.internal_active)
    return busiest


def _not_syncing(ctx: RouterContext) -> list[Verdict]:
    facts = _judged(ctx)
    if facts is None or not facts.running:
        return []
    causes: list[str] = []
    interfaces = facts_of(ctx, "interfaces")
    if interfaces is not None and facts.multicast_interface:
        interface = interfaces.get(facts.multicast_interface)
        if interface is None:
            causes.append(f"the sync interface {facts.multicast_interface} does not exist on the router")
        elif interface.operstate.upper() not in ("UP", "UNKNOWN"):
            causes.append(f"the sync interface {facts.multicast_interface} is {interface.operstate}")
    first, later = facts.first, facts.later
    if first is not None and later is not None:
        sent, received = _grew(first, later, "packets_sent"), _grew(first, later, "packets_recv")
        if sent > 0 and received <= 0:
            causes.append(
                f"received no sync message from the peer in {facts.sample_seconds} s while sending {sent} "
                f"(Pckts recv stayed at {number(later.packets_recv)})"
            )
        for field, label in (("errors_send", "send"), ("errors_recv", "receive")):
            if (rise := _grew(first, later, field)) > 0:
                causes.append(f"{rise} multicast {label} error(s) in {facts.sample_seconds} s")
        busy = _peer_internal(ctx)
        threshold = ctx.threshold("conntrackd_peer_busy_connections")
        if busy is not None and busy[1] >= threshold and later.external_active == 0:
            causes.append(
                f"the external cache is empty while {busy[0]} tracks {number(busy[1])} connection(s) of its own"
            )
    if not causes:
        return []
    evidence = [*causes, _link(facts)]
    if later is not None and first is not None:
        evidence.append(
            f"conntrackd -s: sent {number(first.packets_sent)} -> {number(later.packets_sent)} pkts, "
            f"recv {number(first.packets_recv)} -> {number(later.packets_recv)} pkts, "
            f"errors send {later.errors_send} recv {later.errors_recv}, "
            f"internal cache {number(later.internal_active)}, external cache {number(later.external_active)}"
        )
    return [verdict(NOT_SYNCING, f"conntrackd not syncing with its peer: {causes[0]}", evidence)]


NOT_SYNCING = Rule(
    id="conntrackd-not-syncing",
    category="conntrack",
    severity="warning",
    summary=(
        "conntrackd runs but its sync link is broken: the multicast interface is missing or down, nothing "
        "arrives from the peer between two `conntrackd -s` samples, send/receive errors grow, or its external "
        "cache is empty while the peer's internal cache is busy."
    ),
    remedy=(
        "A failover would lose the connection table. Check that both members see each other on the guest "
        "network: INPUT must accept 225.0.0.50 (the VR's own `-A INPUT -d 225.0.0.50/32 -j ACCEPT`), the "
        "switch or hypervisor bridge must pass multicast between the hosts (IGMP snooping without a querier "
        "drops it), and the interface in conntrackd.conf must be the guest NIC. Then "
        "`conntrackd -C /etc/conntrackd/conntrackd.conf -n` (resync) and compare `conntrackd -s` on both members."
    ),
    reads=("facts:conntrackd", "facts:interfaces", "facts:vrrp", "peer"),
    thresholds=("conntrackd_peer_busy_connections",),
    check=_not_syncing,
)

RULES = (NOT_RUNNING, NOT_SYNCING)
