"""Benchmark: collecting lab routers over SSH against OpenSSH running the same commands.

Sets up its own lab (name `vrcb`, block 198.19.40.0/24, 100 routers), its own PostgreSQL
database (synced from a simulator loaded with the lab's registration file) and its own
Redis server on a free loopback port, then measures in the same run:

- (a) one router: a full collection (`run_collection`, every router and host probe) of one
  KVM router through the lab host, against `ssh` through the same host (ProxyCommand
  `ssh -W`, what `-J` does, with the host key given explicitly) running the same router
  probe commands in one session; median of N runs each;
- (b) the fleet: a sweep of every lab router (`sweep_fleet`) executed by real RQ collect
  worker processes (`--workers`, each running COLLECT_CONCURRENCY router sessions at once),
  against OpenSSH with the same number of concurrent sessions (a connection per router,
  `-J` style), and against the old baseline of one OpenSSH session at a time per worker;
  wall time, routers per second, and the peak RSS of the worker processes and their work
  horses (sampled from /proc);
- (c) an operator's "Collect now" queued while that sweep runs, served by a `collect_now`
  worker: seconds from the click to its collection's end.

The lab has ONE KVM host carrying most routers, where a real fleet spreads them over many:
COLLECT_HOST_CONCURRENCY is set to COLLECT_CONCURRENCY here, and both are in the JSON.
Targets: both ratios <= 1.5. Tears everything down. Last line: one JSON object.

    python bench/collect.py [--routers 100] [--runs 5] [--workers 1] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.support import admin_sql, base_database_url, free_port, with_db  # noqa: E402

LAB_NAME = "vrcb"
LAB_BLOCK = 40  # below the test suite's lab blocks (61-252, tests/lab_slots.py)
# Processes of the old baseline (one OpenSSH session at a time each): today's figures.
BASELINE_PROCESSES = 2
TARGET_RATIO = 1.5
PROBE_SEPARATOR = "==> vrconsole-bench-probe <=="


def _start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A throwaway Redis server on a free loopback port, without persistence."""
    port = free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server, port
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise SystemExit("redis-server did not start")


def _rss_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class WorkerMemory:
    """Samples the RSS of worker processes and their forked work horses until stopped."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for pid in self.pids:
            self.peak_kb = max(self.peak_kb, _rss_kb(pid, "VmHWM"))

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            for pid in self.pids:
                for process in (pid, *_children(pid)):
                    self.peak_kb = max(self.peak_kb, _rss_kb(process, "VmRSS"))


def _openssh_argv(host_ip: str, router_ip: str, host_key: str, vr_key: str, script: str) -> list[str]:
    common = [
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=10",
    ]
    jump = shlex.join(["ssh", *common, "-i", host_key, "-W", "%h:%p", f"root@{host_ip}"])
    return ["ssh", *common, "-o", f"ProxyCommand={jump}", "-i", vr_key, "-p", "3922", f"root@{router_ip}", script]


def _openssh_direct_argv(router_ip: str, vr_key: str, script: str) -> list[str]:
    return [
        "ssh",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=10",
        "-i",
        vr_key,
        "-p",
        "3922",
        f"root@{router_ip}",
        script,
    ]


def _probe_script() -> str:
    """Every router probe command in one shell script, each in a subshell, outputs separated."""
    from diagnostics.probes import ROUTER_PROBES

    return "; ".join(f"echo '{PROBE_SEPARATOR} {probe.name}'; ( {probe.command} ) 2>&1" for probe in ROUTER_PROBES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routers", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1, help="collect worker processes of the sweep")
    parser.add_argument("--concurrency", type=int, default=16, help="COLLECT_CONCURRENCY of each worker")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("the lab needs root")

    base_url = base_database_url()
    db_name = f"vrc_bench_collect_{os.getpid()}"
    scratch = Path(tempfile.mkdtemp(prefix="vrc-bench-collect-"))
    redis_server, redis_port = _start_redis(scratch)
    admin_sql(base_url, f'CREATE DATABASE "{db_name}"')
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "vrconsole.settings",
            "PLAIN_HTTP": "true",  # served on loopback over plain HTTP
            "DATABASE_URL": with_db(base_url, db_name),
            "SECRET_KEY": secrets.token_urlsafe(40),
            "ALLOWED_HOSTS": "localhost",
            "LOG_LEVEL": "WARNING",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "SSH_KNOWN_HOSTS_FILE": str(scratch / "known_hosts"),
            "COLLECT_CONCURRENCY": str(args.concurrency),
            "COLLECT_HOST_CONCURRENCY": str(args.concurrency),
        }
    )
    import django

    django.setup()
    from devcloud import lab

    workers: list[subprocess.Popen[bytes]] = []
    lab_started = False
    try:
        if lab.status(LAB_NAME).get("status") is not None:
            lab.down(LAB_NAME)
        began = time.monotonic()
        lab_started = True
        lab.up(name=LAB_NAME, block=LAB_BLOCK, router_count=args.routers)
        print(f"lab {LAB_NAME} with {args.routers} routers up in {time.monotonic() - began:.1f} s", flush=True)
        figures = _measure(args, workers)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        if lab_started:
            lab.down(LAB_NAME)
        from django.db import connections

        connections.close_all()
        admin_sql(base_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        redis_server.terminate()
        redis_server.wait(timeout=10)
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(figures, sort_keys=True))


def _measure(args: argparse.Namespace, workers: list[subprocess.Popen[bytes]]) -> dict:
    from django.conf import settings
    from django.core.management import call_command

    from devcloud.lab import registration_path
    from devcloud.simulator.server import start_simulator
    from diagnostics.access import plan_access
    from diagnostics.collect import run_collection
    from diagnostics.jobs import enqueue_collect_router, sweep_fleet
    from diagnostics.models import Collection, CollectionStatus, CollectionTrigger
    from vrconsole.cloudstack.regions import RegionConfig
    from vrconsole.models import Router
    from vrconsole.sync import sync_region

    call_command("migrate", "--noinput", verbosity=0)
    simulator = start_simulator(routers=0, lab_file=registration_path(LAB_NAME), prewarm=False)
    try:
        result = sync_region(RegionConfig("bench", simulator.url, simulator.api_key, simulator.secret_key, timeout=60))
    finally:
        simulator.stop()
    if result.status != "ok":
        raise SystemExit(f"the sync failed: {result.error}")
    routers = list(Router.objects.select_related("host").order_by("pk"))
    kvm = next(r for r in routers if plan_access(r).host is not None)
    host_key, vr_key = settings.HOST_SSH_KEY_FILE, settings.VR_SSH_KEY_FILE
    script = _probe_script()

    def openssh_session(router: Router) -> float:
        plan = plan_access(router)
        if plan.host is not None:
            argv = _openssh_argv(plan.host.address, plan.router.address, host_key, vr_key, script)
        else:
            argv = _openssh_direct_argv(router.link_local_ip, vr_key, script)
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, timeout=120, check=False)
        elapsed = time.perf_counter() - started
        if done.returncode not in (0, 1) or done.stdout.count(PROBE_SEPARATOR.encode()) < 10:
            raise SystemExit(f"the OpenSSH baseline failed on {router.name}: {done.stderr.decode()[:300]}")
        return elapsed

    def console_collection(router: Router) -> float:
        started = time.perf_counter()
        collection = run_collection(Collection.objects.create(router=router), publish=lambda *_: None)
        elapsed = time.perf_counter() - started
        if collection.status != CollectionStatus.SUCCEEDED:
            raise SystemExit(f"the collection of {router.name} failed: {collection.error}")
        return elapsed

    # (a) one router, both sides warmed once (host key pinned, imports settled).
    console_collection(kvm)
    openssh_session(kvm)
    console_times, openssh_times = [], []
    for _ in range(args.runs):
        console_times.append(console_collection(kvm))
        openssh_times.append(openssh_session(kvm))
    console_one, openssh_one = statistics.median(console_times), statistics.median(openssh_times)
    probe_errors = Collection.objects.filter(router=kvm).order_by("-pk").values_list("probe_errors", flat=True)[0]
    print(
        f"(a) one router: console {console_one:.3f} s (median of {args.runs}, {probe_errors} probe errors), "
        f"OpenSSH one session {openssh_one:.3f} s -> ratio {console_one / openssh_one:.2f} "
        f"(target <= {TARGET_RATIO})",
        flush=True,
    )

    # (b) the fleet: real RQ collect workers, plus a collect_now worker for (c).
    worker_log = open(os.devnull, "wb")  # noqa: SIM115 - the workers' output is not needed
    for queue in ["collect"] * args.workers + ["collect_now"]:
        workers.append(
            subprocess.Popen(
                [sys.executable, str(ROOT / "manage.py"), "rqworker", queue],
                stdout=worker_log,
                stderr=subprocess.STDOUT,
                env=os.environ.copy(),
            )
        )
    time.sleep(4)  # the workers import Django and register before the sweep is queued
    Collection.objects.all().delete()
    sweep_concurrency = args.workers * args.concurrency
    operator_router = routers[len(routers) // 2]
    with WorkerMemory([w.pid for w in workers[: args.workers]]) as memory:
        started = time.perf_counter()
        queued = sweep_fleet()
        # (c) "Collect now" one second into the sweep, on its own queue.
        time.sleep(1.0)
        clicked = time.perf_counter()
        operator = enqueue_collect_router(operator_router, CollectionTrigger.OPERATOR)
        operator_s: float | None = None
        deadline = time.monotonic() + 1800
        while Collection.objects.in_flight().exists():
            if operator_s is None and Collection.objects.filter(pk=operator.pk).in_flight().count() == 0:
                operator_s = time.perf_counter() - clicked
            if time.monotonic() > deadline:
                raise SystemExit("the sweep did not finish within 30 minutes")
            time.sleep(0.05)
        console_sweep = time.perf_counter() - started
        if operator_s is None:
            operator_s = time.perf_counter() - clicked
    swept = Collection.objects.filter(sweep_id=queued["sweep"])
    succeeded = swept.filter(status=CollectionStatus.SUCCEEDED).count()
    operator.refresh_from_db()
    sweep_done_at = swept.order_by("-finished").values_list("finished", flat=True).first()
    operator_before_sweep = bool(operator.finished and sweep_done_at and operator.finished < sweep_done_at)
    print(
        f"(b) sweep of {len(routers)} routers, {args.workers} worker(s) x {args.concurrency} sessions: console "
        f"{console_sweep:.2f} s ({len(routers) / console_sweep:.2f} routers/s, {succeeded} succeeded, "
        f"{queued['batches']} batches); peak worker RSS {memory.peak_kb / 1024:.1f} MiB",
        flush=True,
    )
    print(
        f"(c) Collect now during the sweep: {operator_s:.2f} s ({operator.status}), "
        f"{'before' if operator_before_sweep else 'NOT before'} the sweep's end",
        flush=True,
    )
    with ThreadPoolExecutor(max_workers=sweep_concurrency) as pool:
        started = time.perf_counter()
        list(pool.map(openssh_session, routers))
        openssh_parallel = time.perf_counter() - started
    print(
        f"    OpenSSH x{sweep_concurrency} concurrent: {openssh_parallel:.2f} s "
        f"({len(routers) / openssh_parallel:.2f} routers/s) -> ratio {console_sweep / openssh_parallel:.2f} "
        f"(target <= {TARGET_RATIO})",
        flush=True,
    )
    with ThreadPoolExecutor(max_workers=BASELINE_PROCESSES) as pool:
        started = time.perf_counter()
        list(pool.map(openssh_session, routers))
        openssh_sweep = time.perf_counter() - started
    print(
        f"    old baseline, OpenSSH x{BASELINE_PROCESSES} one at a time: {openssh_sweep:.2f} s "
        f"({len(routers) / openssh_sweep:.2f} routers/s)",
        flush=True,
    )
    per_worker_rate = len(routers) / console_sweep / args.workers
    return {
        "routers": len(routers),
        "runs": args.runs,
        "one_router_console_median_s": round(console_one, 3),
        "one_router_openssh_median_s": round(openssh_one, 3),
        "one_router_ratio": round(console_one / openssh_one, 3),
        "one_router_probe_errors": probe_errors,
        "sweep_workers": args.workers,
        "sweep_concurrency": sweep_concurrency,
        "sweep_host_concurrency": args.concurrency,
        "sweep_console_s": round(console_sweep, 3),
        "sweep_openssh_s": round(openssh_sweep, 3),
        "sweep_openssh_processes": BASELINE_PROCESSES,
        "sweep_ratio": round(console_sweep / openssh_sweep, 3),
        "sweep_succeeded": succeeded,
        "sweep_batches": queued["batches"],
        "console_routers_per_s": round(len(routers) / console_sweep, 2),
        "openssh_routers_per_s": round(len(routers) / openssh_sweep, 2),
        "sweep_routers_per_s": round(len(routers) / console_sweep, 2),
        "openssh_parallel_s": round(openssh_parallel, 3),
        "openssh_parallel_routers_per_s": round(len(routers) / openssh_parallel, 2),
        "sweep_vs_openssh_parallel_ratio": round(console_sweep / openssh_parallel, 3),
        "operator_collect_during_sweep_s": round(operator_s, 3),
        "operator_collect_status": operator.status,
        "operator_collect_before_sweep_end": operator_before_sweep,
        "per_worker_routers_per_s": round(per_worker_rate, 2),
        "projected_10k_sweep_s_per_worker": round(10_000 / per_worker_rate, 1),
        "peak_worker_rss_mib": round(memory.peak_kb / 1024, 1),
        "target_ratio": TARGET_RATIO,
    }


if __name__ == "__main__":
    main()
