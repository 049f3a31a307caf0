"""RQ jobs of the inventory side: the region sync.

Jobs are thin: they load what they need, call vrconsole.sync, publish a fleet event and
return. An expected failure (the API refused, timed out, answered garbage) is recorded on
the region by the sync and the job ends normally; a bug raises so RQ keeps the traceback.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import django_rq
from django.utils import timezone
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry

from vrconsole import events, queues
from vrconsole.cloudstack.regions import configured_regions, region_config
from vrconsole.models import Region, SyncRun, SyncStatus
from vrconsole.sync import SyncResult, sync_region

logger = logging.getLogger(__name__)


# A fleet event names at most this many routers; a bigger change asks pages to refresh every row.
MAX_ROUTER_IDS_PER_EVENT = 500


def publish_sync(result: SyncResult) -> None:
    """Tell the fleet pages: which routers' rows changed, then that the region's sync finished."""
    if result.changed_router_ids:
        ids = result.changed_router_ids
        routers: events.FleetRouters = {
            "type": "fleet.routers",
            "region": result.region,
            "router_ids": ids[:MAX_ROUTER_IDS_PER_EVENT],
            "truncated": len(ids) > MAX_ROUTER_IDS_PER_EVENT,
        }
        events.publish(events.FLEET_GROUP, routers)
    events.publish(events.FLEET_GROUP, {"type": "sync.finished", **result.as_json()})


def sync_region_job(region_name: str, trigger: str = SyncRun.Trigger.SCHEDULE) -> dict[str, Any]:
    """Sync one configured region (the RQ job)."""
    result = sync_region(region_config(region_name), trigger=trigger)
    publish_sync(result)
    return result.as_json()


def _job_id(region_name: str) -> str:
    return f"sync-{region_name}"


def enqueue_sync_region(region_name: str, trigger: str = SyncRun.Trigger.SCHEDULE) -> Job | None:
    """Queue a sync of one region unless one is already queued or running."""
    queue = django_rq.get_queue(queues.SYNC)
    job_id = _job_id(region_name)
    existing = queue.fetch_job(job_id)
    if existing is not None and existing.get_status(refresh=True) in {JobStatus.QUEUED, JobStatus.STARTED}:
        return None
    return queue.enqueue(
        sync_region_job,
        region_name,
        trigger,
        job_id=job_id,
        result_ttl=3600,
        failure_ttl=7 * 86400,
    )


def close_dead_sync_runs() -> int:
    """Close as failed the SyncRuns a killed worker left `running`.

    A queued run (schedule, operator) is dead when RQ no longer has its region's job queued
    or started, after RQ's own clean-up of the jobs whose worker stopped sending heartbeats.
    A run of the sync command has no job: it is dead once older than a sync job may last.
    """
    queue = django_rq.get_queue(queues.SYNC)
    StartedJobRegistry(queues.SYNC, connection=queue.connection).cleanup()
    now = timezone.now()
    command_horizon = now - timedelta(seconds=2 * queues.QUEUE_TIMEOUTS[queues.SYNC])
    closed = 0
    running = SyncRun.objects.filter(status=SyncStatus.RUNNING, started__lt=now - timedelta(seconds=60))
    for run in running.select_related("region"):
        if run.trigger == SyncRun.Trigger.COMMAND:
            if run.started >= command_horizon:
                continue
        else:
            job = queue.fetch_job(_job_id(run.region.name))
            if job is not None and job.get_status(refresh=True) in {JobStatus.QUEUED, JobStatus.STARTED}:
                continue
        error = "the sync's worker stopped before it finished (killed or restarted); nothing was applied"
        closed += SyncRun.objects.filter(pk=run.pk, status=SyncStatus.RUNNING).update(
            status=SyncStatus.FAILED, finished=now, error=error
        )
        Region.objects.filter(pk=run.region_id, last_sync_status=SyncStatus.RUNNING).update(
            last_sync_status=SyncStatus.FAILED, last_sync_finished=now, last_sync_error=error
        )
        logger.warning(
            "sync run %s of region %s was left running by a dead worker: closed as failed", run.pk, run.region
        )
    return closed


def sync_all_regions() -> list[str]:
    """Queue a sync of every configured region, one job each (the scheduled entry point).

    Each region is its own job on the sync queue, so with a sync worker per region they run
    in parallel and one region's failure or slowness never delays another's.
    """
    close_dead_sync_runs()
    queued = []
    for region in configured_regions():
        if enqueue_sync_region(region.name) is not None:
            queued.append(region.name)
    return queued
