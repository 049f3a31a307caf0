"""Collection jobs on the collect queue (and the one helper per job that enqueues it), and the
history jobs on the default queue.

Every run has a Collection row, created as `pending` when the job is enqueued, so the
console shows queued work and a Redis restart loses at most queued jobs, never a finished
collection (those are in the database; `sweep_fleet` marks long-pending rows `job_lost`).

A fleet sweep enqueues one job per KVM host (`collect_routers_behind_host`), which collects
the routers behind that host one after another over one host SSH transport, and one job per
directly reached router (`collect_router`); a host with more than HOST_BATCH_SIZE routers
gets several such jobs, so that the workers share a big host instead of one worker walking
all of it. Concurrency is therefore the number of workers listening on the collect queue:
scaling is adding workers (RQ is the distributed engine), and a host never sees more console
transports from a sweep than there are workers. Routers that already
have a collection pending or running are skipped, so a slow sweep cannot pile up behind
itself.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta
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
from diagnostics.models import Collection, CollectionReason, CollectionStatus, CollectionTrigger
from diagnostics.retention import apply_retention
from diagnostics.rollup import record_fleet_counts, roll_up
from diagnostics.ssh import AccessError
from vrconsole import events
from vrconsole.models import Router, RouterState
from vrconsole.queues import COLLECT, QUEUE_TIMEOUTS

logger = logging.getLogger(__name__)

# Routers per host job: big enough to amortise the host login over many routers, small
# enough that a host with a few hundred routers keeps every worker busy.
HOST_BATCH_SIZE = 10


def collection_time_bound() -> float:
    """Seconds one collection can take at worst: two connects plus every probe timing out."""
    probe_seconds = sum(min(p.timeout, settings.SSH_COMMAND_TIMEOUT) for p in default_probes())
    return 2 * settings.SSH_CONNECT_TIMEOUT + probe_seconds


def _job_timeout(collections: int) -> int:
    return int(max(QUEUE_TIMEOUTS[COLLECT], collections * collection_time_bound() + 60))


def _pending_collection(router: Router, trigger: str, user: User | None) -> Collection:
    return Collection.objects.create(router=router, trigger=trigger, requested_by=user)


def _mark_lost(collection_ids: list[int], why: str) -> None:
    Collection.objects.filter(pk__in=collection_ids, status=CollectionStatus.PENDING).update(
        status=CollectionStatus.FAILED, reason=CollectionReason.JOB_LOST, error=why[:2000], finished=timezone.now()
    )


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


def collect_router(router_id: int, collection_id: int | None = None) -> int:
    """Collect one router (job). Returns the Collection id; re-raises only on a bug."""
    if collection_id is None:
        router = Router.objects.get(pk=router_id)
        collection = _pending_collection(router, CollectionTrigger.SCHEDULE, None)
    else:
        collection = Collection.objects.get(pk=collection_id, router_id=router_id)
    collect_and_evaluate(collection)
    return collection.pk


def collect_routers_behind_host(host_id: int, collection_ids: list[int]) -> list[int]:
    """Collect several routers behind one host over one host transport (job).

    One router's bug does not stop the others; the first such error is re-raised at the end
    so the worker records the job as failed with its traceback.
    """
    verifier = PinnedHostKeys()
    first_error: Exception | None = None
    with new_host_pool(verifier) as pool:
        for collection in Collection.objects.filter(pk__in=collection_ids).order_by("pk"):
            try:
                collect_and_evaluate(collection, verifier=verifier, pool=pool)
            except Exception as exc:  # recorded on the row by run_collection; keep going
                logger.exception("collection %s behind host %s errored", collection.pk, host_id)
                first_error = first_error or exc
    if first_error is not None:
        raise first_error
    return collection_ids


def enqueue_collect_router(
    router: Router, trigger: str = CollectionTrigger.OPERATOR, user: User | None = None
) -> Collection:
    """Create a pending Collection for the router and queue its job on the collect queue."""
    collection = _pending_collection(router, trigger, user)
    try:
        django_rq.get_queue(COLLECT).enqueue(
            collect_router, router.pk, collection.pk, job_timeout=_job_timeout(1), result_ttl=3600
        )
    except Exception as exc:  # Redis unreachable: the row must not stay pending forever
        _mark_lost([collection.pk], f"could not enqueue: {exc}")
        raise
    return collection


def enqueue_collect_routers_behind_host(
    host_id: int, routers: list[Router], trigger: str = CollectionTrigger.SCHEDULE
) -> list[Collection]:
    """Create pending Collections for routers behind one host and queue one job for all of them."""
    with transaction.atomic():
        collections = [_pending_collection(router, trigger, None) for router in routers]
    ids = [collection.pk for collection in collections]
    try:
        django_rq.get_queue(COLLECT).enqueue(
            collect_routers_behind_host, host_id, ids, job_timeout=_job_timeout(len(ids)), result_ttl=3600
        )
    except Exception as exc:  # Redis unreachable: the rows must not stay pending forever
        _mark_lost(ids, f"could not enqueue: {exc}")
        raise
    return collections


def _mark_stale_collections_lost() -> int:
    """Pending or running rows older than any job could last were lost with their job."""
    horizon = timedelta(seconds=max(3 * settings.SWEEP_INTERVAL_SECONDS, 2 * QUEUE_TIMEOUTS[COLLECT]) + 600)
    stale = Collection.objects.in_flight().filter(created__lt=timezone.now() - horizon)
    return stale.update(
        status=CollectionStatus.FAILED,
        reason=CollectionReason.JOB_LOST,
        error="the job never finished (worker or Redis restarted)",
        finished=timezone.now(),
    )


def sweep_fleet() -> dict[str, int]:
    """Queue a collection of every present Running router (job). Returns what was queued."""
    lost = _mark_stale_collections_lost()
    busy = Collection.objects.in_flight().values("router_id")
    routers = (
        Router.objects.present()
        .filter(state=RouterState.RUNNING)
        .exclude(pk__in=busy)
        .select_related("host", "zone")
        .order_by("pk")
    )
    by_host: dict[int, list[Router]] = defaultdict(list)
    alone: list[Router] = []
    for router in routers:
        try:
            plan = plan_access(router)
        except (AccessError, ImproperlyConfigured):
            # Its own job records why it cannot be reached.
            alone.append(router)
            continue
        if plan.host is not None and router.host_id is not None:
            by_host[router.host_id].append(router)
        else:
            alone.append(router)
    queued = 0
    batches = 0
    for host_id, host_routers in by_host.items():
        for start in range(0, len(host_routers), HOST_BATCH_SIZE):
            queued += len(enqueue_collect_routers_behind_host(host_id, host_routers[start : start + HOST_BATCH_SIZE]))
            batches += 1
    for router in alone:
        enqueue_collect_router(router, CollectionTrigger.SCHEDULE)
        queued += 1
    logger.info("fleet sweep queued %d collections (%d host batches), %d lost marked", queued, batches, lost)
    return {"queued": queued, "host_batches": batches, "direct": len(alone), "lost": lost}


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
