"""Retention: deleting old history in short batches, keeping what must stay.

Run by the retention job (diagnostics.jobs.apply_retention, every RETENTION_INTERVAL_SECONDS)
and by `manage.py prune_history`. Each table has its setting (see the README's settings
table); rows go in batches of RETENTION_BATCH_SIZE, each batch a statement of its own, so no
lock is held for long and a crash or a restart mid-run loses nothing (the next run carries
on). Deleting what is already gone deletes nothing: running it twice is running it once.

Kept whatever their age:
- the latest collection of each router, the one each router's status was judged from, and the
  collections an open finding points to (its evidence);
- the collections that opened or resolved a finding, for COLLECTION_EVIDENCE_RETENTION_DAYS;
- the latest config snapshot of each kind of each router;
- the latest sync run of each region.
The hourly rollups are brought up to date first, so no raw sample is deleted before it is
aggregated.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db.models import Exists, Model, OuterRef, Q, QuerySet
from django.utils import timezone

from diagnostics.history import rolled_up_until
from diagnostics.models import (
    Collection,
    CollectionStatus,
    ConfigSnapshot,
    Finding,
    FindingEvent,
    FleetCount,
    HealthRollup,
    HealthSample,
    RouterHealth,
)
from diagnostics.rollup import roll_up
from vrconsole.models import AuditEntry, Router, RouterStateChange, SyncRun


@dataclass
class RetentionReport:
    """Rows deleted per kind, and how long the pass took."""

    deleted: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0
    rollup_caught_up: bool = True

    @property
    def total(self) -> int:
        return sum(self.deleted.values())

    def summary(self) -> str:
        parts = [f"{count} {name}" for name, count in self.deleted.items() if count]
        return ", ".join(parts) if parts else "nothing to delete"


@dataclass(frozen=True)
class Cutoffs:
    """The moment before which each kind of row is old enough to go."""

    samples: datetime
    rollups: datetime
    collections: datetime
    evidence: datetime
    snapshots: datetime
    sync_runs: datetime
    audit: datetime

    @classmethod
    def at(cls, now: datetime) -> Cutoffs:
        def days(value: int) -> datetime:
            return now - timedelta(days=value)

        return cls(
            samples=days(settings.HEALTH_RETENTION_DAYS),
            rollups=days(settings.HEALTH_ROLLUP_RETENTION_DAYS),
            collections=days(settings.COLLECTION_RETENTION_DAYS),
            evidence=days(settings.COLLECTION_EVIDENCE_RETENTION_DAYS),
            snapshots=days(settings.CONFIG_SNAPSHOT_RETENTION_DAYS),
            sync_runs=days(settings.SYNC_RUN_RETENTION_DAYS),
            audit=days(settings.AUDIT_RETENTION_DAYS),
        )


def delete_in_batches(candidates: Callable[[], QuerySet], batch: int, *, dry_run: bool = False) -> int:
    """Delete the rows `candidates()` selects, `batch` primary keys at a time, until none is left.

    A dry run only counts them.
    """
    if dry_run:
        return candidates().count()
    deleted = 0
    while True:
        ids = list(candidates().order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        model = candidates().model
        doomed = model.objects.filter(pk__in=ids)
        # Cascades fetch the rows they must follow; only their keys, never a collection's facts.
        count, _ = doomed.only("pk").delete()
        deleted += len(ids)
        if count == 0:
            return deleted


def deletable_collections(router_id: int, cutoffs: Cutoffs) -> QuerySet:
    """A router's collections retention may delete now (see the module docstring)."""
    newer = Collection.objects.filter(router_id=router_id, pk__gt=OuterRef("pk"))
    judged = RouterHealth.objects.filter(collection=OuterRef("pk"))
    evidence_of_open = Finding.objects.filter(
        Q(first_collection=OuterRef("pk")) | Q(last_collection=OuterRef("pk")), resolved_at__isnull=True
    )
    opened_or_resolved = FindingEvent.objects.filter(collection=OuterRef("pk"))
    return (
        Collection.objects.filter(router_id=router_id, created__lt=cutoffs.collections)
        .exclude(status__in=[CollectionStatus.PENDING, CollectionStatus.RUNNING])
        .filter(Exists(newer))
        .exclude(Exists(judged))
        .exclude(Exists(evidence_of_open))
        .exclude(Q(Exists(opened_or_resolved)) & Q(created__gte=cutoffs.evidence))
    )


def deletable_snapshots(router_id: int, cutoffs: Cutoffs) -> QuerySet:
    """A router's config snapshots older than the retention that a newer one of their kind replaced."""
    newer = ConfigSnapshot.objects.filter(router_id=router_id, kind=OuterRef("kind"), pk__gt=OuterRef("pk"))
    return ConfigSnapshot.objects.filter(router_id=router_id, taken_at__lt=cutoffs.snapshots).filter(Exists(newer))


def _older(model: type[Model], column: str, cutoff: datetime, **match: Any) -> QuerySet:
    """Rows of `model` whose `column` is before the cutoff (and match the given fields)."""
    return model._default_manager.filter(**{f"{column}__lt": cutoff}, **match)


def _replaced_sync_runs(cutoff: datetime) -> QuerySet:
    """Sync runs older than the cutoff, except the latest of each region (its fleet page chip)."""
    newer = SyncRun.objects.filter(region_id=OuterRef("region_id"), pk__gt=OuterRef("pk"))
    return SyncRun.objects.filter(started__lt=cutoff).filter(Exists(newer))


def apply_retention(now: datetime | None = None, *, batch: int | None = None, dry_run: bool = False) -> RetentionReport:
    """One retention pass over every table the console fills; returns what it deleted (or would)."""
    started = time.monotonic()
    now = now or timezone.now()
    size: int = batch or settings.RETENTION_BATCH_SIZE
    cutoffs = Cutoffs.at(now)
    report = RetentionReport()
    report.rollup_caught_up = True if dry_run else roll_up(now).caught_up
    deleted = report.deleted
    for name in ("health samples", "rollups", "collections", "config snapshots", "state changes", "fleet counts"):
        deleted[name] = 0
    router_ids = list(Router.objects.order_by("pk").values_list("pk", flat=True))

    def prune(name: str, candidates: Callable[[], QuerySet], rows: int = size) -> None:
        deleted[name] = deleted.get(name, 0) + delete_in_batches(candidates, rows, dry_run=dry_run)

    for router_id in router_ids:
        # Samples only once they are rolled up: a lagging rollup holds the raw data back.
        sample_cutoff = cutoffs.samples if report.rollup_caught_up else min(cutoffs.samples, _rolled_until(router_id))
        prune("health samples", partial(_older, HealthSample, "at", sample_cutoff, router_id=router_id))
        prune("rollups", partial(_older, HealthRollup, "start", cutoffs.rollups, router_id=router_id))
        prune("collections", partial(deletable_collections, router_id, cutoffs), min(size, 1000))
        prune("config snapshots", partial(deletable_snapshots, router_id, cutoffs))
        prune("state changes", partial(_older, RouterStateChange, "at", cutoffs.rollups, router_id=router_id))
    prune("finding events", partial(_older, FindingEvent, "at", cutoffs.rollups))
    for dimension in FleetCount.objects.values_list("dimension", flat=True).distinct():
        prune("fleet counts", partial(_older, FleetCount, "at", cutoffs.rollups, dimension=dimension))
    prune("sync runs", partial(_replaced_sync_runs, cutoffs.sync_runs))
    prune("expired sessions", partial(_older, Session, "expire_date", now))
    prune("audit entries", partial(_older, AuditEntry, "at", cutoffs.audit))
    report.duration_s = round(time.monotonic() - started, 3)
    if report.total and not dry_run:
        AuditEntry.record("history.retention", detail=f"deleted {report.summary()} in {report.duration_s} s")
    return report


def _rolled_until(router_id: int) -> datetime:
    until = rolled_up_until(router_id)
    return until if until is not None else datetime.min.replace(tzinfo=UTC)
