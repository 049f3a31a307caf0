"""The jobs of the error triage: reading CloudStack's record once per failing state, and losing nothing."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import django_rq
import pytest
from django.utils import timezone
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue

from devcloud.simulator.server import RunningSimulator
from diagnostics.action_jobs import enqueue_action, gather_failure_evidence_job, triage_failing_routers
from diagnostics.actions import release_stale_runs, request_action
from diagnostics.models import ActionRun, ActionStatus, EvidenceStatus, FailureEvidence, Finding
from tests.diagnostics.actions.support import operator, pick
from vrconsole.models import Region, Router
from vrconsole.queues import ACTIONS
from vrconsole.sync import sync_router

pytestmark = pytest.mark.django_db


@pytest.fixture
def actions_queue() -> Iterator[Queue]:
    queue = django_rq.get_queue(ACTIONS)
    queue.empty()
    yield queue
    queue.empty()


def test_each_failing_router_gets_one_read_per_state(
    sim: RunningSimulator, synced: Region, actions_queue: Queue, django_capture_on_commit_callbacks: Any
) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False, vpc=False)
    sim.break_router(router.uuid)
    sync_router(router)
    with django_capture_on_commit_callbacks(execute=True):
        first = triage_failing_routers()
        second = triage_failing_routers()
    queued_for = set(FailureEvidence.objects.values_list("router__name", flat=True))
    assert router.name in queued_for
    assert first["queued"] == len(queued_for) and second["queued"] == 0
    assert {job.func_name for job in actions_queue.get_jobs()} == {
        "diagnostics.action_jobs.gather_failure_evidence_job"
    }


def test_the_read_judges_the_router_again_with_cloudstacks_text(sim: RunningSimulator, synced: Region) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False, vpc=False)
    sim.break_router(router.uuid)
    sync_router(router)
    evidence = FailureEvidence.objects.create(router=Router.objects.get(pk=router.pk))
    assert gather_failure_evidence_job(evidence.pk) == EvidenceStatus.COMPLETE
    finding = Finding.objects.get(router=router, rule="router-in-error-state")
    assert "Unable to create a deployment" in finding.title and finding.action == "restart-network-cleanup"


def test_a_run_lost_with_its_worker_frees_its_network(sim: RunningSimulator, synced: Region) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False, vpc=False)
    run = request_action(router, "reboot", reason="INC-1", user=operator())
    ActionRun.objects.filter(pk=run.pk).update(created=timezone.now() - timedelta(days=1))
    assert release_stale_runs() == 1
    run.refresh_from_db()
    assert run.status == ActionStatus.FAILED and "lost this action" in run.error


def test_a_queue_that_is_away_fails_the_run_instead_of_holding_the_network(
    sim: RunningSimulator, synced: Region, monkeypatch: pytest.MonkeyPatch
) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False, vpc=False)
    run = request_action(router, "reboot", reason="INC-2", user=operator())

    # A real Redis client pointed at a port nothing listens on: what a Redis restart looks like to the web tier.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    away = Queue(ACTIONS, connection=Redis(port=port, socket_connect_timeout=1))
    monkeypatch.setattr("diagnostics.action_jobs.django_rq.get_queue", lambda name: away)
    with pytest.raises(RedisConnectionError):
        enqueue_action(run)
    run.refresh_from_db()
    assert run.status == ActionStatus.FAILED and run.error.startswith("could not queue the action:")
    # Its network is free again.
    assert request_action(router, "reboot", reason="INC-3", user=operator()).status == ActionStatus.PENDING
