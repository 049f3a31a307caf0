"""Browser tests of the router page's live triage panel, over a real WebSocket.

Daphne serves vrconsole.asgi:application from a subprocess on a free loopback port, against
this test run's database (committed rows: the tests are transactional) and Redis. Debian's
chromium, driven by Playwright, signs in through the login form and opens a router page;
the test then publishes collection events through the real channel layer, exactly as a
worker does, and reads what the operator would see, without reloading the page.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import django_rq
import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, connections

from diagnostics.models import Collection, ProbeResult
from tests.vrconsole.router_factory import make_region, make_router, make_zone
from vrconsole.events import router_group as group_name
from vrconsole.models import Router
from vrconsole.queues import COLLECT_NOW
from vrconsole.roles import OPERATOR

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "browser-test-password-1"
ROOT = Path(__file__).resolve().parents[2]
# Bounds the wait for something the page should show; reached only when the code is broken.
WAIT_MS = 10_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed"),
    pytest.mark.django_db(transaction=True),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@dataclass
class DaphneServer:
    """`daphne vrconsole.asgi:application` on one loopback port, as a deployment runs it."""

    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            # The settings this test run uses (pytest-django exports them), so server and test agree.
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "tests.settings"),
            "DATABASE_URL": _database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "ALLOWED_HOSTS": "127.0.0.1",
            "CHANNELS_PREFIX": settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
            # A pooled connection would keep the test database busy after the server stops.
            "DATABASE_CONN_MAX_AGE": "0",
            "LOG_LEVEL": "WARNING",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "vrconsole.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"daphne exited: {error}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("daphne did not start listening") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None


@contextmanager
def running_server(django_db_blocker: Any) -> Iterator[DaphneServer]:
    """A started server, stopped on the way out whatever happened."""
    server = DaphneServer(_free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        with django_db_blocker.unblock():
            _wait_for_server_sessions_to_end()


@pytest.fixture(scope="module")
def asgi_server(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """One server for the module's tests: each test's rows are committed, and flushed after it."""
    with running_server(django_db_blocker) as server:
        yield server.url


@pytest.fixture
def own_server(django_db_setup: None, django_db_blocker: Any) -> Iterator[DaphneServer]:
    """A server of the test's own, for a test that stops and restarts it."""
    with running_server(django_db_blocker) as server:
        yield server


def _wait_for_server_sessions_to_end() -> None:
    # PostgreSQL ends a dead client's backend a moment after the process exits; the test
    # database can only be flushed or dropped once it has.
    deadline = time.monotonic() + 10
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.1)


@pytest.fixture
def collect_queue() -> Iterator[Any]:
    queue = django_rq.get_queue(COLLECT_NOW)
    queue.empty()
    yield queue
    queue.empty()


@pytest.fixture
def router() -> Router:
    return make_router(make_zone(make_region()), name="r-31-VM")


def _user(name: str, operator: bool) -> None:
    user = get_user_model().objects.create_user(name, password=PASSWORD)
    if operator:
        user.groups.add(Group.objects.get_or_create(name=OPERATOR)[0])


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # Playwright's sync API runs an event loop on this thread; the ORM calls here are plain test setup.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
            # ORM calls made while Playwright's loop runs get their own database connection;
            # it must be closed here, or the test database cannot be flushed or dropped.
            connections.close_all()


def signed_in_router_page(browser: Any, server: str, username: str, router: Router) -> Any:
    tab = browser.new_context().new_page()
    tab.set_default_timeout(WAIT_MS)
    tab.goto(f"{server}/login/")
    tab.fill("input[name=username]", username)
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{server}/")
    tab.goto(f"{server}/routers/{router.uuid}/")
    tab.wait_for_selector('#live-panel[data-live-status="connected"]')
    return tab


def publish(router: Router, event: dict[str, Any]) -> None:
    # Playwright's sync API keeps an event loop on this thread, where async_to_sync refuses to run.
    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(async_to_sync(get_channel_layer().group_send), group_name(router.pk), event).result()


def progress(router: Router, probe: str, status: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "collection.progress",
        "collection_id": fields.pop("collection_id", 77),
        "router_id": router.pk,
        "probe": probe,
        "status": status,
        **fields,
    }


def test_it_shows_each_probe_as_it_arrives_then_the_outcome(asgi_server, browser, router):
    _user("noc", operator=False)
    tab = signed_in_router_page(browser, asgi_server, "noc", router)
    assert "live: connected" in tab.inner_text("[data-live-indicator]")
    tab.evaluate("window.notReloaded = true")

    publish(router, progress(router, "system", "running"))
    tab.wait_for_selector('tr[data-probe="system"][data-status="running"]')
    assert "◷ running" in tab.inner_text('tr[data-probe="system"]')

    publish(router, progress(router, "system", "ok", duration_s=0.123, error=""))
    tab.wait_for_selector('tr[data-probe="system"][data-status="ok"]')
    assert "● ok" in tab.inner_text('tr[data-probe="system"]')
    assert "0.12 s" in tab.inner_text('tr[data-probe="system"]')

    publish(router, progress(router, "dnsmasq", "error", duration_s=0.4, error="exit status 1: no such process"))
    tab.wait_for_selector('tr[data-probe="dnsmasq"][data-status="error"]')
    assert "▲ failed" in tab.inner_text('tr[data-probe="dnsmasq"]')
    assert "exit status 1: no such process" in tab.inner_text('tr[data-probe="dnsmasq"]')
    assert "2 probes done, 1 failed" in tab.inner_text("[data-live-summary]")

    publish(
        router,
        {
            "type": "collection.finished",
            "collection_id": 77,
            "router_id": router.pk,
            "status": "succeeded",
            "reason": "",
            "error": "",
            "duration_s": 3.5,
            "probe_errors": 1,
        },
    )
    tab.wait_for_selector('[data-live-outcome][data-outcome="succeeded"]')
    assert "● Succeeded in 3.50 s, 1 probe(s) with errors" in tab.inner_text("[data-live-outcome]")
    assert tab.evaluate("window.notReloaded") is True


def test_it_names_the_reason_when_a_collection_fails_and_marks_the_unanswered_probe(asgi_server, browser, router):
    _user("noc", operator=False)
    tab = signed_in_router_page(browser, asgi_server, "noc", router)
    publish(router, progress(router, "routes", "running", collection_id=78))
    publish(
        router,
        {
            "type": "collection.finished",
            "collection_id": 78,
            "router_id": router.pk,
            "status": "failed",
            "reason": "job_lost",
            "error": "could not enqueue",
            "duration_s": None,
            "probe_errors": 0,
        },
    )
    tab.wait_for_selector('[data-live-outcome][data-outcome="failed"]')
    outcome = tab.inner_text("[data-live-outcome]")
    assert "▲ Failed: the job was lost (worker killed or Redis restarted) — could not enqueue." in outcome
    assert "■ no answer" in tab.inner_text('tr[data-probe="routes"]')


def test_it_hides_collect_now_from_a_viewer(asgi_server, browser, router):
    _user("noc", operator=False)
    tab = signed_in_router_page(browser, asgi_server, "noc", router)
    assert tab.query_selector("[data-collect-button]") is None


def test_it_queues_a_collection_when_an_operator_clicks_collect_now(asgi_server, browser, router, collect_queue):
    _user("oncall", operator=True)
    tab = signed_in_router_page(browser, asgi_server, "oncall", router)
    assert "read-only probes" in tab.inner_text("#live-panel")
    tab.click("[data-collect-button]")
    tab.wait_for_selector("text=queued.")
    collection = Collection.objects.get(router=router)
    assert f"✓ Collection #{collection.pk} queued." in tab.inner_text("[data-collect-message]")
    assert "◷ Queued" in tab.inner_text("[data-live-outcome]")
    assert tab.is_disabled("[data-collect-button]")
    assert [job.args for job in collect_queue.get_jobs()] == [(router.pk, collection.pk)]


def test_it_says_it_is_reconnecting_and_catches_up_after_a_server_restart(own_server, browser, router):
    _user("noc", operator=False)
    tab = signed_in_router_page(browser, own_server.url, "noc", router)
    own_server.stop()
    tab.wait_for_selector('#live-panel[data-live-status="disconnected"]')
    assert "live: reconnecting" in tab.inner_text("[data-live-indicator]")
    # Finished while the page was cut off: the state sent on reconnect must show it.
    collection = Collection.objects.create(router=router, status="succeeded", duration_s=2.0)
    ProbeResult.objects.create(collection=collection, name="routes", ok=True, duration_s=0.2)
    own_server.start()
    tab.wait_for_selector('#live-panel[data-live-status="connected"]', timeout=4 * WAIT_MS)
    # A finished run folds its table under the summary line (one click away).
    tab.wait_for_selector('tr[data-probe="routes"][data-status="ok"]', state="attached")
    assert "● Succeeded in 2.00 s" in tab.inner_text("[data-live-outcome]")
    assert tab.inner_text("[data-live-summary]").startswith("1 probe, 0 failed, in 2.00 s")
