"""/healthz and /readyz: what they answer, to whom, and the admin's status page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import django_rq
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from rq import Worker

from diagnostics.models import Collection, CollectionTrigger, Sweep
from tests.vrconsole.router_factory import make_region, make_router, make_zone
from vrconsole.models import SyncRun, SyncStatus
from vrconsole.queues import QUEUE_TIMEOUTS

pytestmark = pytest.mark.django_db


@pytest.fixture
def workers() -> Any:
    """One registered RQ worker per queue, beating now (removed afterwards)."""
    registered = []
    for name in QUEUE_TIMEOUTS:
        worker = Worker(
            [django_rq.get_queue(name)], connection=django_rq.get_connection(name), name=f"health-test-{name}"
        )
        worker.register_birth()
        worker.heartbeat()
        registered.append(worker)
    yield registered
    for worker in registered:
        worker.register_death()


def test_healthz_answers_without_a_session_any_host_and_plain_http(settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["console.example"]
    response = Client().get("/healthz", HTTP_HOST="10.0.0.9:8000")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_is_degraded_without_workers_or_a_recent_sync() -> None:
    response = Client().get("/readyz")
    body = response.json()
    assert response.status_code == 200 and body["status"] == "degraded"
    assert body["database"]["ok"] and body["redis"]["ok"]
    assert body["sync"] == {"age_s": None, "ok": False}


def test_readyz_is_ok_with_live_workers_and_fresh_sync_and_sweep(workers: Any) -> None:
    router = make_router(make_zone(make_region()), name="r-4-VM")
    SyncRun.objects.create(region=router.region, status=SyncStatus.OK, finished=timezone.now())
    Sweep.objects.create(total=1, finished=timezone.now())
    body = Client().get("/readyz").json()
    assert all(queue["ok"] and queue["workers"] >= 1 for queue in body["workers"].values()), body
    assert body["sync"]["ok"] and body["sweep"]["ok"] and body["status"] == "ok"


def test_readyz_does_not_take_an_operators_collection_for_a_sweep(workers: Any) -> None:
    router = make_router(make_zone(make_region()), name="r-4-VM")
    SyncRun.objects.create(region=router.region, status=SyncStatus.OK, finished=timezone.now())
    Collection.objects.create(router=router, trigger=CollectionTrigger.OPERATOR)
    Collection.objects.create(router=router, trigger=CollectionTrigger.SCHEDULE)
    body = Client().get("/readyz").json()
    assert body["sweep"] == {"age_s": None, "in_flight": False, "overran": False, "ok": False}
    assert body["status"] == "degraded"


def test_readyz_is_degraded_while_the_last_sweep_overran_its_interval(workers: Any) -> None:
    router = make_router(make_zone(make_region()), name="r-4-VM")
    SyncRun.objects.create(region=router.region, status=SyncStatus.OK, finished=timezone.now())
    Sweep.objects.create(total=10_000, overran=True, skipped_sweeps=1)
    body = Client().get("/readyz").json()
    assert body["sweep"]["in_flight"] and body["sweep"]["overran"] and not body["sweep"]["ok"]
    assert body["status"] == "degraded"


def test_readyz_says_a_stale_sync_is_stale(workers: Any) -> None:
    router = make_router(make_zone(make_region()), name="r-4-VM")
    old = timezone.now() - timedelta(hours=2)
    SyncRun.objects.create(region=router.region, status=SyncStatus.OK, started=old, finished=old)
    body = Client().get("/readyz").json()
    assert body["sync"]["ok"] is False and body["sync"]["age_s"] >= 7200 and body["status"] == "degraded"


def test_readyz_says_nothing_a_stranger_could_use() -> None:
    text = Client().get("/readyz").content.decode()
    assert "127.0.0.1" not in text and "postgres" not in text and "redis://" not in text


def test_the_admin_status_page_shows_the_readiness_report(workers: Any) -> None:
    admin = get_user_model().objects.create_superuser("status-admin", password="status-password-1")
    client = Client()
    client.force_login(admin)
    page = client.get("/admin/status/").content.decode()
    assert "Console status" in page and "workers of queue collect" in page and "last sync" in page


def test_a_redis_that_never_answers_fails_readiness_in_seconds_not_minutes(tmp_path: Any) -> None:
    """REDIS_URL at a listener that accepts and never answers: the settings' timeouts bound the wait."""
    import os
    import socket
    import subprocess
    import sys
    import threading
    from pathlib import Path

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    port = listener.getsockname()[1]
    env = dict(os.environ, REDIS_URL=f"redis://127.0.0.1:{port}/0", REDIS_SOCKET_TIMEOUT="1", REDIS_CONNECT_TIMEOUT="1")
    code = (
        "import time, django; django.setup(); from vrconsole.health import redis_ok; "
        "t = time.monotonic(); ok = redis_ok(); print(ok, round(time.monotonic() - t, 1))"
    )
    try:
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=Path(__file__).resolve().parents[2],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        stop.set()
        for connection in held:
            connection.close()
        listener.close()
    answer, seconds = result.stdout.split()
    assert answer == "False", result.stderr
    assert float(seconds) < 5
