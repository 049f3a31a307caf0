"""Benchmark: live tails from a lab router's log to WebSocket clients, against a bare `ssh … tail -F`.

Sets up its own lab (name `vrtb<SLOT>`, block 198.19.<200+SLOT>.0/24, 10 routers), its own
PostgreSQL database (synced from a simulator loaded with the lab's registration file, every
router collected once so the console knows its logs), its own Redis server on a free
loopback port, a real `manage.py tail_worker` and daphne, then measures in one run:

- latency: lines appended on a KVM router (through the lab host) every 100 ms, each carrying
  the time it was written, to their arrival at a WebSocket client of the console (tail_p50_ms,
  tail_p99_ms), and, for the same lines, at `ssh -J host router tail -F` (ssh_tail_p50_ms, the
  physical baseline). Targets: p50 <= 100 ms, p99 <= 500 ms;
- sustained: 1,000 lines/s for 30 s into the same log, every line numbered: the client
  acknowledges as the page does and counts lines lost, repeated, reordered or skipped (all 0);
- viewers: 50 clients watching one log of one router: every client gets every line, and the
  router sees one SSH connection (router_ssh_sessions, counted with `ss` in its namespace);
- capacity: a client on every log of every router (60 tails) in the one worker process: all
  streaming and delivering, and the worker's resident memory (tail_worker_rss_mib).

Everything is torn down at the end. Last line: one JSON object.

    python bench/tail.py [--seconds 30] [--rate 1000] [--viewers 50]
"""

from __future__ import annotations

import argparse
import asyncio
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.support import admin_sql, base_database_url, free_port, with_db  # noqa: E402
from bench.websocket import WebSocket, WebSocketClosed  # noqa: E402

SLOT = int(os.environ.get("VRCONSOLE_TEST_SLOT", "0"))
LAB_NAME = f"vrtb{SLOT}"
LAB_BLOCK = 50 + SLOT  # below the test suite's lab blocks (61-252, tests/lab_slots.py)
ROUTERS = 10
LATENCY_LINES = 200
VIEWER_LINES = 100
TARGET_P50_MS, TARGET_P99_MS = 100, 500
ROUTER_LOGS = ("cloud", "dnsmasq", "daemon", "haproxy", "service-monitor", "monitor")
WAIT_S = 120

# Runs inside a lab router: appends numbered lines stamped with the time they are written, one
# write() each (like a logger), `rate` per second.
WRITER = r"""
import sys, time
path, kind, count, rate = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
tick = max(1, int(rate / 100))
start = time.monotonic()
written = 0
with open(path, "a", buffering=1) as log:
    while written < count:
        for _ in range(min(tick, count - written)):
            log.write(f"VRCBENCH {kind} {written} {time.time_ns()}\n")
            written += 1
        delay = start + written / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
"""


def _start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
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
    _wait_for_port(port, "redis-server")
    return server, port


def _wait_for_port(port: int, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not start listening on 127.0.0.1:{port}")


def _kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


class Viewer:
    """One WebSocket client of a tail, acknowledging what it receives as the page does."""

    def __init__(self, name: str, url: str, origin: str, cookie: str, on_line: Any = None) -> None:
        self.name, self.url, self.origin, self.cookie, self.on_line = name, url, origin, cookie, on_line
        self.status = ""
        self.lines = 0
        self.last_seq = 0
        self.repeats = 0
        self.skipped = 0
        self.bench: dict[str, list[int]] = {}
        self.closed: int | None = None

    async def connect(self) -> None:
        host, port = self.origin.removeprefix("http://").split(":")
        path = self.url.split(f"{host}:{port}", 1)[1]
        self.socket = await WebSocket.connect(host, int(port), path, {"Origin": self.origin, "Cookie": self.cookie})
        self.task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        try:
            while True:
                self.handle(json.loads(await self.socket.receive()))
        except WebSocketClosed as closed:
            self.closed = closed.code or 0

    def handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind in ("tail.state", "tail.status"):
            self.status = message["status"]
        elif kind == "tail.skipped":
            self.skipped += message["count"]
        elif kind == "tail.lines":
            received = time.time_ns()
            for line in message["lines"]:
                if line["s"] <= self.last_seq:
                    self.repeats += 1
                    continue
                self.last_seq = line["s"]
                self.lines += 1
                words = line["t"].split()
                if len(words) == 4 and words[0] == "VRCBENCH":
                    self.bench.setdefault(words[1], []).append(int(words[2]))
                    if self.on_line is not None:
                        self.on_line(words[1], int(words[2]), received - int(words[3]))
            self.socket.send_text(json.dumps({"ack": self.last_seq}))


class SshBaseline:
    """`ssh` through the lab host to the router running `tail -n 0 -F`, timing each bench line."""

    def __init__(self, argv: list[str]) -> None:
        self.latencies: dict[int, int] = {}
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            received = time.time_ns()
            words = raw.decode(errors="replace").split()
            if len(words) == 4 and words[0] == "VRCBENCH" and words[1] == "lat":
                self.latencies[int(words[2])] = received - int(words[3])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30, help="length of the sustained phase")
    parser.add_argument("--rate", type=int, default=1000, help="lines per second in the sustained phase")
    parser.add_argument("--viewers", type=int, default=50, help="clients watching one tail")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("the lab needs root")

    base_url = base_database_url()
    db_name = f"vrc_bench_tail_{os.getpid()}"
    scratch = Path(tempfile.mkdtemp(prefix="vrc-bench-tail-"))
    redis_server, redis_port = _start_redis(scratch)
    admin_sql(base_url, f'CREATE DATABASE "{db_name}"')
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "vrconsole.settings",
            "DATABASE_URL": with_db(base_url, db_name),
            "DATABASE_CONN_MAX_AGE": "0",
            "SECRET_KEY": secrets.token_urlsafe(40),
            "ALLOWED_HOSTS": "127.0.0.1",
            "PLAIN_HTTP": "true",
            "LOG_LEVEL": "WARNING",
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "SSH_KNOWN_HOSTS_FILE": str(scratch / "known_hosts"),
            "SSH_ALLOWED_NETWORKS": "198.19.0.0/16",
            "TAIL_BACKFILL_LINES": "10",
        }
    )
    import django

    django.setup()
    from devcloud import lab

    children: list[subprocess.Popen[bytes]] = []
    lab_started = False
    figures: dict[str, Any] = {}
    try:
        if lab.status(LAB_NAME).get("status") is not None:
            lab.down(LAB_NAME)
        began = time.monotonic()
        lab_started = True
        lab.up(name=LAB_NAME, block=LAB_BLOCK, router_count=ROUTERS)
        print(f"lab {LAB_NAME} with {ROUTERS} routers up in {time.monotonic() - began:.1f} s", flush=True)
        figures = asyncio.run(_measure(args, children, scratch))
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        if not figures and (scratch / "processes.log").exists():
            # The run failed: what daphne and the tail worker said is the first thing to read.
            print((scratch / "processes.log").read_text(errors="replace")[-4000:], file=sys.stderr)
        if lab_started:
            lab.down(LAB_NAME)
        from django.db import connections

        connections.close_all()
        admin_sql(base_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        redis_server.terminate()
        redis_server.wait(timeout=10)
        shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(figures, sort_keys=True))


def _prepare() -> tuple[list[Any], str]:
    """Migrate, sync the lab from a simulator, collect every router once, and sign an operator in."""
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.test import Client

    from devcloud.lab import registration_path
    from devcloud.simulator.server import start_simulator
    from diagnostics.collect import run_collection
    from diagnostics.models import Collection, CollectionStatus
    from vrconsole.cloudstack.regions import RegionConfig
    from vrconsole.models import Router
    from vrconsole.roles import OPERATOR
    from vrconsole.sync import sync_region

    call_command("migrate", "--noinput", verbosity=0)
    simulator = start_simulator(routers=0, lab_file=registration_path(LAB_NAME), prewarm=False)
    try:
        result = sync_region(RegionConfig("bench", simulator.url, simulator.api_key, simulator.secret_key, timeout=60))
    finally:
        simulator.stop()
    if result.status != "ok":
        raise SystemExit(f"the sync failed: {result.error}")
    routers = list(Router.objects.select_related("host", "zone").order_by("name"))
    for router in routers:
        collection = run_collection(Collection.objects.create(router=router), publish=lambda *_: None)
        if collection.status != CollectionStatus.SUCCEEDED:
            raise SystemExit(f"the collection of {router.name} failed: {collection.error}")
    user = User.objects.create_user("bench", password=secrets.token_urlsafe(16))
    user.groups.add(Group.objects.get_or_create(name=OPERATOR)[0])
    client = Client()
    client.force_login(user)
    return routers, f"sessionid={client.cookies['sessionid'].value}"


def _namespace(router_name: str) -> tuple[str, Path]:
    from devcloud.lab.lifecycle import mount_file
    from devcloud.lab.topology import plan_lab

    planned = next(r for r in plan_lab(LAB_NAME, LAB_BLOCK, ROUTERS).routers if r.name == router_name)
    return planned.namespace, mount_file(LAB_NAME, planned.namespace)


def _write(router_name: str, path: str, kind: str, count: int, rate: float) -> None:
    from devcloud.lab.system_commands import run_inside

    namespace, pinned = _namespace(router_name)
    run_inside(
        namespace, pinned, ["python3", "-c", WRITER, path, kind, str(count), str(rate)], timeout=count / rate + 60
    )


def _ssh_connections(router_name: str) -> int:
    """Established TCP connections to the router's sshd, seen from inside the router."""
    from devcloud.lab.system_commands import run_inside

    namespace, pinned = _namespace(router_name)
    listing = run_inside(namespace, pinned, ["ss", "-Htn", "state", "established", "( sport = :3922 )"])
    return sum(1 for line in listing.splitlines() if line.strip())


def _ssh_argv(router: Any, command: str) -> list[str]:
    from django.conf import settings

    from diagnostics.access import plan_access

    plan = plan_access(router)
    assert plan.host is not None
    common = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"]
    common += ["-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"]
    jump = shlex.join(["ssh", *common, "-i", settings.HOST_SSH_KEY_FILE, "-W", "%h:%p", f"root@{plan.host.address}"])
    return ["ssh", *common, "-o", f"ProxyCommand={jump}", "-i", settings.VR_SSH_KEY_FILE, "-p", "3922"] + [
        f"root@{plan.router.address}",
        command,
    ]


async def _until(check: Any, what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _measure(args: argparse.Namespace, children: list[subprocess.Popen[bytes]], scratch: Path) -> dict[str, Any]:
    routers, cookie = await asyncio.to_thread(_prepare)
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    env = os.environ.copy()
    log = open(scratch / "processes.log", "ab")  # noqa: SIM115 - kept open for the children's lifetime
    worker = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "tail_worker"], env=env, stdout=log, stderr=log)
    children.append(worker)
    daphne = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "vrconsole.asgi:application"]
    children.append(subprocess.Popen(daphne, cwd=ROOT, env=env, stdout=log, stderr=log))
    _wait_for_port(port, "daphne")

    def url(router: Any, log_name: str) -> str:
        return f"ws://127.0.0.1:{port}/ws/routers/{router.pk}/tail/{log_name}/"

    kvm = next(r for r in routers if r.host_id is not None and r.name == "r-10-VM")

    # (a) latency, console and bare ssh on the same lines.
    latencies: dict[int, int] = {}
    main_viewer = Viewer(
        "main",
        url(kvm, "cloud"),
        origin,
        cookie,
        lambda kind, n, ns: latencies.setdefault(n, ns) if kind == "lat" else None,
    )
    await main_viewer.connect()
    await _until(lambda: main_viewer.status == "streaming", "the first tail to stream")
    baseline = SshBaseline(_ssh_argv(kvm, "tail -n 0 -F /var/log/cloud.log"))
    await asyncio.sleep(2)  # the ssh session is up and following
    await asyncio.to_thread(_write, kvm.name, "/var/log/cloud.log", "lat", LATENCY_LINES, 10)
    await _until(
        lambda: len(latencies) >= LATENCY_LINES and len(baseline.latencies) >= LATENCY_LINES, "latency lines", 30
    )
    baseline.stop()
    console_ms = [ns / 1e6 for ns in latencies.values()]
    ssh_ms = [ns / 1e6 for ns in baseline.latencies.values()]
    p50, p99 = statistics.median(console_ms), _percentile(console_ms, 0.99)
    ssh_p50 = statistics.median(ssh_ms)
    print(
        f"(a) latency router -> WebSocket client: p50 {p50:.1f} ms, p99 {p99:.1f} ms (targets {TARGET_P50_MS}/"
        f"{TARGET_P99_MS}); bare ssh tail -F: p50 {ssh_p50:.1f} ms, p99 {_percentile(ssh_ms, 0.99):.1f} ms",
        flush=True,
    )

    # (b) sustained flood into the same log.
    total = args.rate * args.seconds
    first_arrival: list[float] = []
    last_arrival: list[float] = []

    def flood_seen(kind: str, number: int, _ns: int) -> None:
        if kind == "flood":
            now = time.monotonic()
            if not first_arrival:
                first_arrival.append(now)
            last_arrival[:] = [now]

    main_viewer.on_line = flood_seen
    started = time.monotonic()
    await asyncio.to_thread(_write, kvm.name, "/var/log/cloud.log", "flood", total, args.rate)
    write_seconds = time.monotonic() - started
    flood = main_viewer.bench.setdefault("flood", [])
    try:
        await _until(lambda: len(flood) >= total, "the flood to arrive", 60)
    except SystemExit:
        pass  # counted as lost below
    lost = total - len(set(flood))
    reordered = sum(1 for before, after in zip(flood, flood[1:], strict=False) if after < before)
    arrival_span = (last_arrival[0] - first_arrival[0]) if first_arrival and last_arrival else 0.0
    sustained = len(flood) / arrival_span if arrival_span else 0.0
    print(
        f"(b) sustained: {total} lines written in {write_seconds:.1f} s; {len(flood)} received over {arrival_span:.1f} s "
        f"({sustained:.0f} lines/s); lost {lost}, reordered {reordered}, repeated {main_viewer.repeats}, "
        f"skipped {main_viewer.skipped}",
        flush=True,
    )

    # (c) many viewers of one tail: one SSH connection to the router.
    shared = next(r for r in routers if r.name == "r-11-VM")
    viewers = [Viewer(f"v{n}", url(shared, "dnsmasq"), origin, cookie) for n in range(args.viewers)]
    for start in range(0, len(viewers), 10):
        await asyncio.gather(*(viewer.connect() for viewer in viewers[start : start + 10]))
    await _until(lambda: all(v.status == "streaming" for v in viewers), "every viewer to see the tail stream")
    await asyncio.to_thread(_write, shared.name, "/var/log/dnsmasq.log", "fan", VIEWER_LINES, 20)
    await _until(lambda: all(len(v.bench.get("fan", [])) >= VIEWER_LINES for v in viewers), "every viewer's lines", 60)
    sessions = await asyncio.to_thread(_ssh_connections, shared.name)
    complete = sum(1 for v in viewers if v.bench.get("fan") == list(range(VIEWER_LINES)))
    print(
        f"(c) {len(viewers)} viewers of {shared.name} dnsmasq.log: {complete} got all {VIEWER_LINES} lines in order; "
        f"SSH connections on the router: {sessions}",
        flush=True,
    )

    # (d) a viewer on every log of every router: all in the one worker process.
    capacity = [Viewer(f"{r.name}:{name}", url(r, name), origin, cookie) for r in routers for name in ROUTER_LOGS]
    for start in range(0, len(capacity), 10):
        await asyncio.gather(*(viewer.connect() for viewer in capacity[start : start + 10]))
    await _until(lambda: all(v.status == "streaming" for v in capacity), "every tail to stream", 180)
    before = {v.name: v.lines for v in capacity}
    from devcloud.lab.system_commands import run_inside

    paths = {
        "cloud": "/var/log/cloud.log",
        "dnsmasq": "/var/log/dnsmasq.log",
        "daemon": "/var/log/daemon.log",
        "haproxy": "/var/log/haproxy.log",
        "service-monitor": "/var/log/routerServiceMonitor.log",
        "monitor": "/var/log/monitor.log",
    }
    for router in routers:
        namespace, pinned = _namespace(router.name)
        script = "; ".join(f"echo 'VRCBENCH probe 0 {time.time_ns()}' >> {p}" for p in paths.values())
        await asyncio.to_thread(run_inside, namespace, pinned, ["sh", "-c", script])
    await _until(lambda: all(v.lines > before[v.name] for v in capacity), "a new line on every tail", 60)
    streaming = sum(1 for v in capacity if v.status == "streaming")
    rss_mib = _kib(worker.pid, "VmRSS") / 1024
    peak_mib = _kib(worker.pid, "VmHWM") / 1024
    workers = sum(1 for child in children if child is worker)
    print(
        f"(d) {streaming} tails streaming and delivering in {workers} tail worker process: RSS {rss_mib:.1f} MiB "
        f"(peak {peak_mib:.1f} MiB)",
        flush=True,
    )
    return {
        "tail_p50_ms": round(p50, 1),
        "tail_p99_ms": round(p99, 1),
        "ssh_tail_p50_ms": round(ssh_p50, 1),
        "ssh_tail_p99_ms": round(_percentile(ssh_ms, 0.99), 1),
        "latency_lines": len(console_ms),
        "sustained_lines_per_s": round(sustained),
        "sustained_lines": len(flood),
        "sustained_seconds": args.seconds,
        "lines_lost": lost,
        "lines_reordered": reordered,
        "lines_repeated": main_viewer.repeats,
        "lines_skipped": main_viewer.skipped,
        "viewers": len(viewers),
        "viewers_with_every_line": complete,
        "router_ssh_sessions": sessions,
        "tails_per_worker": streaming,
        "tail_worker_processes": workers,
        "tail_worker_rss_mib": round(rss_mib, 1),
        "tail_worker_peak_rss_mib": round(peak_mib, 1),
        "targets": {"tail_p50_ms": TARGET_P50_MS, "tail_p99_ms": TARGET_P99_MS, "tails_per_worker": 50},
    }


if __name__ == "__main__":
    main()
