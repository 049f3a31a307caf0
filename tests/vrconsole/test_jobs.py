"""The sync job on its RQ queue, against real Redis and the simulator."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import django_rq
import pytest
from django.utils import timezone
from rq import SimpleWorker

from devcloud.simulator.server import RunningSimulator, start_simulator
from vrconsole import queues
from vrconsole.jobs import close_dead_sync_runs, enqueue_sync_region, sync_all_regions
from vrconsole.models import Region, Router, SyncRun, SyncStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sim(settings) -> Iterator[RunningSimulator]:
    running = start_simulator(routers=30, seed=5)
    settings.CLOUDSTACK_CONFIG = None
    settings.CLOUDSTACK_URL = running.url
    settings.CLOUDSTACK_API_KEY = running.api_key
    settings.CLOUDSTACK_SECRET_KEY = running.secret_key
    settings.CLOUDSTACK_REGION = "lab"
    queue = django_rq.get_queue(queues.SYNC)
    queue.empty()
    try:
        yield running
    finally:
        queue.empty()
        running.stop()


def _work_off() -> None:
    queue = django_rq.get_queue(queues.SYNC)
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def test_the_scheduled_entry_queues_one_sync_per_region(sim: RunningSimulator) -> None:
    assert sync_all_regions() == ["lab"]
    assert django_rq.get_queue(queues.SYNC).count == 1


def test_a_sync_already_queued_is_not_queued_twice(sim: RunningSimulator) -> None:
    assert enqueue_sync_region("lab") is not None
    assert enqueue_sync_region("lab") is None
    assert django_rq.get_queue(queues.SYNC).count == 1


def test_the_job_syncs_the_region_in_a_worker(sim: RunningSimulator) -> None:
    enqueue_sync_region("lab", SyncRun.Trigger.OPERATOR)
    _work_off()
    assert Router.objects.present().count() == len(sim.cloud.fleet.routers)
    run = SyncRun.objects.get()
    assert (run.status, run.trigger) == (SyncStatus.OK, "operator")


def test_an_api_failure_is_recorded_and_the_job_still_ends_well(sim: RunningSimulator) -> None:
    sim.fail("error530")
    job = enqueue_sync_region("lab")
    _work_off()
    job.refresh()
    assert job.get_status() == "finished"
    assert Region.objects.get(name="lab").last_sync_status == SyncStatus.FAILED


def test_a_sync_run_left_running_by_a_dead_worker_is_closed_as_failed(sim: RunningSimulator) -> None:
    region = Region.objects.create(name="lab", last_sync_status=SyncStatus.RUNNING)
    dead = SyncRun.objects.create(region=region, started=timezone.now() - timedelta(minutes=5))
    assert close_dead_sync_runs() == 1
    dead.refresh_from_db()
    region.refresh_from_db()
    assert (dead.status, region.last_sync_status) == (SyncStatus.FAILED, SyncStatus.FAILED)
    assert "worker stopped" in dead.error and dead.finished is not None


def test_a_sync_run_whose_job_is_still_queued_is_left_running(sim: RunningSimulator) -> None:
    region = Region.objects.create(name="lab")
    alive = SyncRun.objects.create(region=region, started=timezone.now() - timedelta(minutes=5))
    assert enqueue_sync_region("lab") is not None
    assert close_dead_sync_runs() == 0
    alive.refresh_from_db()
    assert alive.status == SyncStatus.RUNNING


def test_a_command_sync_is_closed_only_past_the_longest_a_sync_may_last(sim: RunningSimulator) -> None:
    region = Region.objects.create(name="lab")
    recent = SyncRun.objects.create(
        region=region, trigger=SyncRun.Trigger.COMMAND, started=timezone.now() - timedelta(minutes=5)
    )
    ancient = SyncRun.objects.create(
        region=region, trigger=SyncRun.Trigger.COMMAND, started=timezone.now() - timedelta(hours=3)
    )
    assert close_dead_sync_runs() == 1
    assert dict(SyncRun.objects.values_list("pk", "status")) == {
        recent.pk: SyncStatus.RUNNING,
        ancient.pk: SyncStatus.FAILED,
    }
