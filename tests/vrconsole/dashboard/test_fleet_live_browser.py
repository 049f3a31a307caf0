"""Browser test of the fleet wall moving by itself, in Debian's chromium through Playwright.

The inventory comes from the CloudStack simulator through the real sync; daphne serves the
console from a subprocess (tests/diagnostics/test_live_browser.py's server). The test flips a
router's state in the simulator, syncs (publishing the fleet events as the sync job does)
and reads the router's row and the summary band change on the open page, without a reload.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from devcloud.simulator.server import RunningSimulator, start_simulator
from tests.chromium import chromium
from tests.diagnostics.test_live_browser import CHROMIUM, PASSWORD, WAIT_MS, running_server
from vrconsole.cloudstack.regions import RegionConfig
from vrconsole.jobs import publish_sync
from vrconsole.models import Router
from vrconsole.sync import sync_region

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    running = start_simulator(routers=12, seed=11)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def fleet_server(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    with running_server(django_db_blocker) as server:
        yield server.url


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def sync_and_publish(sim: RunningSimulator) -> None:
    """What the sync job does, from a thread of its own (Playwright's loop holds this one)."""

    def job() -> None:
        try:
            publish_sync(sync_region(RegionConfig("lab", sim.url, sim.api_key, sim.secret_key, timeout=10)))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(job).result()


def test_a_state_flip_in_cloudstack_changes_the_row_without_a_reload(sim, fleet_server, browser):
    sync_and_publish(sim)
    get_user_model().objects.create_user("wall", password=PASSWORD)
    router = Router.objects.filter(state="Running").order_by("name").first()
    assert router is not None
    tab = browser.new_context().new_page()
    tab.set_default_timeout(WAIT_MS)
    tab.goto(f"{fleet_server}/login/")
    tab.fill("input[name=username]", "wall")
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{fleet_server}/")
    tab.wait_for_selector('#live-fleet[data-live-status="connected"]')
    assert "● live" in tab.inner_text("[data-live-indicator]")
    row = f'tr[data-router-id="{router.pk}"]'
    assert "Running" in tab.inner_text(f"{row} td:nth-child(3)")
    tab.evaluate("window.notReloaded = true")

    sim.set_router(router.uuid, state="Stopped")
    sync_and_publish(sim)

    tab.wait_for_function(
        "selector => { const cell = document.querySelector(selector); return cell && cell.innerText.includes('Stopped'); }",
        arg=f"{row} td:nth-child(3)",
    )
    assert tab.evaluate("window.notReloaded") is True
    assert tab.is_visible(f"{row}.row-changed") or "Stopped" in tab.inner_text(row)
    assert "Stopped" in tab.inner_text("section.summary")


# The page's socket never connects (as behind a proxy that drops WebSockets), and its
# 30-second fallback runs every 0.3 s: the same refresh, with the clock compressed.
NO_SOCKET = """
window.WebSocket = function () {
  var socket = this;
  window.setTimeout(function () { if (socket.onclose) { socket.onclose({ code: 1006 }); } }, 20);
};
window.WebSocket.OPEN = 1;
var realInterval = window.setInterval;
window.setInterval = function (run, ms) { return realInterval(run, ms >= 30000 ? 300 : ms); };
"""


def test_without_a_socket_it_says_so_and_refreshes_the_rows_by_itself(sim, fleet_server, browser):
    sync_and_publish(sim)
    get_user_model().objects.create_user("wall", password=PASSWORD)
    router = Router.objects.filter(state="Running").order_by("name").first()
    assert router is not None
    context = browser.new_context()
    context.add_init_script(NO_SOCKET)
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    tab.goto(f"{fleet_server}/login/")
    tab.fill("input[name=username]", "wall")
    tab.fill("input[name=password]", PASSWORD)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{fleet_server}/")
    tab.wait_for_selector('#live-fleet[data-live-status="disconnected"]')
    assert "live: disconnected, refreshing every 30 s" in tab.inner_text("[data-live-indicator]")
    tab.evaluate("window.notReloaded = true")

    sim.set_router(router.uuid, state="Stopped")
    sync_and_publish(sim)

    tab.wait_for_function(
        "selector => { const cell = document.querySelector(selector); return cell && cell.innerText.includes('Stopped'); }",
        arg=f'tr[data-router-id="{router.pk}"] td:nth-child(3)',
    )
    assert tab.evaluate("window.notReloaded") is True
