"""Retention: deleting old history in short batches, keeping what must stay.

Run by the retention job (diagnostics.jobs.apply_retention, every RETENTION_INTERVAL_SECONDS)
and by `manage.py prune_history`. Each table has its setting (see the README's settings
table). The big tables (samples, collections) are walked in one-hour slices of their time
index, the others in batches of RETENTION_BATCH_SIZE keys: each statement is short, so no
lock is held for long, and a crash or a restart mid-run loses nothing (the next run carries
on). Deleting what is already gone deletes nothing: running it twice is running it once.

Kept whatever their age:
- the latest collection of each router, the one each router's status was judged from, and the
  collections an open finding points to (its evidence);
- the collections that opened or resolved a finding, for COLLECTION_EVIDENCE_RETENTION_DAYS;
- the latest config snapshot of each kind of each router;
- the latest sync run of each region;
- the notifications about a finding still open (its reminders and resolution depend on them).
The hourly rollups are brought up to date first, so no raw sample is deleted before it is
aggregated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection, models, transaction
from django.db.models import Exists, Max, Min, Model, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from diagnostics.models import (
    Collection,
    CollectionStatus,
    ConfigSnapshot,
    Finding,
    FindingEvent,
    FleetCount,
    FleetCountDimension,
    HealthRollup,
    HealthSample,
    Notification,
    RollupSpan,
    RouterHealth,
    Silence,
)
from diagnostics.rollup import roll_up
from vrconsole.models import AuditEntry, Router, RouterStateChange, SyncRun

# The time slice each statement deletes from the big tables.
SLICE_SECONDS = 3600


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
        deleted += _delete_ids(candidates().model, ids)


def _delete_ids(model: type[Model], ids: Sequence[int]) -> int:
    """Delete rows by primary key in one short transaction (Django's collector follows the relations)."""
    # Cascades fetch the rows they must follow: only their keys, never a collection's facts.
    model._default_manager.filter(pk__in=ids).only("pk").delete()
    return len(ids)


def time_slices(model: type[Model], column: str, cutoff: datetime, slice_s: int = SLICE_SECONDS) -> Iterator[tuple]:
    """[start, end) slices of `slice_s` seconds from the oldest row of `model` up to the cutoff.

    Walking time in slices lets each statement use the time index (BRIN or btree) on a
    small range, whatever the table's size, instead of scanning from its start every batch.
    """
    oldest = model._default_manager.filter(**{f"{column}__lt": cutoff}).aggregate(Min(column))[f"{column}__min"]
    if oldest is None:
        return
    begin = datetime.fromtimestamp(oldest.timestamp() // slice_s * slice_s, tz=UTC)
    while begin < cutoff:
        end = min(begin + timedelta(seconds=slice_s), cutoff)
        yield begin, end
        begin = end


def kept_collection_ids(cutoffs: Cutoffs) -> set[int]:
    """Collections kept whatever their age: each router's latest, the ones statuses were judged
    from, the evidence of open findings, and the ones that opened or resolved a finding
    within COLLECTION_EVIDENCE_RETENTION_DAYS. A set bounded by routers and findings."""
    latest = Collection.objects.filter(router=OuterRef("pk")).order_by("-created", "-pk").values("pk")[:1]
    kept = {pk for pk in Router.objects.annotate(latest=Subquery(latest)).values_list("latest", flat=True) if pk}
    kept |= set(RouterHealth.objects.exclude(collection=None).values_list("collection_id", flat=True))
    for first, last in Finding.objects.open().values_list("first_collection_id", "last_collection_id"):
        kept |= {pk for pk in (first, last) if pk}
    kept |= set(
        FindingEvent.objects.exclude(collection=None)
        .filter(collection__created__gte=cutoffs.evidence)
        .values_list("collection_id", flat=True)
    )
    return kept


def prune_collections(cutoffs: Cutoffs, batch: int, dry_run: bool) -> int:
    """Delete old collections slice by slice (with their probe results and verdicts), keeping the kept ones."""
    kept = kept_collection_ids(cutoffs)
    in_flight = [CollectionStatus.PENDING, CollectionStatus.RUNNING]
    deleted = 0
    for begin, end in time_slices(Collection, "created", cutoffs.collections):
        in_slice = Collection.objects.filter(created__gte=begin, created__lt=end)
        # The slice's keys through the time index (an aggregate MIN/MAX(id) would walk the
        # primary key instead); only the kept keys in their span go into the statement.
        ids = list(in_slice.values_list("pk", flat=True))
        if not ids:
            continue
        low, high = min(ids), max(ids)
        kept_here = [pk for pk in kept if low <= pk <= high]
        # Evidence captured before a destructive action (keep=True) outlives every retention:
        # the router it describes may be gone.
        doomed = in_slice.exclude(status__in=in_flight).exclude(keep=True).exclude(pk__in=kept_here)
        if dry_run:
            deleted += doomed.count()
            continue
        deleted += delete_collections(doomed)
    return deleted


def delete_collections(doomed: QuerySet) -> int:
    """Delete the selected collections and follow every relation to them, set-based, in one transaction.

    Each model pointing at Collection gets one statement with the selection as a subquery,
    by its own on_delete (CASCADE deletes, SET_NULL clears, DO_NOTHING leaves), instead of
    Django's collector fetching keys and probing them in lists: a slice of a big fleet is a
    handful of joins. A relation this does not know how to follow (PROTECT, a custom
    handler) hands the slice to the collector, which knows every rule.
    """
    relations = [r for r in Collection._meta.related_objects if r.one_to_many or r.one_to_one]
    handlers = {models.CASCADE, models.SET_NULL, models.DO_NOTHING}
    if any(relation.field.remote_field.on_delete not in handlers for relation in relations):
        ids = list(doomed.values_list("pk", flat=True))
        for at in range(0, len(ids), 1000):
            _delete_ids(Collection, ids[at : at + 1000])
        return len(ids)
    with transaction.atomic():
        selection = doomed.values("pk")
        for relation in relations:
            field = relation.field
            related: Any = relation.related_model
            rows = related._base_manager.filter(**{f"{field.name}__in": selection})
            on_delete = field.remote_field.on_delete
            if on_delete is models.CASCADE:
                rows.delete()
            elif on_delete is models.SET_NULL:
                rows.update(**{field.name: None})
        sql, params = doomed.values("pk").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {Collection._meta.db_table} WHERE id IN ({sql})", params)
            return cursor.rowcount


def prune_by_time(model: type[Model], column: str, cutoff: datetime, dry_run: bool, **match: Any) -> int:
    """Delete rows older than the cutoff one time slice per statement (no relation points at them)."""
    deleted = 0
    for begin, end in time_slices(model, column, cutoff):
        rows = model._default_manager.filter(**{f"{column}__gte": begin, f"{column}__lt": end}, **match)
        deleted += rows.count() if dry_run else rows.delete()[0]
    return deleted


def deletable_snapshots(cutoffs: Cutoffs) -> QuerySet:
    """Config snapshots older than the retention that a newer one of their kind (same router) replaced."""
    newer = ConfigSnapshot.objects.filter(router_id=OuterRef("router_id"), kind=OuterRef("kind"), pk__gt=OuterRef("pk"))
    return ConfigSnapshot.objects.filter(taken_at__lt=cutoffs.snapshots).filter(Exists(newer))


def _older(model: type[Model], column: str, cutoff: datetime, **match: Any) -> QuerySet:
    """Rows of `model` whose `column` is before the cutoff (and match the given fields)."""
    return model._default_manager.filter(**{f"{column}__lt": cutoff}, **match)


def _told_about_the_past(cutoff: datetime) -> QuerySet:
    """Notifications (with their deliveries) older than the cutoff, except those about a finding still
    open: what was told in its current open period decides its reminders and its resolution message."""
    still_open = Q(finding__isnull=False, finding__resolved_at__isnull=True)
    return Notification.objects.filter(created__lt=cutoff).exclude(still_open)


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
    deleted["fleet counts"] = 0

    def prune(name: str, candidates: Callable[[], QuerySet]) -> None:
        deleted[name] = deleted.get(name, 0) + delete_in_batches(candidates, size, dry_run=dry_run)

    # Samples only once they are rolled up: a lagging rollup holds the raw data back.
    sample_cutoff = cutoffs.samples if report.rollup_caught_up else min(cutoffs.samples, _rolled_until())
    deleted["health samples"] = prune_by_time(HealthSample, "at", sample_cutoff, dry_run)
    deleted["collections"] = prune_collections(cutoffs, size, dry_run)
    prune("rollups", partial(_older, HealthRollup, "start", cutoffs.rollups))
    prune("config snapshots", partial(deletable_snapshots, cutoffs))
    prune("state changes", partial(_older, RouterStateChange, "at", cutoffs.rollups))
    prune("finding events", partial(_older, FindingEvent, "at", cutoffs.rollups))
    prune("notifications", partial(_told_about_the_past, cutoffs.rollups))
    prune("silences", partial(_older, Silence, "ends", cutoffs.rollups))
    for dimension in FleetCountDimension.values:
        prune("fleet counts", partial(_older, FleetCount, "at", cutoffs.rollups, dimension=dimension))
    prune("sync runs", partial(_replaced_sync_runs, cutoffs.sync_runs))
    prune("expired sessions", partial(_older, Session, "expire_date", now))
    prune("audit entries", partial(_older, AuditEntry, "at", cutoffs.audit))
    report.duration_s = round(time.monotonic() - started, 3)
    if report.total and not dry_run:
        AuditEntry.record("history.retention", detail=f"deleted {report.summary()} in {report.duration_s} s")
    return report


def _rolled_until() -> datetime:
    """The end of the newest hourly rollup of any router (the rollup job's progress)."""
    newest = HealthRollup.objects.filter(span=RollupSpan.HOUR).aggregate(Max("start"))["start__max"]
    return newest + timedelta(hours=1) if newest is not None else datetime.min.replace(tzinfo=UTC)
