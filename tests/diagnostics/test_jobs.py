"""Tests of the collection jobs, the fleet sweep and their enqueue helpers, on a real Redis queue."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import django_rq
import pytest
from django.utils import timezone
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue, SimpleWorker

import diagnostics.access
from diagnostics import jobs
from diagnostics.models import Collection, CollectionStatus
from diagnostics.probes.base import Probe
from diagnostics.ssh import Endpoint, SshSession
from tests.diagnostics.conftest import make_router
from tests.diagnostics.probe_doubles import parse_conntrack, parse_load
from vrconsole.models import Host, Region, Router, Zone
from vrconsole.queues import COLLECT, COLLECT_NOW

pytestmark = pytest.mark.django_db

FAST_PROBES = [
    Probe("system", "cat /proc/loadavg", parse_load, timeout=5),
    Probe("conntrack", "printf 'count=%s max=%s\\n' 1 10", parse_conntrack, timeout=5),
]


@pytest.fixture
def fast_probes(monkeypatch: pytest.MonkeyPatch) -> list[Probe]:
    monkeypatch.setattr("diagnostics.collect.default_probes", lambda: FAST_PROBES)
    monkeypatch.setattr("diagnostics.jobs.default_probes", lambda: FAST_PROBES)
    return FAST_PROBES


@pytest.fixture
def collect_queue() -> Iterator[Any]:
    queue = django_rq.get_queue(COLLECT)
    queue.empty()
    yield queue
    queue.empty()


@pytest.fixture
def collect_now_queue() -> Iterator[Any]:
    queue = django_rq.get_queue(COLLECT_NOW)
    queue.empty()
    yield queue
    queue.empty()


@pytest.fixture
def host_logins(monkeypatch: pytest.MonkeyPatch) -> list[Endpoint]:
    """Every SSH login to a host, as the access module opens them."""
    logins: list[Endpoint] = []
    real_connect = diagnostics.access.connect

    def counting_connect(endpoint: Endpoint, *args: Any, **kwargs: Any) -> SshSession:
        if endpoint.kind == "host":
            logins.append(endpoint)
        return real_connect(endpoint, *args, **kwargs)

    monkeypatch.setattr(diagnostics.access, "connect", counting_connect)
    return logins


def run_queued_jobs(queue: Any) -> None:
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def test_it_collects_a_router_by_id(ssh_settings: object, fast_probes: list[Probe], kvm_router: Router) -> None:
    collection = Collection.objects.get(pk=jobs.collect_router(kvm_router.pk))
    assert (collection.status, collection.trigger) == (CollectionStatus.SUCCEEDED, "schedule")


def test_it_queues_an_operator_collection_as_pending_on_the_collect_now_queue(
    ssh_settings: object,
    fast_probes: list[Probe],
    kvm_router: Router,
    collect_queue: Any,
    collect_now_queue: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        collection = jobs.enqueue_collect_router(kvm_router, "operator")
    job = collect_now_queue.jobs[0]
    assert collection.status == CollectionStatus.PENDING
    assert (job.func_name, job.args) == ("diagnostics.jobs.collect_router", (kvm_router.pk, collection.pk))
    assert collection.job_id == job.id
    assert collect_queue.count == 0


def test_it_sweeps_in_one_batch_job_for_a_small_fleet(
    ssh_settings: object,
    fast_probes: list[Probe],
    region: Region,
    zone: Zone,
    kvm_host: Host,
    collect_queue: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    make_router(region, zone, kvm_host, "r-1-VM")
    make_router(region, zone, kvm_host, "r-2-VM")
    make_router(region, zone, None, "r-3-VM", hypervisor="VMware")
    make_router(region, zone, kvm_host, "r-4-VM", state="Stopped")
    with django_capture_on_commit_callbacks(execute=True):
        summary = jobs.sweep_fleet()
    functions = sorted(job.func_name for job in collect_queue.jobs)
    assert (summary["queued"], summary["batches"], summary["hosts"], summary["direct"]) == (3, 1, 1, 1)
    assert functions == ["diagnostics.jobs.collect_batch"]
    assert Collection.objects.filter(status=CollectionStatus.PENDING, sweep_id=summary["sweep"]).count() == 3


def test_it_skips_routers_that_already_have_a_collection_in_flight(
    ssh_settings: object, fast_probes: list[Probe], kvm_router: Router, collect_queue: Any
) -> None:
    Collection.objects.create(router=kvm_router, status=CollectionStatus.RUNNING)
    assert jobs.sweep_fleet()["queued"] == 0


def test_it_marks_collections_whose_job_was_lost(
    ssh_settings: object, fast_probes: list[Probe], kvm_router: Router, collect_queue: Any
) -> None:
    lost = Collection.objects.create(router=kvm_router, created=timezone.now() - timedelta(days=1))
    jobs.sweep_fleet()
    lost.refresh_from_db()
    assert (lost.status, lost.reason) == (CollectionStatus.FAILED, "job_lost")


@pytest.mark.django_db(transaction=True)
def test_it_collects_routers_behind_one_host_over_one_host_login(
    ssh_settings: object,
    fast_probes: list[Probe],
    region: Region,
    zone: Zone,
    kvm_host: Host,
    collect_queue: Any,
    host_logins: list[Endpoint],
    django_capture_on_commit_callbacks: Any,
) -> None:
    routers = [make_router(region, zone, kvm_host, f"r-{n}-VM") for n in (1, 2, 3)]
    with django_capture_on_commit_callbacks(execute=True):
        jobs.sweep_fleet()
    run_queued_jobs(collect_queue)
    statuses = set(Collection.objects.filter(router__in=routers).values_list("status", flat=True))
    assert statuses == {CollectionStatus.SUCCEEDED}
    assert len(host_logins) == 1


@pytest.mark.django_db(transaction=True)
def test_it_keeps_collecting_behind_a_host_after_one_router_fails(
    ssh_settings: object, fast_probes: list[Probe], region: Region, zone: Zone, kvm_host: Host
) -> None:
    dead = make_router(region, zone, kvm_host, "r-5-VM", link_local_ip="127.0.0.9")
    alive = make_router(region, zone, kvm_host, "r-6-VM")
    ids = [Collection.objects.create(router=r).pk for r in (dead, alive)]
    jobs.collect_batch(ids)
    outcome = dict(Collection.objects.filter(pk__in=ids).values_list("router__name", "status"))
    assert outcome == {"r-5-VM": CollectionStatus.FAILED, "r-6-VM": CollectionStatus.SUCCEEDED}


def test_it_marks_an_operator_collection_lost_when_redis_is_down(
    ssh_settings: object, fast_probes: list[Probe], kvm_router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    nowhere = Queue(COLLECT, connection=Redis(host="127.0.0.1", port=1, socket_connect_timeout=1))
    monkeypatch.setattr(jobs.django_rq, "get_queue", lambda name: nowhere)
    with pytest.raises(RedisConnectionError):
        jobs.enqueue_collect_router(kvm_router)
    assert Collection.objects.get(router=kvm_router).reason == "job_lost"
