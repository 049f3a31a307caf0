"""Folding verdicts into findings: what opens, what stays open, what resolves, and the router's status.

A collection's verdicts are a snapshot; a `Finding` is the same problem followed over time.
Each evaluation folds its verdicts into the router's findings (one per rule): a rule that
fires opens its finding, or keeps it open with `last_seen` moving and the latest evidence;
a rule that stops firing resolves it; a rule that fires again reopens the same finding and
counts the flap. A rule that could not look this time (the probe it reads failed, or the
router could not be reached) neither opens nor resolves anything: an unreachable router
must not look healed. The router's status is then the worst open finding, or unknown when
it was never collected or its last collection failed.
"""

from __future__ import annotations

from collections.abc import Collection as Container
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from diagnostics.matrix.base import SEVERITY_RANK, Verdict
from diagnostics.models import (
    STATUS_RANKS,
    Collection,
    CollectionStatus,
    Finding,
    FindingEvent,
    FindingEventKind,
    RouterHealth,
    RouterStatus,
    VerdictRecord,
)
from vrconsole.models import Router

# Verdict titles and categories are written by rules; the columns bound them.
TITLE_MAX = 500
CATEGORY_MAX = 32
CATEGORIES_MAX = 200


def stored_categories(categories: Iterable[str]) -> str:
    """Categories as a finding stores them: comma-separated, primary first, each bounded, the whole bounded."""
    names = list(dict.fromkeys(name[:CATEGORY_MAX] for name in categories if name))
    text = ",".join(names)
    while len(text) > CATEGORIES_MAX and len(names) > 1:
        names.pop()
        text = ",".join(names)
    return text


def storable(text: str) -> str:
    """The text with NUL written as `\\x00`: PostgreSQL text and jsonb cannot hold a NUL, router output can."""
    return str(text).replace("\x00", "\\x00")


def storable_evidence(evidence: Iterable[str]) -> list[str]:
    return [storable(line) for line in evidence]


@dataclass(frozen=True)
class RuleVerdict:
    """All the verdicts one rule gave in one evaluation, merged into what its finding shows."""

    rule: str
    category: str
    severity: str
    title: str
    evidence: tuple[str, ...]
    remediation: str
    action: str = ""
    # Every category the fault takes down, comma-separated, the primary first.
    categories: str = ""


@dataclass
class FoldOutcome:
    """What one evaluation changed in a router's findings, by rule id."""

    opened: list[str] = field(default_factory=list)
    reopened: list[str] = field(default_factory=list)
    still_open: list[str] = field(default_factory=list)
    # Still open, and its severity rose (info to warning, warning to critical).
    escalated: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    unjudged: list[str] = field(default_factory=list)


def merge_by_rule(verdicts: Iterable[Verdict]) -> dict[str, RuleVerdict]:
    """One merged verdict per rule: the worst one's words, every verdict's evidence in order."""
    grouped: dict[str, list[Verdict]] = {}
    for verdict in verdicts:
        grouped.setdefault(verdict.rule, []).append(verdict)
    merged = {}
    for rule, group in grouped.items():
        worst = max(group, key=lambda v: SEVERITY_RANK.get(v.severity, 0))
        title = worst.title if len(group) == 1 else f"{worst.title} (and {len(group) - 1} more)"
        evidence = tuple(storable_evidence(line for verdict in group for line in verdict.evidence))
        categories = [name for verdict in (worst, *group) for name in verdict.categories]
        merged[rule] = RuleVerdict(
            rule=rule,
            category=worst.category[:CATEGORY_MAX],
            categories=stored_categories(categories),
            severity=worst.severity,
            title=storable(title)[:TITLE_MAX],
            evidence=evidence,
            remediation=storable(worst.remediation),
            action=worst.action[:64],
        )
    return merged


def record_verdicts(router: Router, collection: Collection | None, verdicts: Sequence[Verdict]) -> list[VerdictRecord]:
    """Keep each verdict as given on the collection it was judged from (none without a collection)."""
    if collection is None:
        return []
    return VerdictRecord.objects.bulk_create(
        VerdictRecord(
            collection=collection,
            router=router,
            rule=verdict.rule,
            category=verdict.category[:CATEGORY_MAX],
            categories=stored_categories(verdict.categories),
            severity=verdict.severity,
            title=storable(verdict.title)[:TITLE_MAX],
            evidence=storable_evidence(verdict.evidence),
            remediation=storable(verdict.remediation),
            action=verdict.action[:64],
        )
        for verdict in verdicts
    )


def _apply_verdict(finding: Finding, verdict: RuleVerdict, collection: Collection | None, now: datetime) -> None:
    finding.category = verdict.category
    finding.categories = verdict.categories
    finding.severity = verdict.severity
    finding.title = verdict.title
    finding.evidence = list(verdict.evidence)
    finding.remediation = verdict.remediation
    finding.action = verdict.action
    finding.last_seen = now
    finding.last_collection = collection


def fold_verdicts(
    router: Router,
    collection: Collection | None,
    verdicts: Sequence[Verdict],
    unjudged_rules: Container[str],
    now: datetime,
) -> FoldOutcome:
    """Open, update, reopen and resolve the router's findings from one evaluation's verdicts.

    `unjudged_rules` are the rules that could not look this time: their open findings are
    left exactly as they were.
    """
    outcome = FoldOutcome()
    events: list[FindingEvent] = []
    merged = merge_by_rule(verdicts)
    existing = {finding.rule: finding for finding in Finding.objects.select_for_update().filter(router=router)}
    for rule, verdict in merged.items():
        finding = existing.get(rule)
        if finding is None:
            finding = Finding(
                router=router, rule=rule, first_seen=now, opened_at=now, first_collection=collection, times_opened=1
            )
            outcome.opened.append(rule)
        elif not finding.is_open:
            finding.resolved_at = None
            finding.opened_at = now
            finding.times_opened += 1
            # An acknowledgement is of one open period: a problem that came back is news again.
            finding.clear_acknowledgement()
            outcome.reopened.append(rule)
        else:
            outcome.still_open.append(rule)
            if SEVERITY_RANK.get(verdict.severity, 0) > SEVERITY_RANK.get(finding.severity, 0):
                outcome.escalated.append(rule)
        _apply_verdict(finding, verdict, collection, now)
        finding.save()
        if rule in outcome.opened or rule in outcome.reopened:
            kind = FindingEventKind.OPENED if rule in outcome.opened else FindingEventKind.REOPENED
            events.append(_event(finding, kind, collection, now))
    for rule, finding in existing.items():
        if rule in merged or not finding.is_open:
            continue
        if rule in unjudged_rules:
            outcome.unjudged.append(rule)
            continue
        finding.resolved_at = now
        finding.save(update_fields=["resolved_at"])
        outcome.resolved.append(rule)
        events.append(_event(finding, FindingEventKind.RESOLVED, collection, now))
    FindingEvent.objects.bulk_create(events)
    return outcome


def _event(finding: Finding, kind: str, collection: Collection | None, now: datetime) -> FindingEvent:
    """The history row of a finding opening, reopening or resolving (the charts' markers)."""
    return FindingEvent(
        router_id=finding.router_id,
        rule=finding.rule,
        category=finding.category,
        severity=finding.severity,
        kind=kind,
        title=finding.title,
        at=now,
        collection=collection,
    )


def status_for(collection_status: str | None, open_severities: Iterable[str]) -> str:
    """A router's status: unknown without a successful last collection, else its worst open finding."""
    if collection_status != CollectionStatus.SUCCEEDED:
        return RouterStatus.UNKNOWN
    worst = max((SEVERITY_RANK.get(severity, 0) for severity in open_severities), default=0)
    if worst >= SEVERITY_RANK["critical"]:
        return RouterStatus.CRITICAL
    if worst >= SEVERITY_RANK["warning"]:
        return RouterStatus.WARNING
    return RouterStatus.OK


def open_categories(findings: Iterable[Finding]) -> list[str]:
    """Every category the open findings take down, each once: the worst finding's first, its primary leading."""
    ordered = sorted(findings, key=lambda f: (-f.severity_rank, f.category))
    categories: list[str] = []
    for finding in ordered:
        for name in finding.category_list:
            if name not in categories:
                categories.append(name)
    return categories


@dataclass(frozen=True)
class StatusChange:
    """The router's status row after an evaluation, and what it was before."""

    health: RouterHealth
    previous_status: str
    previous_categories: str
    previous_collection_status: str = ""
    previous_evaluated_at: datetime | None = None

    @property
    def changed(self) -> bool:
        return self.previous_status != self.health.status or self.previous_categories != self.health.categories

    def shows_differently(self, stale_before: datetime) -> bool:
        """The fleet row would read differently: status, categories, why it is unknown, or no longer stale."""
        return (
            self.changed
            or self.previous_collection_status != self.health.collection_status
            or self.previous_evaluated_at is None
            or self.previous_evaluated_at < stale_before
        )


def refresh_router_health(router: Router, collection: Collection | None, now: datetime) -> StatusChange:
    """Rewrite the router's status row from its open findings and the collection just judged."""
    findings = list(Finding.objects.open().for_router(router))
    status = status_for(collection.status if collection is not None else None, (f.severity for f in findings))
    categories = ",".join(open_categories(findings))[: RouterHealth._meta.get_field("categories").max_length]
    health = RouterHealth.objects.select_for_update().filter(router=router).first()
    previous_status = health.status if health is not None else RouterStatus.UNKNOWN
    previous_categories = health.categories if health is not None else ""
    previous_collection_status = health.collection_status if health is not None else ""
    previous_evaluated_at = health.evaluated_at if health is not None else None
    if health is None:
        health = RouterHealth(router=router, status_since=now)
    elif health.status != status:
        health.status_since = now
    health.status = status
    health.rank = STATUS_RANKS[status]
    health.categories = categories
    health.open_findings = min(len(findings), 32767)
    health.acknowledged_findings = min(sum(1 for f in findings if f.acknowledgement_active(now)), 32767)
    health.collection = collection
    health.collection_status = collection.status if collection is not None else ""
    health.evaluated_at = now
    health.save()
    return StatusChange(
        health=health,
        previous_status=previous_status,
        previous_categories=previous_categories,
        previous_collection_status=previous_collection_status,
        previous_evaluated_at=previous_evaluated_at,
    )


def refresh_acknowledged_count(router: Router | int, now: datetime) -> int:
    """Rewrite the router's count of acknowledged open findings (the wall's mark); returns it."""
    count = Finding.objects.open().for_router(router).acknowledged(now).count()
    RouterHealth.objects.filter(router=router).update(acknowledged_findings=min(count, 32767))
    return count
