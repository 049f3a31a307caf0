"""Integration: the tail worker following real logs of real lab routers over SSH.

A lab of its own (base name `vrcl`, base block 68, shifted per run by tests/lab_slots.py).
The worker runs in this process on its own event loop, against this run's Redis and database,
exactly as `manage.py tail_worker` runs it; viewers ask for tails through the Redis store as
the tail consumer does, and the tests listen on the tail's channel-layer group. Lines are
written on the routers over SSH through the console's own SSH seam; what runs on a router is
read inside its namespaces.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection as db_connection
from redis.exceptions import RedisError

from devcloud.lab.lifecycle import mount_file
from devcloud.lab.system_commands import run_inside
from devcloud.lab.topology import LabPlan
from diagnostics.access import open_router_connection, plan_access
from diagnostics.hostkeys import PinnedHostKeys
from diagnostics.tails.store import TailKey, TailStore
from diagnostics.tails.worker import RENEW_EVERY, TailWorker
from tests.diagnostics.lab_inventory import fresh_lab
from tests.diagnostics.rq_support import RedisServer, free_port
from tests.lab_slots import lab_block, lab_name
from vrconsole.models import AuditEntry, Host, Region, Router, Zone

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LAB_NAME = lab_name("vrcl")
LAB_BLOCK = lab_block(68)
# Bounds a wait for something that should happen; reached only when the code is broken.
WAIT_S = 20


@pytest.fixture(scope="module")
def tail_lab() -> Iterator[LabPlan]:
    with fresh_lab(LAB_NAME, LAB_BLOCK) as plan:
        yield plan


def quick_tails(settings: Any, tmp_path: Path) -> Any:
    settings.SSH_KNOWN_HOSTS_FILE = str(tmp_path / "known_hosts")
    settings.SSH_OVERRIDES = {}
    settings.TAIL_BACKFILL_LINES = 5
    settings.TAIL_GRACE_SECONDS = 1.0
    settings.TAIL_RETRY_MAX_SECONDS = 2.0
    return settings


@pytest.fixture
def tail_settings(settings: Any, tmp_path: Path, clean_tail_keys: None) -> Any:
    return quick_tails(settings, tmp_path)


class WorkerThread:
    """A TailWorker on an event loop of its own, in a thread of this process."""

    def __init__(self) -> None:
        self.worker = TailWorker(max_tails=10)
        self.ready = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stop = asyncio.Event()
        self.ready.set()
        await self.worker.run(self.stop)

    def __enter__(self) -> WorkerThread:
        self.thread.start()
        self.ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(30)


@pytest.fixture
def worker(tail_lab: LabPlan, tail_settings: Any) -> Iterator[WorkerThread]:
    with WorkerThread() as running:
        yield running


def inventory_router(plan: LabPlan, name: str) -> Router:
    """The lab router's row (and its host's), as a sync would write them."""
    region, _ = Region.objects.get_or_create(name=f"lab-{plan.name}")
    zone, _ = Zone.objects.get_or_create(region=region, uuid=plan.zone_id, defaults={"name": f"{plan.name}-zone1"})
    planned = next(router for router in plan.routers if router.name == name)
    host = None
    if planned.hypervisor == "KVM":
        host, _ = Host.objects.get_or_create(
            region=region,
            uuid=plan.host_id,
            defaults={"zone": zone, "name": plan.host_name, "ipaddress": plan.host_ip, "hypervisor": "KVM"},
        )
    return Router.objects.create(
        region=region,
        zone=zone,
        host=host,
        uuid=planned.id,
        name=planned.name,
        state="Running",
        hypervisor=planned.hypervisor,
        link_local_ip=planned.control.ipaddress,
    )


async def in_thread(function: Any, *args: Any) -> Any:
    """Run blocking work off the event loop; the thread's database connection is closed after."""

    def call() -> Any:
        try:
            return function(*args)
        finally:
            db_connection.close()

    return await asyncio.to_thread(call)


def over_ssh(router: Router, command: str) -> str:
    """Run a command on the router through the console's SSH seam (as an engineer would by hand)."""
    with open_router_connection(plan_access(router), PinnedHostKeys()) as connection:
        result = connection.router.run(command, timeout=10)
    assert result.exit_status == 0, result.stderr
    return result.stdout


def inside(plan: LabPlan, router: Router, argv: list[str]) -> str:
    namespace = next(r.namespace for r in plan.routers if r.name == router.name)
    return run_inside(namespace, mount_file(plan.name, namespace), argv, check=False)


def tails_running(plan: LabPlan, router: Router, path: str) -> int:
    listing = inside(plan, router, ["ps", "-eo", "args"])
    return sum(1 for line in listing.splitlines() if line.startswith("tail ") and path in line)


class Listener:
    """The tail's group, heard on one event loop (channels_redis buffers per loop)."""

    def __init__(self, key: TailKey) -> None:
        self.key = key
        self.lines: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []

    async def open(self, viewers: int = 1) -> None:
        self.layer = get_channel_layer()
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(self.key.group, self.channel)
        for number in range(viewers):
            await TailStore().request(self.key, f"viewer-{number}")

    async def close(self, viewers: int = 1) -> None:
        for number in range(viewers):
            await TailStore().leave(self.key, f"viewer-{number}")
        await self.layer.group_discard(self.key.group, self.channel)

    async def until(self, check: Any, what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not check(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {what} within {WAIT_S} s: statuses {self.statuses}, lines {self.texts}")
            try:
                message = await asyncio.wait_for(self.layer.receive(self.channel), remaining)
            except TimeoutError:
                continue
            except (RedisError, OSError):
                # Redis restarting under the test: listen again.
                await asyncio.sleep(0.2)
                continue
            if message["type"] == "tail.lines":
                self.lines.extend(message["lines"])
            else:
                self.statuses.append(message)

    @property
    def texts(self) -> list[str]:
        return [line["t"] for line in self.lines]

    def has_text(self, needle: str) -> bool:
        return any(needle in text for text in self.texts)

    def has_status(self, status: str, count: int = 1) -> bool:
        return sum(1 for s in self.statuses if s["status"] == status) >= count


def numbered_without_gaps(listener: Listener) -> bool:
    numbers = [line["s"] for line in listener.lines]
    return numbers == list(range(numbers[0], numbers[0] + len(numbers)))


def test_it_follows_a_log_from_its_last_lines_then_each_new_line_once(tail_lab, worker):
    router = inventory_router(tail_lab, "r-10-VM")
    listener = Listener(TailKey(router.pk, "cloud"))

    async def scenario() -> None:
        await listener.open()
        await listener.until(lambda t: t.has_status("streaming") and len(t.lines) >= 6, "backfill")
        await in_thread(over_ssh, router, "echo 'vrc-tail-test first new line' >> /var/log/cloud.log")
        await listener.until(lambda t: t.has_text("vrc-tail-test first new line"), "appended line")
        await listener.close()

    async_to_sync(scenario)()
    assert listener.lines[0]["k"] == "notice" and "from its last 5 lines" in listener.lines[0]["t"]
    assert [line["k"] for line in listener.lines[1:6]] == ["line"] * 5
    assert listener.texts.count("vrc-tail-test first new line") == 1
    assert numbered_without_gaps(listener)


def test_viewers_of_one_log_share_one_ssh_tail(tail_lab, worker):
    router = inventory_router(tail_lab, "r-11-VM")
    listener = Listener(TailKey(router.pk, "cloud"))

    async def scenario() -> int:
        await listener.open(viewers=3)
        await listener.until(lambda t: t.has_status("streaming"), "streaming")
        running = await in_thread(tails_running, tail_lab, router, "/var/log/cloud.log")
        await listener.close(viewers=3)
        return running

    assert async_to_sync(scenario)() == 1


def test_it_keeps_following_through_copytruncate_and_rotation(tail_lab, worker):
    router = inventory_router(tail_lab, "r-10-VM")
    listener = Listener(TailKey(router.pk, "dnsmasq"))

    async def scenario() -> None:
        await listener.open()
        await listener.until(lambda t: t.has_status("streaming"), "streaming")
        # The VR's logrotate: copytruncate (CLOUDSTACK.md §3.3).
        await in_thread(
            over_ssh,
            router,
            "cp /var/log/dnsmasq.log /var/log/dnsmasq.log.1 && : > /var/log/dnsmasq.log && sleep 1 && "
            "echo 'after copytruncate' >> /var/log/dnsmasq.log",
        )
        await listener.until(lambda t: t.has_text("after copytruncate"), "line after copytruncate")
        # A rotation by rename, as rsyslog's logrotate does.
        await in_thread(
            over_ssh,
            router,
            "mv /var/log/dnsmasq.log /var/log/dnsmasq.log.2 && sleep 1 && echo 'after rename' > /var/log/dnsmasq.log",
        )
        await listener.until(lambda t: t.has_text("after rename"), "line after rotation")
        await listener.close()

    async_to_sync(scenario)()
    notices = [line["t"] for line in listener.lines if line["k"] == "notice"]
    assert any("file truncated" in notice for notice in notices), notices
    assert listener.texts.count("after copytruncate") == 1 and listener.texts.count("after rename") == 1


def test_it_stops_after_the_last_viewer_and_leaves_nothing_running(tail_lab, worker):
    router = inventory_router(tail_lab, "r-10-VM")
    listener = Listener(TailKey(router.pk, "daemon"))

    async def scenario() -> None:
        await listener.open()
        await listener.until(lambda t: t.has_status("streaming"), "streaming")
        await TailStore().leave(listener.key, "viewer-0")
        await listener.until(lambda t: t.has_status("stopped"), "stop after the grace period")
        await listener.close()

    async_to_sync(scenario)()
    stopped = next(s for s in listener.statuses if s["status"] == "stopped")
    assert stopped["reason"] == "no viewer left"
    deadline = time.monotonic() + 5
    while tails_running(tail_lab, router, "/var/log/daemon.log") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert tails_running(tail_lab, router, "/var/log/daemon.log") == 0
    audit = AuditEntry.objects.get(action="ssh.session", router=router)
    assert "live tail of /var/log/daemon.log" in audit.detail and "stopped: no viewer left" in audit.detail


def test_it_retries_a_lost_session_and_resumes_without_repeating_lines(tail_lab, worker):
    router = inventory_router(tail_lab, "r-11-VM")
    listener = Listener(TailKey(router.pk, "service-monitor"))

    async def scenario() -> None:
        await listener.open()
        await listener.until(lambda t: t.has_status("streaming") and len(t.lines) >= 2, "streaming")
        await in_thread(inside, tail_lab, router, ["pkill", "-f", "tail -n 5 -F -- /var/log/routerServiceMonitor"])
        await listener.until(lambda t: t.has_status("retrying") and t.has_status("streaming", 2), "a new session")
        await listener.until(lambda t: t.has_text("reconnected"), "the reconnect notice")
        await in_thread(over_ssh, router, "echo 'after the reconnect' >> /var/log/routerServiceMonitor.log")
        await listener.until(lambda t: t.has_text("after the reconnect"), "line after the reconnect")
        await listener.close()

    async_to_sync(scenario)()
    retrying = next(s for s in listener.statuses if s["status"] == "retrying")
    assert "tail command ended" in retrying["reason"] and retrying["retry_in"] == 1.0
    assert any(line["t"] == "reconnected: no line was missed" for line in listener.lines)
    backfill = [line["t"] for line in listener.lines if line["k"] == "line"]
    assert len(backfill) == len(set(backfill)), "a line was shown twice"
    assert numbered_without_gaps(listener)


def test_it_ends_the_tail_with_a_reason_when_the_router_is_no_longer_running(tail_lab, worker):
    router = inventory_router(tail_lab, "r-10-VM")
    listener = Listener(TailKey(router.pk, "haproxy"))

    async def scenario() -> None:
        await listener.open()
        await listener.until(lambda t: t.has_status("streaming"), "streaming")
        await in_thread(lambda: Router.objects.filter(pk=router.pk).update(state="Stopped"))
        await in_thread(inside, tail_lab, router, ["pkill", "-f", "tail -n 5 -F -- /var/log/haproxy.log"])
        await listener.until(lambda t: t.has_status("ended"), "the end of the tail")
        await listener.close()

    async_to_sync(scenario)()
    ended = next(s for s in listener.statuses if s["status"] == "ended")
    assert ended["reason"] == "the router is Stopped in CloudStack, not Running"


def test_the_agent_log_tail_shows_only_the_lines_naming_this_router(tail_lab, worker):
    router = inventory_router(tail_lab, "r-11-VM")
    control = router.link_local_ip
    listener = Listener(TailKey(router.pk, "agent"))

    async def scenario() -> None:
        await listener.open()
        await listener.until(lambda t: t.has_status("streaming") and len(t.lines) >= 3, "agent lines")
        await listener.close()

    async_to_sync(scenario)()
    lines = [line["t"] for line in listener.lines if line["k"] == "line"]
    assert lines and all("r-11-VM" in text or control in text for text in lines), lines
    assert not any("r-10-VM" in text or "r-12-VM" in text for text in lines)


@pytest.fixture
def private_redis(tmp_path: Path, settings: Any) -> Iterator[RedisServer]:
    """A Redis of this test only (the machine's is never restarted), for the worker and the channel layer."""
    quick_tails(settings, tmp_path)
    server = RedisServer(free_port(), tmp_path)
    server.start()
    settings.REDIS_URL = server.url
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [server.url]}}
    }
    try:
        yield server
    finally:
        server.kill()


async def retried(step: Any, what: str) -> None:
    """A Redis call right after its restart may meet the old connection once: try again."""
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            await step()
            return
        except (RedisError, OSError):
            if time.monotonic() > deadline:
                raise AssertionError(f"could not {what} after the Redis restart") from None
            await asyncio.sleep(0.2)


def test_a_redis_restart_costs_the_lines_of_the_outage_not_the_tail(tail_lab, private_redis):
    router = inventory_router(tail_lab, "r-11-VM")
    listener = Listener(TailKey(router.pk, "monitor"))

    async def scenario() -> None:
        await listener.open()
        await listener.until(lambda t: t.has_status("streaming"), "streaming")
        await in_thread(over_ssh, router, "echo 'before the restart' >> /var/log/monitor.log")
        await listener.until(lambda t: t.has_text("before the restart"), "a line before the restart")
        private_redis.kill()
        await in_thread(over_ssh, router, "echo 'during the outage' >> /var/log/monitor.log")
        await asyncio.sleep(1.5)
        private_redis.start()

        # What the tail socket's timers do: renew the viewer's lease and its group membership.
        async def rejoin() -> None:
            await TailStore().request(listener.key, "viewer-0")
            await listener.layer.group_add(listener.key.group, listener.channel)

        await retried(rejoin, "ask for the tail again")
        await asyncio.sleep(RENEW_EVERY + 0.5)
        await in_thread(over_ssh, router, "echo 'after the restart' >> /var/log/monitor.log")
        await listener.until(lambda t: t.has_text("after the restart"), "a line after the restart")
        await listener.close()

    with WorkerThread():
        async_to_sync(scenario)()
    assert not any(s["status"] in ("ended", "stopped", "restarted") for s in listener.statuses), listener.statuses
    assert sum(1 for text in listener.texts if text.startswith("following ")) == 1, "the tail was restarted"
    numbers = {line["t"]: line["s"] for line in listener.lines}
    # The line of the outage was numbered but could not be published: a page is told it skipped it.
    assert numbers["after the restart"] == numbers["before the restart"] + 2
