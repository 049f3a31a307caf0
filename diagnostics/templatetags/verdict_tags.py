"""Template tags for verdicts: router status and severity badges, and evidence made safe to show.

Status and severity are glyph + text + a colour class together, never colour alone. Evidence
is router output (log lines, command output) and may carry anything: it is escaped by the
template engine and its control characters are shown as visible `\\xNN` marks, so an escape
sequence or a NUL in a log line can neither vanish nor disturb the page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django import template
from django.db.models import OuterRef, Prefetch, Subquery
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from diagnostics.models import Collection, ConfigSnapshot, Finding, ProbeResult, RouterHealth
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
    """One recent collection on the router page, with the probes that failed in it."""

    collection: Collection
    failed_probes: list[ProbeResult]


@dataclass(frozen=True)
class RouterDiagnostics:
    """What the router page shows from diagnostics: status, findings, collections, config history."""

    health: RouterHealth | None
    open_findings: list[Finding]
    resolved_findings: list[Finding]
    resolved_days: int
    collections: list[CollectionRow]
    snapshots: list[ConfigSnapshot]

    @property
    def status(self) -> str:
        return self.health.status if self.health is not None else "unknown"


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
        queryset=ProbeResult.objects.filter(ok=False).only("collection_id", "name", "error"),
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
    diagnostics = RouterDiagnostics(
        health=RouterHealth.objects.filter(router=router).first(),
        open_findings=list(findings.open().worst_first()),
        resolved_findings=list(findings.resolved_since(since).order_by("-resolved_at")),
        resolved_days=RESOLVED_FINDINGS_DAYS,
        # `failed_probes` is the prefetch's to_attr list.
        collections=[CollectionRow(collection=c, failed_probes=getattr(c, "failed_probes", [])) for c in collections],
        snapshots=list(
            ConfigSnapshot.objects.filter(router=router).annotate(previous_pk=Subquery(previous_snapshot))[
                :RECENT_SNAPSHOTS
            ]
        ),
    )
    # Two blocks of the page ask for it; the router object lives for one request.
    setattr(router, "_diagnostics_for_page", diagnostics)  # noqa: B010 - a per-request memo, not a field
    return diagnostics


@register.simple_tag
def sample_value(sample: Any, name: str) -> Any:
    """One series of a health sample, by name (templates cannot index attributes by variable)."""
    return getattr(sample, name, None)
