"""The fleet sweep at scale: many router sessions at once in one worker, and how far a sweep is.

A collection is mostly waiting (network round trips, the routers' one-second CPU sample), so
a collect worker process runs a batch of collections on COLLECT_CONCURRENCY threads. Routers
behind one KVM host share ONE login to that host for the whole batch (the host pool), and at
most COLLECT_HOST_CONCURRENCY of them go through it at once; a router is never collected by
two sessions at once, whoever asked (a PostgreSQL advisory lock per router, held on the
collecting thread's own connection, so a killed worker's lock goes with its connection).

A sweep's progress is counted from its collections (done, failed) against its total, so a
killed worker leaves no stale counter. Whether an in-flight collection still has a job to
finish it is read from RQ itself: the job's status in Redis, after RQ's own clean-up of the
jobs whose worker stopped sending heartbeats. There is no fixed horizon to outlive.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import django_rq
from django.conf import settings
from django.db import DatabaseError, connection, connections
from django.db.models import Count, Max, Q
from django.utils import timezone
from redis import Redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from diagnostics.models import Collection, CollectionReason, CollectionStatus, Sweep
from vrconsole.queues import COLLECT, COLLECT_NOW

logger = logging.getLogger(__name__)

# Advisory-lock namespace of "this router is being collected" (the first key of the pair).
ROUTER_LOCK_NAMESPACE = 0x56524331  # "VRC1"
# A row is judged against its job only once the job has had time to reach Redis.
ENQUEUE_GRACE = timedelta(seconds=60)
# Rows from before job ids were recorded: lost once older than any job could last.
UNTRACKED_HORIZON = timedelta(hours=2)
_DEAD_JOB_STATUSES = {JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED, JobStatus.FINISHED}


class RouterBusy(Exception):
    """Another session held the router for longer than a collection can take."""


_local_held: set[int] = set()
_local_condition = threading.Condition()


@contextmanager
def exclusive_router(router_id: int, wait: float) -> Iterator[None]:
    """Hold the router for one collection; wait up to `wait` seconds for another one to end.

    On PostgreSQL a session advisory lock on this thread's connection (released by the server
    if the process dies); elsewhere (SQLite of the local run, one machine) a process-local set.
    Raises RouterBusy when the router stayed busy.
    """
    deadline = time.monotonic() + wait
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            while True:
                cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [ROUTER_LOCK_NAMESPACE, router_id])
                if cursor.fetchone()[0]:
                    break
                if time.monotonic() > deadline:
                    raise RouterBusy(f"another session held router {router_id} for {wait:g}s")
                time.sleep(0.2)
        try:
            yield
        finally:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [ROUTER_LOCK_NAMESPACE, router_id])
            except DatabaseError:
                # The connection is gone, and the server released its locks with it.
                logger.warning("could not release the lock of router %s: its connection is gone", router_id)
        return
    with _local_condition:
        while router_id in _local_held:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RouterBusy(f"another session held router {router_id} for {wait:g}s")
            _local_condition.wait(remaining)
        _local_held.add(router_id)
    try:
        yield
    finally:
        with _local_condition:
            _local_held.discard(router_id)
            _local_condition.notify_all()


def batch_waves(host_keys: Sequence[Hashable | None], concurrency: int, per_host: int) -> int:
    """How many collection times a batch takes at worst: its longest queue, global or per host."""
    per_key = Counter(key for key in host_keys if key is not None)
    waves = math.ceil(len(host_keys) / max(concurrency, 1)) if host_keys else 0
    for count in per_key.values():
        waves = max(waves, math.ceil(count / max(per_host, 1)))
    return waves


@dataclass
class BatchReport:
    """What one batch did: the collections run to their end, and the ones it never reached."""

    done: list[int] = field(default_factory=list)
    not_started: list[int] = field(default_factory=list)
    unfinished: list[int] = field(default_factory=list)


class _Scheduler:
    """Hands out a batch's collections to threads: in order, but never a host past its cap."""

    def __init__(self, items: Sequence[tuple[int, Hashable | None]], per_host: int) -> None:
        self.pending: deque[tuple[int, Hashable | None]] = deque(items)
        self.per_host = per_host
        self.busy: Counter[Hashable] = Counter()
        self.running: set[int] = set()
        self.done: list[int] = []
        self.stopped = False
        self.condition = threading.Condition()

    def take(self) -> tuple[int, Hashable | None] | None:
        with self.condition:
            while True:
                if self.stopped or not self.pending:
                    return None
                for item in self.pending:
                    key = item[1]
                    if key is None or self.busy[key] < self.per_host:
                        self.pending.remove(item)
                        if key is not None:
                            self.busy[key] += 1
                        self.running.add(item[0])
                        return item
                self.condition.wait(0.5)

    def release(self, item: tuple[int, Hashable | None]) -> None:
        with self.condition:
            if item[1] is not None:
                self.busy[item[1]] -= 1
            self.running.discard(item[0])
            self.done.append(item[0])
            self.condition.notify_all()

    def stop(self) -> None:
        with self.condition:
            self.stopped = True
            self.condition.notify_all()


def run_batch(
    items: Sequence[tuple[int, Hashable | None]],
    collect: Callable[[int], None],
    *,
    concurrency: int,
    per_host: int,
    on_interrupt: Callable[[BatchReport], None] | None = None,
) -> BatchReport:
    """Run `collect(collection_id)` for every (collection id, host key) on up to `concurrency` threads.

    At most `per_host` items with the same host key run at once (None: reached directly, no
    cap but the global one). `collect` records its own outcome; an exception it lets through
    is logged and costs that collection only. Anything raised in the calling thread while it
    waits (RQ's job timeout above all) stops the batch: no new collection starts,
    `on_interrupt` gets the report (the ones never started, the ones still running), and the
    exception goes on unchanged.
    """
    scheduler = _Scheduler(items, per_host)

    def work() -> None:
        try:
            while (item := scheduler.take()) is not None:
                try:
                    collect(item[0])
                except Exception:
                    logger.exception("collection %s errored in its batch", item[0])
                finally:
                    scheduler.release(item)
        finally:
            connections.close_all()

    # Daemon threads: a work horse that ran out of time exits without waiting for them.
    threads = [
        threading.Thread(target=work, name=f"collect-{n}", daemon=True) for n in range(min(concurrency, len(items)))
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.5)
    except BaseException:
        scheduler.stop()
        with scheduler.condition:
            report = BatchReport(
                done=list(scheduler.done),
                not_started=[pk for pk, _ in scheduler.pending],
                unfinished=sorted(scheduler.running),
            )
        if on_interrupt is not None:
            on_interrupt(report)
        raise
    return BatchReport(done=list(scheduler.done))


def fail_collections(ids: Sequence[int], reason: str, error: str) -> int:
    """Close in-flight rows as failed with a reason (rows already finished are left alone)."""
    if not ids:
        return 0
    now = timezone.now()
    return (
        Collection.objects.in_flight()
        .filter(pk__any=list(ids))
        .update(status=CollectionStatus.FAILED, reason=reason, error=error[:2000], finished=now)
    )


def _rq_connection() -> Redis:
    return django_rq.get_connection(COLLECT)


def mark_lost_collections(registry_time: float | None = None) -> int:
    """Close as failed (job_lost) the in-flight rows whose RQ job can no longer finish them.

    RQ first moves the jobs whose worker stopped sending heartbeats to its failed registry
    (its own clean-up, `registry_time` being "now" for it); then a row is lost when its job
    failed, was stopped or cancelled, or finished without closing the row, or (given a minute
    to get there) is not in Redis at all. Rows from before job ids were kept are lost once
    older than any job could last.
    """
    rows = list(Collection.objects.in_flight().values_list("pk", "job_id", "created"))
    if not rows:
        return 0
    redis = _rq_connection()
    for name in (COLLECT, COLLECT_NOW):
        StartedJobRegistry(name, connection=redis).cleanup(registry_time)
    job_ids = sorted({job_id for _, job_id, _ in rows if job_id})
    ended: dict[str, str] = {}
    missing: set[str] = set()
    jobs = Job.fetch_many(job_ids, connection=redis) if job_ids else []
    for job_id, job in zip(job_ids, jobs, strict=True):
        try:
            status = job.get_status(refresh=False) if job is not None else None
        except NoSuchJobError:
            status = None
        if status is None:
            missing.add(job_id)
        elif status in _DEAD_JOB_STATUSES:
            ended[job_id] = f"its RQ job ended {status} without finishing it (worker killed or job timeout)"
    now = timezone.now()
    by_verdict: dict[str, list[int]] = {}
    for pk, job_id, created in rows:
        if job_id in ended:
            by_verdict.setdefault(ended[job_id], []).append(pk)
        elif job_id in missing and created < now - ENQUEUE_GRACE:
            why = "its RQ job is gone from Redis (Redis restarted or the job expired)"
            by_verdict.setdefault(why, []).append(pk)
        elif not job_id and created < now - UNTRACKED_HORIZON:
            by_verdict.setdefault("the job never finished (worker or Redis restarted)", []).append(pk)
    lost = 0
    for why, ids in by_verdict.items():
        lost += fail_collections(ids, CollectionReason.JOB_LOST, why)
    if lost:
        logger.warning("%d collections were lost with their jobs and are closed as failed", lost)
    return lost


def close_finished_sweeps() -> int:
    """Mark finished the sweeps none of whose collections is still in flight."""
    closed = 0
    for sweep in Sweep.objects.in_flight():
        if Collection.objects.in_flight().filter(sweep=sweep).exists():
            continue
        last = Collection.objects.filter(sweep=sweep).aggregate(last=Max("finished"))["last"]
        closed += Sweep.objects.filter(pk=sweep.pk, finished__isnull=True).update(finished=last or timezone.now())
    return closed


@dataclass(frozen=True)
class SweepProgress:
    """How far a sweep is, for the fleet page: counts, rate, and whether it fits its interval."""

    sweep_id: int
    started: datetime
    finished: datetime | None
    total: int
    done: int
    failed: int
    busy: int
    interval_s: int
    overran: bool
    skipped_sweeps: int
    now: datetime

    @property
    def running(self) -> bool:
        return self.finished is None

    @property
    def elapsed_s(self) -> float:
        return ((self.finished or self.now) - self.started).total_seconds()

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the rate so far; None before the first collection ends."""
        if not self.running:
            return 0.0
        if self.done == 0:
            return None
        return self.elapsed_s / self.done * (self.total - self.done)

    @property
    def late(self) -> bool:
        """It overran, or at its rate it will not finish within its interval."""
        if self.overran:
            return True
        if self.interval_s <= 0:
            return False
        if not self.running:
            return self.elapsed_s > self.interval_s
        eta = self.eta_s
        return eta is not None and self.elapsed_s + eta > self.interval_s

    @property
    def percent(self) -> int:
        return 100 if self.total == 0 else int(100 * self.done / self.total)


def latest_sweep_progress(now: datetime | None = None) -> SweepProgress | None:
    """The progress of the latest sweep (in flight or last finished), in two queries."""
    sweep = Sweep.objects.order_by("-started", "-id").first()
    if sweep is None:
        return None
    counts = Collection.objects.filter(sweep=sweep).aggregate(
        done=Count("pk", filter=~Q(status__in=[CollectionStatus.PENDING, CollectionStatus.RUNNING])),
        failed=Count("pk", filter=Q(status__in=[CollectionStatus.FAILED, CollectionStatus.ERRORED])),
    )
    return SweepProgress(
        sweep_id=sweep.pk,
        started=sweep.started,
        finished=sweep.finished,
        total=sweep.total,
        done=counts["done"],
        failed=counts["failed"],
        busy=sweep.busy,
        interval_s=sweep.interval_s or settings.SWEEP_INTERVAL_SECONDS,
        overran=sweep.overran,
        skipped_sweeps=sweep.skipped_sweeps,
        now=now or timezone.now(),
    )
