"""Collection jobs on the collect queues (and the one helper per job that enqueues it), and the
history jobs on the default queue.

Every run has a Collection row, created as `pending` with the id of the RQ job that will run
it, so the console shows queued work, and whether a row can still finish is read from RQ's own
job state (diagnostics.sweep.mark_lost_collections): a killed worker's rows end `failed`
(job_lost) at the next sweep, which then covers those routers again.

A fleet sweep (`sweep_fleet`, a Sweep row) queues its routers in batches of SWEEP_BATCH_SIZE,
grouped by KVM host, one `collect_batch` job each; a collect worker runs a batch on
COLLECT_CONCURRENCY threads over one login per host (diagnostics.sweep). Scaling out is adding
worker processes (RQ is the distributed engine). At most one sweep is in flight: while one
runs, the next is skipped and the running one is marked as having overrun its interval.
An operator's "Collect now" goes to a queue of its own (COLLECT_NOW) with its own workers, so
it never waits behind a sweep; a router is never collected twice at once.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Hashable
from typing import Any

import django_rq
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from diagnostics.access import new_host_pool, plan_access
from diagnostics.collect import default_probes, run_collection
from diagnostics.evaluate import evaluate_after_collection
from diagnostics.hostkeys import PinnedHostKeys
from diagnostics.models import Collection, CollectionReason, CollectionTrigger, Sweep
from diagnostics.retention import apply_retention
from diagnostics.rollup import record_fleet_counts, roll_up
from diagnostics.ssh import HOST_MAX_SESSIONS, AccessError
from diagnostics.sweep import (
    BatchReport,
    RouterBusy,
    batch_waves,
    close_finished_sweeps,
    exclusive_router,
    fail_collections,
    mark_lost_collections,
    run_batch,
)
from vrconsole import events
from vrconsole.models import Router, RouterState
from vrconsole.queues import COLLECT, COLLECT_NOW, QUEUE_TIMEOUTS

logger = logging.getLogger(__name__)

# Triggers whose collection someone is waiting for: they go to the COLLECT_NOW queue.
URGENT_TRIGGERS = frozenset({CollectionTrigger.OPERATOR, CollectionTrigger.TRIAGE, CollectionTrigger.ACTION})


def collection_time_bound() -> float:
    """Seconds one collection can take at worst: two connects plus every probe timing out."""
    probe_seconds = sum(min(p.timeout, settings.SSH_COMMAND_TIMEOUT) for p in default_probes())
    return 2 * settings.SSH_CONNECT_TIMEOUT + probe_seconds


def _job_timeout(waves: int, queue: str = COLLECT) -> int:
    return int(max(QUEUE_TIMEOUTS[queue], waves * collection_time_bound() + 60))


def _new_job_id() -> str:
    return f"collect-{uuid.uuid4().hex}"


def _pending_collection(
    router: Router, trigger: str, user: User | None, job_id: str = "", sweep: Sweep | None = None
) -> Collection:
    return Collection.objects.create(router=router, trigger=trigger, requested_by=user, job_id=job_id, sweep=sweep)


def _mark_lost(collection_ids: list[int], why: str) -> None:
    fail_collections(collection_ids, CollectionReason.JOB_LOST, why)


def collect_and_evaluate(collection: Collection, **options: Any) -> Collection:
    """Run the collection, then judge it with the troubleshooting matrix, whatever its outcome.

    A failed collection is judged too ("unreachable" is a verdict); an errored one is judged
    before its exception goes on to the caller. `options` go to run_collection (probes,
    verifier, pool, publish). The jobs and the triage and collect commands all come here.
    """
    try:
        run_collection(collection, **options)
    finally:
        if collection.is_done:
            evaluate_after_collection(collection, publish=options.get("publish", events.publish))
    return collection


def collect_exclusively(collection: Collection, **options: Any) -> Collection:
    """collect_and_evaluate while holding the router: a session already on it is waited for.

    A router held past the time a collection can take fails this collection (timeout) and
    leaves the other alone.
    """
    try:
        with exclusive_router(collection.router_id, wait=collection_time_bound()):
            return collect_and_evaluate(collection, **options)
    except RouterBusy as exc:
        fail_collections([collection.pk], CollectionReason.TIMEOUT, str(exc))
        collection.refresh_from_db()
        return collection


def collect_router(router_id: int, collection_id: int | None = None) -> int:
    """Collect one router (job). Returns the Collection id; re-raises only on a bug."""
    if collection_id is None:
        router = Router.objects.get(pk=router_id)
        collection = _pending_collection(router, CollectionTrigger.SCHEDULE, None)
    else:
        collection = Collection.objects.get(pk=collection_id, router_id=router_id)
    collect_exclusively(collection)
    return collection.pk


def _host_key(router: Router) -> Hashable | None:
    """The KVM host a router is reached through (None: reached directly, or not reachable)."""
    try:
        plan = plan_access(router)
    except (AccessError, ImproperlyConfigured):
        return None
    if plan.host is None:
        return None
    return (plan.host.identity, plan.host.address, plan.host.port)


def _batch_items(collection_ids: list[int]) -> list[tuple[int, Hashable | None]]:
    rows = Collection.objects.filter(pk__any=collection_ids).select_related("router__host", "router__zone")
    by_pk = {row.pk: row for row in rows}
    return [(pk, _host_key(by_pk[pk].router)) for pk in collection_ids if pk in by_pk]


def _close_interrupted_batch(report: BatchReport) -> None:
    """The batch's job ended early: close what it did not finish, so nothing stays in flight."""
    fail_collections(
        report.not_started,
        CollectionReason.BATCH_TIMEOUT,
        "the batch's job ended (job timeout or worker stopping) before this router was collected; "
        "the next sweep covers it",
    )
    fail_collections(
        report.unfinished,
        CollectionReason.BATCH_TIMEOUT,
        "the batch's job ended (job timeout or worker stopping) during this collection",
    )
    logger.warning(
        "collect batch stopped early: %d collected, %d unfinished, %d not started",
        len(report.done),
        len(report.unfinished),
        len(report.not_started),
    )
    close_finished_sweeps()


def collect_batch(collection_ids: list[int], sweep_id: int | None = None) -> dict[str, int]:
    """Collect a batch of routers concurrently in this worker (job of the sweep).

    COLLECT_CONCURRENCY threads, at most COLLECT_HOST_CONCURRENCY through one KVM host, and
    ONE login per host for the whole batch. One router's bug costs that router only. When RQ's
    job timeout ends the batch, the collections it did not reach (and the ones still running)
    are closed as failed with the reason, and the timeout goes on to RQ.
    """
    verifier = PinnedHostKeys()
    items = _batch_items(collection_ids)
    with new_host_pool(verifier, max_sessions=HOST_MAX_SESSIONS) as pool:

        def collect_one(collection_id: int) -> None:
            collection = Collection.objects.get(pk=collection_id)
            if collection.is_done:
                return  # closed meanwhile (lost and swept again): nothing left to do
            collect_exclusively(collection, verifier=verifier, pool=pool)

        report = run_batch(
            items,
            collect_one,
            concurrency=settings.COLLECT_CONCURRENCY,
            per_host=settings.COLLECT_HOST_CONCURRENCY,
            on_interrupt=_close_interrupted_batch,
        )
    close_finished_sweeps()
    return {"sweep": sweep_id or 0, "collections": len(items), "done": len(report.done)}


def enqueue_collect_router(
    router: Router, trigger: str = CollectionTrigger.OPERATOR, user: User | None = None
) -> Collection:
    """Create a pending Collection for the router and queue its job.

    Someone waiting for it (operator, triage, action) gets the COLLECT_NOW queue, ahead of any
    sweep; a scheduled one the collect queue.
    """
    queue_name = COLLECT_NOW if trigger in URGENT_TRIGGERS else COLLECT
    job_id = _new_job_id()
    collection = _pending_collection(router, trigger, user, job_id=job_id)
    try:
        django_rq.get_queue(queue_name).enqueue(
            collect_router,
            router.pk,
            collection.pk,
            job_id=job_id,
            job_timeout=_job_timeout(1, queue_name),
            result_ttl=3600,
            failure_ttl=86400,
        )
    except Exception as exc:  # Redis unreachable: the row must not stay pending forever
        _mark_lost([collection.pk], f"could not enqueue: {exc}")
        raise
    return collection


def enqueue_collect_batch(
    routers: list[Router], host_keys: list[Hashable | None], sweep: Sweep | None = None
) -> list[Collection]:
    """Create pending Collections for a batch of routers and queue one collect_batch job for them."""
    job_id = _new_job_id()
    with transaction.atomic():
        collections = [
            _pending_collection(router, CollectionTrigger.SCHEDULE, None, job_id=job_id, sweep=sweep)
            for router in routers
        ]
    ids = [collection.pk for collection in collections]
    waves = batch_waves(host_keys, settings.COLLECT_CONCURRENCY, settings.COLLECT_HOST_CONCURRENCY)
    try:
        django_rq.get_queue(COLLECT).enqueue(
            collect_batch,
            ids,
            sweep.pk if sweep is not None else None,
            job_id=job_id,
            job_timeout=_job_timeout(waves),
            result_ttl=3600,
            failure_ttl=86400,
        )
    except Exception as exc:  # Redis unreachable: the rows must not stay pending forever
        _mark_lost(ids, f"could not enqueue: {exc}")
        raise
    return collections


def _note_overrun(running: Sweep) -> dict[str, Any]:
    Sweep.objects.filter(pk=running.pk).update(overran=True, skipped_sweeps=running.skipped_sweeps + 1)
    logger.warning(
        "sweep %s (started %s, %d routers) is still running at the next interval: this sweep is skipped; "
        "the fleet needs more collect workers (README: sizing)",
        running.pk,
        running.started.isoformat(),
        running.total,
    )
    return {"queued": 0, "batches": 0, "direct": 0, "lost": 0, "skipped": 1, "sweep": running.pk}


def sweep_fleet() -> dict[str, Any]:
    """Queue a collection of every present Running router, in host-grouped batches (job).

    Lost rows are closed first (their routers are swept again now); while a sweep is still in
    flight no new one starts: the running one is marked as having overrun its interval.
    """
    lost = mark_lost_collections()
    close_finished_sweeps()
    running = Sweep.objects.in_flight().order_by("started").first()
    if running is not None:
        result = _note_overrun(running)
        result["lost"] = lost
        return result
    sweep = Sweep.objects.create(interval_s=settings.SWEEP_INTERVAL_SECONDS)
    busy = set(Collection.objects.in_flight().values_list("router_id", flat=True))
    routers = Router.objects.present().filter(state=RouterState.RUNNING).select_related("host", "zone").order_by("pk")
    by_host: dict[Hashable, list[Router]] = defaultdict(list)
    direct: list[Router] = []
    skipped_busy = 0
    for router in routers:
        if router.pk in busy:
            skipped_busy += 1
            continue
        key = _host_key(router)
        if key is None:
            direct.append(router)
        else:
            by_host[key].append(router)
    # Host-grouped order: a batch holds few hosts, so each host's login serves many routers.
    ordered: list[tuple[Router, Hashable | None]] = [
        (router, key) for key, host_routers in by_host.items() for router in host_routers
    ]
    ordered += [(router, None) for router in direct]
    size = settings.SWEEP_BATCH_SIZE
    batches = queued = 0
    try:
        for start in range(0, len(ordered), size):
            chunk = ordered[start : start + size]
            queued += len(enqueue_collect_batch([r for r, _ in chunk], [k for _, k in chunk], sweep))
            batches += 1
    finally:
        finished = timezone.now() if queued == 0 else None
        Sweep.objects.filter(pk=sweep.pk).update(total=queued, batches=batches, busy=skipped_busy, finished=finished)
    logger.info(
        "sweep %s queued %d collections in %d batches (%d hosts, %d direct), %d busy, %d lost closed",
        sweep.pk,
        queued,
        batches,
        len(by_host),
        len(direct),
        skipped_busy,
        lost,
    )
    return {
        "sweep": sweep.pk,
        "queued": queued,
        "batches": batches,
        "hosts": len(by_host),
        "direct": len(direct),
        "busy": skipped_busy,
        "lost": lost,
        "skipped": 0,
    }


def record_history() -> dict[str, Any]:
    """Roll settled hours up into the hourly and daily aggregates, and record the fleet counts (job).

    Scheduled every HISTORY_INTERVAL_SECONDS on the default queue (vrconsole/schedules.py).
    """
    counts = record_fleet_counts()
    report = roll_up()
    logger.info(
        "history: %d hours rolled up (%d hourly, %d daily rows) in %.1f s%s",
        report.hours,
        report.hourly_rows,
        report.daily_rows,
        report.duration_s,
        "" if report.caught_up else ", more next run",
    )
    return {
        "fleet_counts": len(counts),
        "hours": report.hours,
        "hourly_rows": report.hourly_rows,
        "daily_rows": report.daily_rows,
        "caught_up": report.caught_up,
    }


def prune_history() -> dict[str, Any]:
    """Apply the retention settings (job): delete old history in short batches, keep what must stay.

    Scheduled every RETENTION_INTERVAL_SECONDS on the default queue (vrconsole/schedules.py).
    """
    report = apply_retention()
    logger.info("retention: %s in %.1f s", report.summary(), report.duration_s)
    return {"deleted": report.deleted, "duration_s": report.duration_s}
