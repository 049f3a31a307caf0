"""Rules on connection tracking: the table's fill, its drop counters rising, and the kernel saying it is full.

A full conntrack table drops new flows silently for every VM behind the router. The VR
sets nf_conntrack_max to 1000000 (§3.10); drop/early_drop/insert_failed are counters since
boot, so only their rise between two collections says something is happening now.
"""

from __future__ import annotations

from diagnostics.matrix.base import RouterContext, Rule, Verdict
from diagnostics.matrix.evidence import facts_of, number, previous_facts_of, quoted, recent_lines, verdict
from diagnostics.probes import logs as log_kinds

_REMEDY = (
    "1. See who holds the entries: `conntrack -S`, `conntrack -L | awk '{{print $4}}' | sort | uniq -c | sort -n` "
    "(a VM under attack or scanning). 2. Raise the limit on the router: `sysctl -w net.netfilter.nf_conntrack_max="
    "{bigger}` (and in /etc/sysctl.conf; memory permitting). 3. If the load is legitimate, scale the router's "
    "service offering (scaleSystemVm / changeServiceForSystemVm)."
)


def _near_full(ctx: RouterContext) -> list[Verdict]:
    facts = facts_of(ctx, "conntrack")
    if facts is None or not facts.loaded or not facts.max:
        return []
    percent = 100.0 * facts.count / facts.max
    warning, critical = ctx.threshold("conntrack_warning_pct"), ctx.threshold("conntrack_critical_pct")
    if percent < warning:
        return []
    evidence = [f"nf_conntrack_count {number(facts.count)} of nf_conntrack_max {number(facts.max)} ({percent:.1f} %)"]
    if facts.drop or facts.early_drop or facts.insert_failed:
        evidence.append(
            f"since boot: drop {number(facts.drop)}, early_drop {number(facts.early_drop)}, insert_failed {number(facts.insert_failed)}"
        )
    return [
        verdict(
            NEAR_FULL,
            f"conntrack table {percent:.0f} % full",
            evidence,
            _REMEDY.format(bigger=number(facts.max * 2).replace(",", "")),
            severity="critical" if percent >= critical else "warning",
        )
    ]


NEAR_FULL = Rule(
    id="conntrack-table-near-full",
    category="conntrack",
    severity="critical",
    summary="nf_conntrack_count is above the warning/critical share of nf_conntrack_max.",
    remedy="Find the flows holding the table; raise nf_conntrack_max; scale the offering if the load is real.",
    reads=("facts:conntrack",),
    thresholds=("conntrack_warning_pct", "conntrack_critical_pct"),
    check=_near_full,
)


def _drops_rising(ctx: RouterContext) -> list[Verdict]:
    now, before = facts_of(ctx, "conntrack"), previous_facts_of(ctx, "conntrack")
    if now is None or before is None or not now.loaded or not before.loaded:
        return []
    rises = []
    for name in ("drop", "early_drop", "insert_failed"):
        delta = getattr(now, name) - getattr(before, name)
        if delta > 0:
            rises.append(f"{name} {number(getattr(before, name))} -> {number(getattr(now, name))} (+{number(delta)})")
    if not rises:
        return []
    evidence = [*rises, f"table now {number(now.count)} of {number(now.max)}"]
    return [
        verdict(
            DROPS_RISING,
            "conntrack dropping connections",
            evidence,
            _REMEDY.format(bigger=number(now.max * 2).replace(",", "")),
        )
    ]


DROPS_RISING = Rule(
    id="conntrack-drops-rising",
    category="conntrack",
    severity="warning",
    summary="conntrack drop, early_drop or insert_failed rose between the previous and the current collection.",
    remedy="Find the flows holding the table; raise nf_conntrack_max; scale the offering if the load is real.",
    reads=("facts:conntrack", "history"),
    thresholds=(),
    check=_drops_rising,
)


def _table_full_logged(ctx: RouterContext) -> list[Verdict]:
    logs = facts_of(ctx, "logs")
    if logs is None:
        return []
    lines = []
    for tail in logs.files:
        recent = recent_lines(tail.lines, ctx, ctx.threshold("config_error_window_hours"))
        # kern.log and messages both carry kernel warnings: each line counts once.
        lines += [
            line.text for line in recent if line.kind == log_kinds.CONNTRACK_TABLE_FULL and line.text not in lines
        ]
    if not lines:
        return []
    facts = facts_of(ctx, "conntrack")
    evidence = [f"{len(lines)} 'nf_conntrack: table full' line(s)", *quoted(lines, 4)]
    bigger = "2000000"
    if facts is not None and facts.loaded and facts.max:
        evidence.append(f"table now {number(facts.count)} of {number(facts.max)}")
        bigger = str(facts.max * 2)
    return [
        verdict(
            TABLE_FULL_LOGGED,
            "kernel dropped packets: conntrack table full (new NATed connections fail)",
            evidence,
            _REMEDY.format(bigger=bigger),
        )
    ]


TABLE_FULL_LOGGED = Rule(
    id="conntrack-table-full-logged",
    category="conntrack",
    severity="warning",
    summary="The kernel logged `nf_conntrack: table full, dropping packet` in the recent window: new connections "
    "through the router (NAT, port forwarding) were dropped.",
    remedy="Find the flows holding the table; raise nf_conntrack_max; scale the offering if the load is real.",
    reads=("facts:logs", "facts:conntrack"),
    thresholds=("config_error_window_hours",),
    check=_table_full_logged,
    also=("nat",),
)

RULES = (NEAR_FULL, DROPS_RISING, TABLE_FULL_LOGGED)
