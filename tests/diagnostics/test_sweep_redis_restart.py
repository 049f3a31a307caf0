"""Integration: Redis dies and comes back during a fleet sweep; no finished collection is lost.

A lab of its own (name `vrcr`, base block 75 (tests/lab_slots.py)), synced from the simulator, a Redis
server started on a free loopback port for this test only (the machine's Redis is never
touched), and a real `rqworker collect` process. The sweep is queued, Redis is killed as soon
as the first collection has finished and started again empty. Every collection that had
finished must be in PostgreSQL with its facts and health sample; whatever was cut off must
not stay pending or running: the worker is stopped as a deployment stops it, and the next sweep marks
rows older than any job could last as `job_lost` (their age is simulated by moving `created`
back).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from diagnostics.jobs import sweep_fleet
from diagnostics.models import Collection, CollectionReason, CollectionStatus, HealthSample
from tests.diagnostics.lab_inventory import fresh_lab, sync_lab_inventory
from tests.diagnostics.rq_support import WAIT_SECONDS, RedisServer, wait_until, work_horses
from tests.lab_slots import lab_block, lab_name
from vrconsole.queues import QUEUE_TIMEOUTS

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LAB_NAME = lab_name("vrcr")
LAB_BLOCK = lab_block(75)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def running_lab() -> Iterator[None]:
    with fresh_lab(LAB_NAME, LAB_BLOCK):
        yield


@pytest.fixture
def queue_settings(settings: Any, redis_server: RedisServer, tmp_path: Path) -> Any:
    settings.RQ_QUEUES = {name: {"URL": redis_server.url, "DEFAULT_TIMEOUT": t} for name, t in QUEUE_TIMEOUTS.items()}
    settings.SSH_KNOWN_HOSTS_FILE = str(tmp_path / "known_hosts")
    settings.SSH_OVERRIDES = {}
    return settings


@pytest.fixture
def collect_worker(queue_settings: Any, redis_server: RedisServer, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    database = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "REDIS_URL": redis_server.url,
        "SSH_KNOWN_HOSTS_FILE": queue_settings.SSH_KNOWN_HOSTS_FILE,
    }
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "rqworker", "collect"], env=env, stdout=log, stderr=log, cwd=ROOT
    )
    try:
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)
        log.close()


def test_it_loses_no_finished_collection_when_redis_restarts_mid_sweep(
    running_lab: None, redis_server: RedisServer, collect_worker: subprocess.Popen[bytes]
) -> None:
    sync_lab_inventory(LAB_NAME, f"lab-{LAB_NAME}")
    queued = sweep_fleet()
    assert queued["queued"] >= 2
    wait_until(lambda: Collection.objects.filter(status=CollectionStatus.SUCCEEDED).exists(), "a first collection")
    redis_server.kill()
    finished_before = set(Collection.objects.filter(status=CollectionStatus.SUCCEEDED).values_list("pk", flat=True))
    redis_server.start()

    # The worker is stopped the way a deployment stops it (SIGTERM: finish the job in hand),
    # so that nothing moves while the rows are checked; a work horse left behind by a worker
    # that died with Redis is waited for too.
    horses = work_horses(collect_worker.pid)
    collect_worker.terminate()
    collect_worker.wait(timeout=WAIT_SECONDS)
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in horses), "the work horse to end")
    for collection in Collection.objects.filter(status=CollectionStatus.SUCCEEDED):
        assert "interfaces" in collection.facts and "conntrack" in collection.facts, collection.pk
        assert HealthSample.objects.filter(collection=collection).exists(), collection.pk
    still_succeeded = Collection.objects.filter(pk__in=finished_before, status=CollectionStatus.SUCCEEDED)
    assert still_succeeded.count() == len(finished_before)

    cut_off = list(Collection.objects.in_flight().values_list("pk", flat=True))
    Collection.objects.filter(pk__in=cut_off).update(created=timezone.now() - timedelta(days=1))
    assert sweep_fleet()["lost"] == len(cut_off)
    assert not Collection.objects.filter(pk__in=cut_off).in_flight().exists()
    assert set(Collection.objects.filter(pk__in=cut_off).values_list("reason", flat=True)) <= {
        CollectionReason.JOB_LOST
    }
