"""Tests of the concurrent sweep: batches over real sshd, RQ job state, sweep records and progress."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import django_rq
import pytest
from django.utils import timezone
from rq import SimpleWorker
from rq.job import JobStatus

import diagnostics.access
from diagnostics import jobs
from diagnostics.models import Collection, CollectionReason, CollectionStatus, ProbeResult, Sweep
from diagnostics.probes.base import ParseError, Probe
from diagnostics.ssh import Endpoint, SshSession
from diagnostics.sweep import batch_waves, latest_sweep_progress, mark_lost_collections, run_batch
from tests.diagnostics.conftest import make_router
from vrconsole.models import Host, Region, Router, Zone
from vrconsole.queues import COLLECT

pytestmark = pytest.mark.django_db(transaction=True)


def parse_stamps(text: str) -> dict[str, float]:
    fields = text.split()
    if len(fields) != 2:
        raise ParseError("expected two timestamps")
    return {"start": float(fields[0]), "end": float(fields[1])}


def stamp_probe(seconds: float) -> Probe:
    return Probe("stamps", f"date +%s.%N; sleep {seconds}; date +%s.%N", parse_stamps, timeout=10)


@pytest.fixture
def slow_probes(monkeypatch: pytest.MonkeyPatch) -> list[Probe]:
    probes = [stamp_probe(0.6)]
    monkeypatch.setattr("diagnostics.collect.default_probes", lambda: probes)
    monkeypatch.setattr("diagnostics.jobs.default_probes", lambda: probes)
    return probes


@pytest.fixture
def host_logins(monkeypatch: pytest.MonkeyPatch) -> list[Endpoint]:
    logins: list[Endpoint] = []
    real_connect = diagnostics.access.connect
    lock = threading.Lock()

    def counting_connect(endpoint: Endpoint, *args: Any, **kwargs: Any) -> SshSession:
        if endpoint.kind == "host":
            with lock:
                logins.append(endpoint)
        return real_connect(endpoint, *args, **kwargs)

    monkeypatch.setattr(diagnostics.access, "connect", counting_connect)
    return logins


@pytest.fixture
def collect_queue() -> Iterator[Any]:
    queue = django_rq.get_queue(COLLECT)
    queue.empty()
    yield queue
    queue.empty()


def intervals(collection_ids: list[int]) -> list[tuple[float, float]]:
    """The (start, end) the router itself printed around its sleep, per collection."""
    spans = []
    for result in ProbeResult.objects.filter(collection_id__in=collection_ids, name="stamps", ok=True):
        start, end = result.stdout.split()
        spans.append((float(start), float(end)))
    return spans


def most_at_once(spans: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    best = current = 0
    for _, step in events:
        current += step
        best = max(best, current)
    return best


def pending(routers: list[Router]) -> list[int]:
    return [Collection.objects.create(router=router).pk for router in routers]


def test_a_batch_runs_router_sessions_concurrently_over_one_host_login(
    ssh_settings: Any,
    slow_probes: list[Probe],
    region: Region,
    zone: Zone,
    kvm_host: Host,
    host_logins: list[Endpoint],
) -> None:
    ssh_settings.COLLECT_CONCURRENCY = 6
    ssh_settings.COLLECT_HOST_CONCURRENCY = 6
    ids = pending([make_router(region, zone, kvm_host, f"r-{n}-VM") for n in range(1, 7)])
    jobs.collect_batch(ids)
    assert set(Collection.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"succeeded"}
    spans = intervals(ids)
    assert len(spans) == 6
    assert most_at_once(spans) >= 4
    assert len(host_logins) == 1


def test_the_per_host_cap_bounds_sessions_through_one_host(
    ssh_settings: Any, slow_probes: list[Probe], region: Region, zone: Zone, kvm_host: Host
) -> None:
    ssh_settings.COLLECT_CONCURRENCY = 6
    ssh_settings.COLLECT_HOST_CONCURRENCY = 2
    ids = pending([make_router(region, zone, kvm_host, f"r-{n}-VM") for n in range(1, 7)])
    jobs.collect_batch(ids)
    assert most_at_once(intervals(ids)) == 2


def test_it_never_runs_two_collections_of_one_router_at_once(
    ssh_settings: Any, slow_probes: list[Probe], kvm_router: Router
) -> None:
    ssh_settings.COLLECT_CONCURRENCY = 3
    ids = pending([kvm_router, kvm_router, kvm_router])
    jobs.collect_batch(ids)
    spans = intervals(ids)
    assert len(spans) == 3
    assert most_at_once(spans) == 1


def test_a_job_timeout_ends_the_batch_and_closes_what_it_did_not_finish(
    ssh_settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    region: Region,
    zone: Zone,
    kvm_host: Host,
    collect_queue: Any,
) -> None:
    probes = [stamp_probe(1.5)]
    monkeypatch.setattr("diagnostics.collect.default_probes", lambda: probes)
    ssh_settings.COLLECT_CONCURRENCY = 1
    ids = pending([make_router(region, zone, kvm_host, f"r-{n}-VM") for n in range(1, 6)])
    job = collect_queue.enqueue(jobs.collect_batch, ids, job_timeout=3)
    SimpleWorker([collect_queue], connection=collect_queue.connection).work(burst=True)
    # A work horse would exit here; in this process the collection in hand runs to its end (its
    # SSH session may first wait out its step deadline once the batch closed the host login).
    # It must end before the test does: a thread still writing would deadlock the teardown's flush.
    leftovers = [thread for thread in threading.enumerate() if thread.name.startswith("collect-")]
    for thread in leftovers:
        thread.join(60)
    assert not [thread.name for thread in leftovers if thread.is_alive()]
    assert job.get_status(refresh=True) == JobStatus.FAILED
    rows = Collection.objects.filter(pk__in=ids)
    assert not rows.in_flight().exists()
    assert rows.filter(status=CollectionStatus.SUCCEEDED).count() >= 1
    cut = rows.filter(status=CollectionStatus.FAILED)
    assert cut.count() >= 2
    assert set(cut.values_list("reason", flat=True)) == {CollectionReason.BATCH_TIMEOUT}


def test_run_batch_keeps_going_after_one_collection_raises() -> None:
    seen: list[int] = []

    def collect(collection_id: int) -> None:
        if collection_id == 2:
            raise RuntimeError("a bug in one router's collection")
        seen.append(collection_id)

    report = run_batch([(1, None), (2, None), (3, "h")], collect, concurrency=2, per_host=1)
    assert sorted(seen) == [1, 3]
    assert sorted(report.done) == [1, 2, 3]


def test_batch_waves_counts_the_longest_queue() -> None:
    assert batch_waves(["a"] * 10 + [None] * 2, concurrency=16, per_host=4) == 3
    assert batch_waves([None] * 40, concurrency=16, per_host=4) == 3
    assert batch_waves([], concurrency=16, per_host=4) == 0


def old(collection: Collection) -> Collection:
    Collection.objects.filter(pk=collection.pk).update(created=timezone.now() - timedelta(minutes=5))
    return collection


def test_a_row_whose_job_failed_in_rq_is_lost_and_one_still_queued_is_not(
    kvm_router: Router, collect_queue: Any
) -> None:
    queued = collect_queue.enqueue(jobs.collect_router, kvm_router.pk, job_id="collect-still-queued")
    failed = collect_queue.enqueue(jobs.collect_router, kvm_router.pk, job_id="collect-failed")
    collect_queue.remove(failed)
    failed.set_status(JobStatus.FAILED)
    waiting = old(Collection.objects.create(router=kvm_router, job_id=queued.id))
    dead = old(Collection.objects.create(router=kvm_router, job_id=failed.id, status=CollectionStatus.RUNNING))
    gone = old(Collection.objects.create(router=kvm_router, job_id="collect-never-in-redis"))
    assert mark_lost_collections() == 2
    statuses = dict(Collection.objects.values_list("pk", "status"))
    assert statuses == {waiting.pk: "pending", dead.pk: "failed", gone.pk: "failed"}
    assert Collection.objects.get(pk=dead.pk).reason == CollectionReason.JOB_LOST


def test_a_fresh_row_is_given_time_to_reach_redis(kvm_router: Router) -> None:
    Collection.objects.create(router=kvm_router, job_id="collect-being-enqueued")
    assert mark_lost_collections() == 0


def test_a_new_sweep_is_skipped_while_one_is_in_flight_and_that_one_overran(
    ssh_settings: Any, slow_probes: list[Probe], kvm_router: Router, collect_queue: Any
) -> None:
    first = jobs.sweep_fleet()
    assert first["queued"] == 1
    second = jobs.sweep_fleet()
    assert (second["skipped"], second["sweep"]) == (1, first["sweep"])
    sweep = Sweep.objects.get(pk=first["sweep"])
    assert (sweep.overran, sweep.skipped_sweeps, Sweep.objects.count()) == (True, 1, 1)


def test_a_sweep_ends_when_its_batches_are_done_and_its_progress_says_so(
    ssh_settings: Any, slow_probes: list[Probe], region: Region, zone: Zone, kvm_host: Host, collect_queue: Any
) -> None:
    make_router(region, zone, kvm_host, "r-1-VM")
    make_router(region, zone, kvm_host, "r-2-VM", link_local_ip="127.0.0.9")
    jobs.sweep_fleet()
    progress = latest_sweep_progress()
    assert progress is not None and progress.running and (progress.done, progress.total) == (0, 2)
    SimpleWorker([collect_queue], connection=collect_queue.connection).work(burst=True)
    progress = latest_sweep_progress()
    assert progress is not None
    assert (progress.running, progress.done, progress.failed, progress.eta_s) == (False, 2, 1, 0.0)


def test_a_router_whose_collection_was_lost_is_covered_by_the_next_sweep(
    ssh_settings: Any, slow_probes: list[Probe], kvm_router: Router, collect_queue: Any
) -> None:
    stuck = old(Collection.objects.create(router=kvm_router, job_id="collect-killed", status="running"))
    summary = jobs.sweep_fleet()
    assert (summary["lost"], summary["queued"]) == (1, 1)
    assert Collection.objects.get(pk=stuck.pk).status == CollectionStatus.FAILED


def test_progress_says_a_sweep_will_not_finish_within_its_interval(kvm_router: Router) -> None:
    now = timezone.now()
    sweep = Sweep.objects.create(started=now - timedelta(seconds=200), total=4, interval_s=300)
    Collection.objects.create(router=kvm_router, sweep=sweep, status=CollectionStatus.SUCCEEDED)
    for _ in range(3):
        Collection.objects.create(router=kvm_router, sweep=sweep)
    progress = latest_sweep_progress(now)
    assert progress is not None
    assert (progress.done, progress.total, progress.percent) == (1, 4, 25)
    assert progress.eta_s == pytest.approx(600)
    assert progress.late


def test_routers_behind_a_dead_host_fail_together_after_one_login_attempt(
    ssh_settings: Any, slow_probes: list[Probe], region: Region, zone: Zone, host_logins: list[Endpoint]
) -> None:
    dead_host = Host.objects.create(
        region=region, zone=zone, uuid="host-dead", name="kvm-dead", ipaddress="127.0.0.9", hypervisor="KVM"
    )
    ids = pending([make_router(region, zone, dead_host, f"r-{n}-VM") for n in range(1, 5)])
    jobs.collect_batch(ids)
    rows = Collection.objects.filter(pk__in=ids)
    assert set(rows.values_list("status", "reason")) == {(CollectionStatus.FAILED, "host_unreachable")}
    assert len(host_logins) == 1
