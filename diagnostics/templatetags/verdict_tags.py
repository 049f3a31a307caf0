"""Template tags for verdicts: router status and severity badges, and evidence made safe to show.

Status and severity are glyph + text + a colour class together, never colour alone. Evidence
is router output (log lines, command output) and may carry anything: it is escaped by the
template engine and its control characters are shown as visible `\\xNN` marks, so an escape
sequence or a NUL in a log line can neither vanish nor disturb the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django import template
from django.db.models import OuterRef, Prefetch, Q, Subquery
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from diagnostics.models import Collection, ConfigSnapshot, Finding, ProbeResult, RouterHealth, Silence
from diagnostics.router_status import effective_status, health_of, stale_before, unknown_reason
from vrconsole.models import Router
from vrconsole.templatetags.console_tags import reltime

register = template.Library()

# How far back the router page lists resolved findings, collections and config changes.
RESOLVED_FINDINGS_DAYS = 7
RECENT_COLLECTIONS = 20
RECENT_SNAPSHOTS = 30

# status → (glyph, tone); tones are the console's one palette.
STATUS_LOOK: dict[str, tuple[str, str]] = {
    "critical": ("▲", "crit"),
    "warning": ("⚠", "warn"),
    "ok": ("●", "ok"),
    "unknown": ("?", "unknown"),
}
SEVERITY_LOOK: dict[str, tuple[str, str]] = {
    "critical": ("▲", "crit"),
    "warning": ("⚠", "warn"),
    "info": ("ℹ", "info"),
}
# Newline and tab stay: configuration contents and multi-line output are shown as written.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@register.simple_tag
def status_badge(status: str | None, title: str = "") -> SafeString:
    """A router status as a badge: ▲ critical, ⚠ warning, ● ok, ? unknown."""
    text = status if status in STATUS_LOOK else "unknown"
    glyph, tone = STATUS_LOOK[text]
    if title:
        return format_html('<span class="badge status tone-{}" title="{}">{} {}</span>', tone, title, glyph, text)
    return format_html('<span class="badge status tone-{}">{} {}</span>', tone, glyph, text)


@register.simple_tag
def router_status_badge(router: Any) -> SafeString:
    """The status badge of a fleet-list row: the fresh verdict status, or unknown and why in a few words."""
    health = health_of(router)
    status = effective_status(health)
    why = unknown_reason(router, health) if status == "unknown" else None
    if why is None:
        return status_badge(status)
    return format_html(
        '{} <span class="why" title="{}">{}</span>', status_badge(status, why.detail), why.detail, why.short
    )


@register.simple_tag
def collection_age(router: Any) -> SafeString:
    """How old the router's last judged collection is; older than two sweep intervals reads stale."""
    health = health_of(router)
    collection = getattr(health, "collection", None) if health is not None else None
    finished = getattr(collection, "finished", None) or (health.evaluated_at if health is not None else None)
    if finished is None:
        return format_html('<span class="muted" title="{}">never</span>', "no collection judged yet")
    if finished < stale_before():
        return format_html(
            '<span class="badge tone-warn" title="older than two sweep intervals: the sweep is behind or '
            'cannot reach this router">⚠ stale</span> {}',
            reltime(finished),
        )
    return reltime(finished)


@register.filter
def router_categories(router: Any) -> list[str]:
    """Categories of the router's open findings, worst first."""
    health = health_of(router)
    return health.category_list if health is not None else []


@register.simple_tag
def severity_badge(severity: str) -> SafeString:
    """A verdict severity as a badge."""
    glyph, tone = SEVERITY_LOOK.get(severity, ("?", "unknown"))
    return format_html('<span class="badge tone-{}">{} {}</span>', tone, glyph, severity)


@register.filter
def visible_controls(text: Any) -> str:
    """The text with control characters (tab and newline aside) written as `\\xNN`; escaping is left to autoescape."""
    return _CONTROL_CHARS.sub(lambda match: f"\\x{ord(match.group()):02x}", str(text))


@dataclass(frozen=True)
class CollectionRow:
    """One recent collection on the router page, with the probes that failed in it and those that do not apply."""

    collection: Collection
    failed_probes: list[ProbeResult]
    not_applicable_probes: list[ProbeResult] = field(default_factory=list)


@dataclass(frozen=True)
class RouterDiagnostics:
    """What the router page shows from diagnostics: status, findings, collections, config history."""

    health: RouterHealth | None
    open_findings: list[Finding]
    resolved_findings: list[Finding]
    resolved_days: int
    collections: list[CollectionRow]
    snapshots: list[ConfigSnapshot]
    silences: list[Silence] = field(default_factory=list)
    latest_probes: int = 0
    stale_before: datetime | None = None

    @property
    def status(self) -> str:
        return self.health.status if self.health is not None else "unknown"

    @property
    def latest(self) -> Collection | None:
        """The newest collection, running or done (the triage line's subject)."""
        return self.collections[0].collection if self.collections else None

    @property
    def latest_failed(self) -> int:
        return len(self.collections[0].failed_probes) if self.collections else 0

    @property
    def last_done(self) -> Collection | None:
        """The newest finished collection: "last collected"."""
        return next((row.collection for row in self.collections if row.collection.is_done), None)

    @property
    def last_collected_at(self) -> datetime | None:
        done = self.last_done
        return (done.finished or done.created) if done is not None else None

    @property
    def collection_stale(self) -> bool:
        """Last collected longer ago than two sweep intervals (or never)."""
        moment = self.last_collected_at
        return moment is None or (self.stale_before is not None and moment < self.stale_before)

    @property
    def acknowledged_count(self) -> int:
        return sum(1 for finding in self.open_findings if finding.is_acknowledged)


def _collection_row(collection: Collection) -> CollectionRow:
    # `failed_probes` is the prefetch's to_attr list: every probe that is not ok, split here
    # into the ones that failed and the ones that do not apply (host probes on XenServer).
    not_ok = getattr(collection, "failed_probes", [])
    return CollectionRow(
        collection=collection,
        failed_probes=[p for p in not_ok if not p.not_applicable],
        not_applicable_probes=[p for p in not_ok if p.not_applicable],
    )


@register.simple_tag
def router_diagnostics(router: Router) -> RouterDiagnostics:
    """The router page's diagnostics, in a fixed handful of queries, computed once per page."""
    cached = getattr(router, "_diagnostics_for_page", None)
    if cached is not None:
        return cached
    since = timezone.now() - timedelta(days=RESOLVED_FINDINGS_DAYS)
    findings = Finding.objects.for_router(router).select_related("first_collection", "last_collection")
    failed = Prefetch(
        "probe_results",
        queryset=ProbeResult.objects.filter(ok=False).only("collection_id", "name", "error", "not_applicable"),
        to_attr="failed_probes",
    )
    collections = list(
        Collection.objects.filter(router=router)
        .defer("facts", "traceback")
        .prefetch_related(failed)[:RECENT_COLLECTIONS]
    )
    # The snapshot of the same kind before each one: its "diff with previous" link.
    previous_snapshot = (
        ConfigSnapshot.objects.filter(router=OuterRef("router"), kind=OuterRef("kind"), pk__lt=OuterRef("pk"))
        .order_by("-pk")
        .values("pk")[:1]
    )
    now = timezone.now()
    open_findings = list(findings.open().worst_first())
    silences = list(
        Silence.objects.active(now)
        .filter(Q(router=router) | Q(router__isnull=True))
        .filter(Q(zone_id=router.zone_id) | Q(zone__isnull=True))
        .select_related("router", "zone")
        .order_by("ends")
    )
    for finding in open_findings:
        # The silence holding the finding's notifications, if any (the page says so beside it).
        finding.silenced_by = next((s for s in silences if s.matches(finding, router)), None)  # type: ignore[attr-defined]
    diagnostics = RouterDiagnostics(
        health=RouterHealth.objects.filter(router=router).first(),
        open_findings=open_findings,
        resolved_findings=list(findings.resolved_since(since).order_by("-resolved_at")),
        resolved_days=RESOLVED_FINDINGS_DAYS,
        collections=[_collection_row(c) for c in collections],
        snapshots=list(
            ConfigSnapshot.objects.filter(router=router).annotate(previous_pk=Subquery(previous_snapshot))[
                :RECENT_SNAPSHOTS
            ]
        ),
        silences=silences,
        latest_probes=ProbeResult.objects.filter(collection=collections[0]).count() if collections else 0,
        stale_before=stale_before(now),
    )
    # Two blocks of the page ask for it; the router object lives for one request.
    setattr(router, "_diagnostics_for_page", diagnostics)  # noqa: B010 - a per-request memo, not a field
    return diagnostics


@register.simple_tag
def sample_value(sample: Any, name: str) -> Any:
    """One series of a health sample, by name (templates cannot index attributes by variable)."""
    return getattr(sample, name, None)


@register.filter
def router_acknowledged(router: Any) -> int:
    """How many of the router's open findings are acknowledged (as of its last evaluation or acknowledgement)."""
    health = health_of(router)
    return health.acknowledged_findings if health is not None else 0
