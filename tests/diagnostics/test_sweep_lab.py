"""Integration: the concurrent sweep on lab routers with real RQ workers, "Collect now", a killed worker.

A lab of its own (name `vrsw`, block 198.19.64.0/24), synced from the simulator, a Redis
server of this module only on a free loopback port, and real `rqworker` processes: one on
the collect queue running COLLECT_CONCURRENCY=6 router sessions, one on collect_now. What is
asserted is observed, not assumed: collections' start and end times overlap, the ones of one
router never do, an operator's collection ends before the sweep it was queued during, and a
worker killed (SIGKILL, work horse and all) mid-sweep leaves no row in flight once RQ's
heartbeat has expired (its clock is moved past the expiry instead of waiting 90 s) and the
next sweep covers the routers again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from diagnostics.jobs import enqueue_collect_router, sweep_fleet
from diagnostics.models import Collection, CollectionReason, CollectionStatus, CollectionTrigger, Sweep
from diagnostics.sweep import mark_lost_collections
from tests.diagnostics.lab_inventory import fresh_lab, sync_lab_inventory
from tests.diagnostics.rq_support import RedisServer, wait_until, work_horses
from tests.lab_slots import lab_block, lab_name
from vrconsole.models import Router
from vrconsole.queues import QUEUE_TIMEOUTS

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LAB_NAME = lab_name("vrsw")
LAB_BLOCK = lab_block(64)
ROUTERS = 12
CONCURRENCY = 6
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def running_lab() -> Iterator[None]:
    with fresh_lab(LAB_NAME, LAB_BLOCK, router_count=ROUTERS):
        yield


class Workers:
    """Real `rqworker` processes of this test, each in a process group of its own."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, queue: str) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"worker-{queue}-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "rqworker", queue],
            env=self.env,
            stdout=log,
            stderr=log,
            cwd=ROOT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker and its work horse at once, as an OOM kill or a lost machine does.

        RQ's work horse puts itself in a process group of its own (os.setpgrp), so killing the
        worker's group would leave it running: the horse is killed too.
        """
        family = work_horses(process.pid)
        os.killpg(process.pid, signal.SIGKILL)
        for pid in family:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # already gone with the group
        process.wait(timeout=30)
        for pid in family:
            deadline = time.monotonic() + 30
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@pytest.fixture
def workers(settings: Any, redis_server: RedisServer, tmp_path: Path) -> Iterator[Workers]:
    settings.RQ_QUEUES = {name: {"URL": redis_server.url, "DEFAULT_TIMEOUT": t} for name, t in QUEUE_TIMEOUTS.items()}
    settings.SSH_KNOWN_HOSTS_FILE = str(tmp_path / "known_hosts")
    settings.SSH_OVERRIDES = {}
    settings.COLLECT_CONCURRENCY = CONCURRENCY
    settings.COLLECT_HOST_CONCURRENCY = CONCURRENCY
    database = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "REDIS_URL": redis_server.url,
        "SSH_KNOWN_HOSTS_FILE": settings.SSH_KNOWN_HOSTS_FILE,
        "COLLECT_CONCURRENCY": str(CONCURRENCY),
        "COLLECT_HOST_CONCURRENCY": str(CONCURRENCY),
    }
    pool = Workers(env, tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()


def spans(collections: Any) -> list[tuple[datetime, datetime]]:
    return [(c.started, c.finished) for c in collections if c.started and c.finished]


def most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    best = current = 0
    for _, step in events:
        current += step
        best = max(best, current)
    return best


def sweep_done(sweep_id: int) -> bool:
    return not Collection.objects.filter(sweep_id=sweep_id).in_flight().exists()


def test_a_sweep_runs_sessions_concurrently_and_collect_now_ends_first(running_lab: None, workers: Workers) -> None:
    sync_lab_inventory(LAB_NAME, f"lab-{LAB_NAME}")
    workers.start("collect")
    workers.start("collect_now")
    summary = sweep_fleet()
    assert summary["queued"] == Router.objects.filter(state="Running").count() >= ROUTERS - 2
    wait_until(lambda: Collection.objects.filter(sweep_id=summary["sweep"], status="running").exists(), "the sweep")
    target = Router.objects.filter(state="Running").order_by("-pk").first()
    assert target is not None
    operator = enqueue_collect_router(target, CollectionTrigger.OPERATOR)
    wait_until(lambda: sweep_done(summary["sweep"]) and not Collection.objects.in_flight().exists(), "the sweep end")

    swept = list(Collection.objects.filter(sweep_id=summary["sweep"]))
    assert {c.status for c in swept} == {CollectionStatus.SUCCEEDED}
    assert most_at_once(spans(swept)) >= 3
    operator.refresh_from_db()
    assert operator.status == CollectionStatus.SUCCEEDED
    assert operator.finished is not None and operator.finished < max(c.finished for c in swept if c.finished)
    for router_id in {c.router_id for c in swept}:
        assert most_at_once(spans(Collection.objects.filter(router_id=router_id))) == 1, router_id
    # The batch closes its sweep once its last collection is stored.
    wait_until(lambda: Sweep.objects.get(pk=summary["sweep"]).finished is not None, "the sweep to be closed")


def test_a_worker_killed_mid_sweep_leaves_nothing_running_and_the_next_sweep_covers_it(
    running_lab: None, workers: Workers
) -> None:
    sync_lab_inventory(LAB_NAME, f"lab-{LAB_NAME}")
    worker = workers.start("collect")
    first = sweep_fleet()
    wait_until(lambda: Collection.objects.filter(sweep_id=first["sweep"], status="running").exists(), "a collection")
    workers.kill(worker)
    cut_off = set(Collection.objects.in_flight().values_list("router_id", flat=True))
    assert cut_off

    # RQ's heartbeat of the dead worker's job expires within 90 s; its clean-up is run as of then.
    assert mark_lost_collections(registry_time=time.time() + 120) >= len(cut_off)
    assert not Collection.objects.in_flight().exists()
    reasons = set(Collection.objects.filter(status=CollectionStatus.FAILED).values_list("reason", "error"))
    assert {reason for reason, _ in reasons} == {CollectionReason.JOB_LOST}
    assert all("worker killed" in error for _, error in reasons)

    workers.start("collect")
    second = sweep_fleet()
    assert second["skipped"] == 0 and second["sweep"] != first["sweep"]
    wait_until(lambda: sweep_done(second["sweep"]), "the next sweep")
    covered = Collection.objects.filter(sweep_id=second["sweep"], status=CollectionStatus.SUCCEEDED)
    assert cut_off <= set(covered.values_list("router_id", flat=True))
    assert Sweep.objects.get(pk=first["sweep"]).finished is not None
