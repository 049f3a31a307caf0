"""Benchmark: the inventory sync of 10,000 routers against the bare fetch of the same pages.

Sets up its own PostgreSQL database and a CloudStack simulator (a separate process, so the
two sides do not share an interpreter), then measures in the same run:

- fetch: the bare `cs` fetch of exactly the pages a sync reads (zones, hosts, VPCs,
  networks, routers; accounts and projects; health-check results; system templates), every
  item parsed: the baseline of the targets;
- raw fetch: the same pages read as the sync reads them (items split out of each page and
  fingerprinted, not built: CloudStackClient.inventory_pages(raw=True)), reported beside it
  so that what the sync adds to its own way of reading shows too;
- sync: `sync_region` into PostgreSQL: the first (initial) sync of an empty database, then
  N re-syncs; before each measured read (either fetch) and each measured sync about 1% of
  the routers change state (the steady state of a real fleet), so a re-sync finds those of
  the three rounds since the last one changed (about 2% of the routers, reported as
  `resync_routers_updated_median`), and the medians are compared;
- CPU: what a bare fetch and the first sync cost each process, in CPU seconds: this one (the
  client, all its threads), the simulators and the database backends (read from /proc, so
  unknown when PostgreSQL runs elsewhere). Their sum spread over the machine's cores is the
  least time any overlap of the sides could reach (`initial_sync_cpu_floor_ratio`), and the
  database's share is spent by one backend per region (each region's sync is one
  transaction), on as many cores as there are regions at most
  (`initial_sync_database_cpu_vs_fetch_ratio`): two floors under the initial sync's ratio
  on this machine;
- list: the fleet dashboard's router list page for 10,000 routers, rendered by Django's
  test client with a logged-in user, median of N requests (and the same with a search).

With `--regions N` the routers are split over N regions, each its own simulator process:
the fetches of all regions run in parallel (a thread per region), and so do their syncs,
as the sync workers run one job per region.

Targets: sync median <= 1.15 x fetch median, initial sync <= 2 x; list page and search
< 150 ms median (also with the summary band recomputed on every request). Tears everything
down. Last line: one JSON object of the figures.

    python bench/sync.py [--routers 10000] [--regions 1] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.support import admin_sql, base_database_url, free_port, with_db  # noqa: E402


def _wait_ready(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers (431 without parameters): it is up
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the simulator did not answer on {url}")


def _control(sim_base: str, token: str, order: dict) -> dict:
    request = urllib.request.Request(
        f"{sim_base}/sim/control",
        data=json.dumps(order).encode(),
        headers={"X-Sim-Control-Token": token, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--page-requests", type=int, default=30)
    parser.add_argument("--regions", type=int, default=1, help="regions (simulators) the routers are split over")
    args = parser.parse_args()
    if not 1 <= args.regions <= 20 or args.routers < args.regions:
        raise SystemExit("--regions must be 1-20 and at most --routers")

    base_url = base_database_url()
    db_name = f"vrc_bench_{os.getpid()}"
    admin_sql(base_url, f'CREATE DATABASE "{db_name}"')
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "vrconsole.settings",
            "PLAIN_HTTP": "true",  # served on loopback over plain HTTP
            "DATABASE_URL": with_db(base_url, db_name),
            "SECRET_KEY": secrets.token_urlsafe(40),
            "ALLOWED_HOSTS": "testserver,localhost",
            "LOG_LEVEL": "WARNING",
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"),
        }
    )
    token = secrets.token_urlsafe(16)
    sim_log = open(os.devnull, "wb")  # noqa: SIM115 - the children's output is not needed
    sims: list[tuple[subprocess.Popen[bytes], str]] = []
    per_region = _split(args.routers, args.regions)
    try:
        for count in per_region:
            port = free_port()
            process = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "manage.py"),
                    "cloudstack_sim",
                    "--port",
                    str(port),
                    "--routers",
                    str(count),
                    "--control-token",
                    token,
                ],
                stdout=sim_log,
                stderr=subprocess.STDOUT,
                env=dict(os.environ),
            )
            sims.append((process, f"http://127.0.0.1:{port}"))
        for _, sim_base in sims:
            _wait_ready(f"{sim_base}/client/api")
        figures = _measure(args, [sim_base for _, sim_base in sims], token, [process.pid for process, _ in sims])
    finally:
        for process, _ in sims:
            process.terminate()
        for process, _ in sims:
            process.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        admin_sql(base_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    print(json.dumps(figures, sort_keys=True))


def _split(total: int, parts: int) -> list[int]:
    """`total` routers over `parts` regions, as evenly as whole routers allow."""
    return [total // parts + (1 if n < total % parts else 0) for n in range(parts)]


def _cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) a process of this machine has used; None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(args: argparse.Namespace, sim_bases: list[str], token: str, sim_pids: list[int]) -> dict:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection, connections
    from django.test import Client

    from devcloud.simulator.server import DEMO_API_KEY, DEMO_SECRET_KEY
    from vrconsole.cloudstack.client import CloudStackClient, collector_paused
    from vrconsole.cloudstack.regions import RegionConfig
    from vrconsole.models import Router
    from vrconsole.sync import sync_region

    call_command("migrate", "--noinput", verbosity=0)
    names = ["bench"] if len(sim_bases) == 1 else [f"bench-{n + 1}" for n in range(len(sim_bases))]
    regions = [
        RegionConfig(name, f"{base}/client/api", DEMO_API_KEY, DEMO_SECRET_KEY, timeout=300)
        for name, base in zip(names, sim_bases, strict=True)
    ]
    pool = ThreadPoolExecutor(max_workers=len(regions))

    def fetch_one(region: RegionConfig) -> int:
        # Held as the sync holds its read (the collector paused until it is dropped): the two
        # sides differ only by what the sync does with the pages.
        with collector_paused():
            return len(CloudStackClient(region).fetch_inventory().routers)

    backend_cpu: list[float | None] = []  # CPU of each region's database backend in the first sync

    def sync_one(region: RegionConfig, account: bool) -> Any:
        """One region's sync; with `account`, its database backend's CPU goes to backend_cpu."""
        try:
            if not account:
                return sync_region(region)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                (backend,) = cursor.fetchone()
            before = _cpu_s(backend)  # None when PostgreSQL is not a process of this machine
            result = sync_region(region)
            after = _cpu_s(backend)
            backend_cpu.append(after - before if before is not None and after is not None else None)
            return result
        finally:
            connections.close_all()  # this thread's connection: the pool's threads outlive the call

    def sims_cpu() -> float | None:
        used = [_cpu_s(pid) for pid in sim_pids]
        return sum(value for value in used if value is not None) if None not in used else None

    def raw_fetch_one(region: RegionConfig) -> int:
        with collector_paused():
            pages = list(CloudStackClient(region).inventory_pages(raw=True))
            return sum(len(items) for kind, items in pages if kind == "routers")

    def bare_fetch() -> int:
        """Every region's pages, the regions in parallel."""
        return sum(pool.map(fetch_one, regions))

    def raw_fetch() -> int:
        """Every region's pages as the sync reads them, the regions in parallel."""
        return sum(pool.map(raw_fetch_one, regions))

    def sync_all(account: bool = False) -> list[Any]:
        """Every region's sync, the regions in parallel (one job per region, as the workers run them)."""
        return list(pool.map(sync_one, regions, [account] * len(regions)))

    listed = bare_fetch()  # warms both sides (imports, connections)
    # Where a fetch's and a first sync's time goes, as CPU seconds of each process: this
    # process (the client, every thread), the simulators, and (for the sync) the database
    # backends. Their sum over the machine's cores is the least wall time any overlap of the
    # sides could reach.
    client_before, sims_before, started = time.process_time(), sims_cpu(), time.perf_counter()
    bare_fetch()
    fetch_cpu = _sides(time.process_time() - client_before, sims_before, sims_cpu())
    fetch_wall = time.perf_counter() - started
    client_before, sims_before = time.process_time(), sims_cpu()
    started = time.perf_counter()
    firsts = sync_all(account=True)
    initial_sync = time.perf_counter() - started
    database = sum(value for value in backend_cpu if value is not None) if None not in backend_cpu else None
    initial_cpu = _sides(time.process_time() - client_before, sims_before, sims_cpu(), postgresql=database)
    for first in firsts:
        if first.status != "ok":
            raise SystemExit(f"the initial sync of {first.region} failed: {first.error}")

    # Steady state: before every measured run, about 1% of the Running routers change state in
    # the simulators (which then re-render their pages, as a real API does work per request).
    # The fetches and the sync alternate, so all pay the same; the medians are compared.
    rng = random.Random(1)
    running = [
        (uuid, sim_bases[names.index(region)])
        for uuid, region in Router.objects.filter(state="Running").values_list("uuid", "region__name")
    ]

    def change_some() -> None:
        for uuid, sim_base in rng.sample(running, max(1, len(running) // 100)):
            state = rng.choice(["Stopped", "Running", "Error"])
            _control(sim_base, token, {"action": "set_router", "id": uuid, "state": state})

    fetch_times, raw_fetch_times, sync_times, changed = [], [], [], []
    for _ in range(args.runs):
        change_some()
        started = time.perf_counter()
        bare_fetch()
        fetch_times.append(time.perf_counter() - started)
        change_some()
        started = time.perf_counter()
        raw_fetch()
        raw_fetch_times.append(time.perf_counter() - started)
        change_some()
        started = time.perf_counter()
        results = sync_all()
        sync_times.append(time.perf_counter() - started)
        changed.append(sum(result.updated for result in results))
        for result in results:
            if result.status != "ok":
                raise SystemExit(f"a re-sync of {result.region} failed: {result.error}")
    pool.shutdown()

    # A deployment's autovacuum analyses a freshly filled table within a minute; do it now so
    # the page figures are those of a fleet the planner knows, not of a just-loaded table.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")

    user = User.objects.create_user("bench", password=secrets.token_urlsafe(16))
    client = Client()
    client.force_login(user)

    def page_times(path: str) -> tuple[list[float], int]:
        client.get(path)
        times = []
        for _ in range(args.page_requests):
            started = time.perf_counter()
            response = client.get(path)
            times.append(time.perf_counter() - started)
            assert response.status_code == 200, response.status_code
        # Count at the driver: the request cycle closes and reopens connections, which a
        # CaptureQueriesContext on one connection object does not see.
        executed: list[str] = []
        with connection.execute_wrapper(lambda execute, sql, *rest: executed.append(sql) or execute(sql, *rest)):
            client.get(path)
        return times, len(executed)

    list_times, list_queries = page_times("/")
    search_times, _ = page_times("/?q=10.1")
    sorted_times, _ = page_times("/?sort=-changed&state=Running")
    # The same page with the summary band computed on every request (no sharing between screens).
    settings.FLEET_SUMMARY_CACHE_SECONDS = 0
    cold_times, cold_queries = page_times("/")

    fetch_median = statistics.median(fetch_times)
    cores = os.cpu_count() or 1
    initial_cpu_total = sum(initial_cpu.values()) if None not in initial_cpu.values() else None
    database_cores = min(cores, len(regions))
    raw_fetch_median = statistics.median(raw_fetch_times)
    sync_median = statistics.median(sync_times)
    figures = {
        "routers": Router.objects.count(),
        "regions": len(regions),
        "routers_listed_by_api": listed,
        "fetch_median_s": round(fetch_median, 3),
        "sync_median_s": round(sync_median, 3),
        "sync_vs_fetch_ratio": round(sync_median / fetch_median, 3),
        "raw_fetch_median_s": round(raw_fetch_median, 3),
        "sync_vs_raw_fetch_ratio": round(sync_median / raw_fetch_median, 3),
        "sync_target_ratio": 1.15,
        "initial_sync_target_ratio": 2.0,
        "initial_sync_s": round(initial_sync, 3),
        "initial_sync_vs_fetch_ratio": round(initial_sync / fetch_median, 3),
        "initial_sync_cpu_s": {side: _round(used) for side, used in initial_cpu.items()},
        "fetch_cpu_s": {side: _round(used) for side, used in fetch_cpu.items()},
        "cores": cores,
        # The initial sync's ratio if its CPU were spread perfectly over every core, with no
        # waiting: no overlap of the sides can bring the ratio below it on this machine.
        "initial_sync_cpu_floor_ratio": (
            round(initial_cpu_total / cores / fetch_median, 3) if initial_cpu_total is not None else None
        ),
        # The database's CPU for the first sync's writes, over the cores its backends can use
        # (one transaction, so one backend, per region): no client could bring the ratio below it.
        "initial_sync_database_cpu_vs_fetch_ratio": (
            round(database / database_cores / fetch_median, 3) if database is not None else None
        ),
        "resync_routers_updated_median": statistics.median(changed),
        "list_page_median_ms": round(statistics.median(list_times) * 1000, 1),
        "list_page_target_ms": 150,
        "list_page_queries": list_queries,
        "list_page_uncached_summary_median_ms": round(statistics.median(cold_times) * 1000, 1),
        "list_page_uncached_summary_queries": cold_queries,
        "search_page_median_ms": round(statistics.median(search_times) * 1000, 1),
        "sorted_filtered_page_median_ms": round(statistics.median(sorted_times) * 1000, 1),
        "runs": args.runs,
    }
    print(
        f"bare fetch of {listed} routers' pages ({len(regions)} regions in parallel): median {fetch_median:.3f} s "
        f"over {args.runs} runs"
    )
    print(f"the same pages read as the sync reads them (items as text): median {raw_fetch_median:.3f} s")
    print(
        f"sync (re-sync, ~1% changed): median {sync_median:.3f} s  -> ratio {sync_median / fetch_median:.2f} "
        f"(target <= 1.15); {sync_median / raw_fetch_median:.2f} x the read as text"
    )
    print(f"initial sync: {initial_sync:.3f} s  -> ratio {initial_sync / fetch_median:.2f} (target <= 2)")
    print(
        "  CPU of the initial sync: "
        + ", ".join(f"{side} {_shown(used)}" for side, used in initial_cpu.items())
        + f"; of a bare fetch ({fetch_wall:.3f} s): "
        + ", ".join(f"{side} {_shown(used)}" for side, used in fetch_cpu.items())
    )
    if initial_cpu_total is not None:
        print(
            f"  spread perfectly over this machine's {cores} cores, the initial sync's CPU would take "
            f"{initial_cpu_total / cores:.3f} s: ratio {initial_cpu_total / cores / fetch_median:.2f} at best"
        )
    if database is not None:
        print(
            f"  the database's CPU alone, over the {database_cores} core(s) its backends can use (one transaction "
            f"per region), is {database / database_cores / fetch_median:.2f} x the fetch"
        )
    print(
        f"router list page ({figures['routers']:,} routers): median {figures['list_page_median_ms']} ms in {list_queries} queries "
        f"(target < 150 ms); search {figures['search_page_median_ms']} ms; sorted+filtered "
        f"{figures['sorted_filtered_page_median_ms']} ms; with the summary band recomputed on every request "
        f"{figures['list_page_uncached_summary_median_ms']} ms in {cold_queries} queries"
    )
    return figures


def _sides(client: float, sims_before: float | None, sims_after: float | None, **more: float | None) -> dict:
    """CPU seconds per side of one measured operation (None where a side could not be read)."""
    simulator = sims_after - sims_before if sims_before is not None and sims_after is not None else None
    return {"client": client, "simulator": simulator, **more}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _shown(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.2f} s"


if __name__ == "__main__":
    main()
