"""How the matrix writes its evidence: exact values and log lines, bounded, and verdicts built from a rule.

Evidence quotes what the router said as it is (escaping is the page's job) but never more
than EVIDENCE_CHARS per item and EVIDENCE_ITEMS items, so one 100 kB log line or ten
thousand matching lines cannot bloat a verdict. Log lines carry their own timestamps in
three formats (see diagnostics.probes.logs); `line_time` turns them into datetimes so
rules can keep to a recent window.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from diagnostics.matrix.base import RouterContext, Rule, Severity, Verdict

EVIDENCE_CHARS = 400
EVIDENCE_ITEMS = 12
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
LineT = TypeVar("LineT")


def bounded(text: str, limit: int = EVIDENCE_CHARS) -> str:
    """The text with control characters dropped and cut to `limit` characters (marked with …)."""
    text = _CONTROL.sub("", text[: limit * 2])
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quoted(lines: Iterable[str], limit: int = EVIDENCE_ITEMS) -> list[str]:
    """At most `limit` bounded lines, then one line saying how many more there were."""
    items = list(lines)
    shown = [bounded(line) for line in items[:limit]]
    if len(items) > limit:
        shown.append(f"... and {len(items) - limit} more")
    return shown


def number(value: float) -> str:
    """A count with thousands separators: 241,000."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def size(value_bytes: float) -> str:
    """Bytes as MB or GB, the way an operator reads df."""
    if value_bytes >= 1024**3:
        return f"{value_bytes / 1024**3:.1f} GB"
    return f"{value_bytes / 1024**2:.1f} MB"


def verdict(
    rule: Rule,
    title: str,
    evidence: Sequence[str],
    remediation: str | None = None,
    severity: Severity | None = None,
    action: str = "",
    also: tuple[str, ...] | None = None,
) -> Verdict:
    """A verdict of `rule`: its categories, its worst severity unless told, its remedy unless told.

    `action` names the console action the remedy points to (a key of diagnostics.actions),
    so the page can offer it next to the words; "" when no action fits. `also` names the
    further categories this fault takes down when they depend on the case (a guest NIC down
    takes DHCP and DNS with it, a public one NAT); the rule's own by default.
    """
    return Verdict(
        rule=rule.id,
        category=rule.category,
        severity=severity or rule.severity,
        title=bounded(title, 300),
        evidence=tuple(bounded(item) for item in evidence),
        remediation=remediation or rule.remedy,
        action=action,
        also=rule.also if also is None else also,
    )


def line_time(timestamp: str | None, now: datetime) -> datetime | None:
    """A log line's timestamp in `now`'s zone; syslog stamps without a year take the year that is not in the future."""
    if not timestamp:
        return None
    if timestamp.startswith("--"):
        try:
            moment = datetime.strptime(f"{now.year}{timestamp[1:19]}", "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            return None
        moment = moment.replace(tzinfo=now.tzinfo)
        if moment > now + timedelta(days=1):
            moment = moment.replace(year=now.year - 1)
        return moment
    try:
        moment = datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=now.tzinfo)


def recent_lines(lines: Sequence[LineT], ctx: RouterContext, hours: float) -> list[LineT]:
    """The lines no older than `hours`.

    An undated line (a traceback frame) takes the time of the dated line before it, or
    after it at the head of the tail; a tail with no dated line at all is the newest part
    of the log and is kept.
    """
    cutoff = ctx.now - timedelta(hours=hours)
    times = [line_time(getattr(line, "timestamp", None), ctx.now) for line in lines]
    following: datetime | None = None
    for index in range(len(times) - 1, -1, -1):
        following = times[index] or following
        times[index] = times[index] or following
    kept: list[LineT] = []
    previous: datetime | None = None
    for line, moment in zip(lines, times, strict=True):
        stamp = line_time(getattr(line, "timestamp", None), ctx.now)
        previous = stamp or previous
        effective = stamp or previous or moment
        if effective is None or effective >= cutoff:
            kept.append(line)
    return kept


def facts_of(ctx: RouterContext, probe: str) -> Any | None:
    """The current collection's facts of one probe, or None (never collected, probe failed or did not run).

    A failed collection may still carry the host probes' facts: they explain why the router could not be reached.
    """
    return ctx.collection.fact(probe) if ctx.collection is not None else None


def previous_facts_of(ctx: RouterContext, probe: str) -> Any | None:
    """The previous collection's facts of one probe, for counters that rise between collections."""
    return ctx.previous.fact(probe) if ctx.previous is not None else None
