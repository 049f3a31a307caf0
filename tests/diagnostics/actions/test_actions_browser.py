"""In a real browser: an operator confirms an action, watches its progress and sees CloudStack's result.

Daphne serves the console from a subprocess (tests/diagnostics/test_live_browser.py's server);
Debian's chromium, driven by Playwright, signs in and opens a router of the simulator's fleet,
synced into this test run's database. The queued action is run by a real RQ worker (a
SimpleWorker, in a thread of this process, where the simulator is the configured region):
its steps reach the page through the real channel layer and the actions socket.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import django_rq
import pytest
from django.db import connections
from rq import SimpleWorker
from rq.timeouts import TimerDeathPenalty

from devcloud.simulator.server import RunningSimulator
from diagnostics.models import ActionRun, ActionStatus
from tests.diagnostics.actions.support import operator, pick, viewer
from tests.diagnostics.test_live_browser import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, running_server
from vrconsole.models import Region, Router
from vrconsole.queues import ACTIONS

PASSWORD_OF = {"oncall": "operator-password-1", "watcher": "viewer-password-1"}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(scope="module")
def console(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    with running_server(django_db_blocker) as server:
        yield server.url


@pytest.fixture
def chromium(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            connections.close_all()


@pytest.fixture
def actions_queue() -> Iterator[Any]:
    queue = django_rq.get_queue(ACTIONS)
    queue.empty()
    yield queue
    queue.empty()


def open_router(browser: Any, server: str, username: str, router: Router) -> Any:
    tab = browser.new_context().new_page()
    tab.set_default_timeout(WAIT_MS)
    tab.goto(f"{server}/login/")
    tab.fill("input[name=username]", username)
    tab.fill("input[name=password]", PASSWORD_OF[username])
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{server}/")
    tab.goto(f"{server}/routers/{router.uuid}/")
    return tab


class ThreadWorker(SimpleWorker):
    """A SimpleWorker that can run off the main thread (only the main thread may install signal handlers)."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        return None


def run_the_queued_jobs(queue: Any) -> None:
    """What the actions worker does, in a thread (Playwright's loop holds this one)."""

    def work() -> None:
        try:
            ThreadWorker([queue], connection=queue.connection).work(burst=True)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(work).result()


def confirm(tab: Any, action: str, reason: str) -> None:
    tab.click(f'button[data-open-action="{action}"]')
    dialog = tab.locator(f'[id="action-dialog-{action}"]')
    dialog.wait_for(state="visible")
    assert "What will happen" in dialog.inner_text()
    dialog.locator("textarea[name=reason]").fill(reason)
    dialog.locator("[data-confirm]").click()
    tab.wait_for_selector("text=queued (run #")


def test_an_operator_confirms_a_reboot_watches_it_and_sees_the_result(
    console: str, chromium: Any, sim: RunningSimulator, synced: Region, actions_queue: Any
) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False, vpc=False)
    operator()
    tab = open_router(chromium, console, "oncall", router)
    tab.wait_for_selector('#actions[data-actions-status="connected"]')
    tab.evaluate("window.notReloaded = true")
    # The confirmation says what will happen before anything is sent.
    tab.click('button[data-open-action="reboot"]')
    assert "CloudStack stops" in tab.inner_text('[id="action-dialog-reboot"]')
    tab.click('[id="action-dialog-reboot"] [data-close-dialog]')

    confirm(tab, "reboot", "INC-4242 router flapping")
    run = ActionRun.objects.get()
    assert tab.get_attribute(f'tr[data-action-id="{run.pk}"]', "data-status") in ("pending", "running")

    run_the_queued_jobs(actions_queue)

    row = f'tr[data-action-id="{run.pk}"]'
    tab.wait_for_selector(f'{row}[data-status="succeeded"]')
    run.refresh_from_db()
    assert run.status == ActionStatus.SUCCEEDED
    text = tab.inner_text(row)
    assert "● succeeded" in text and run.job_id in text and "Running" in text
    steps = tab.locator(f"{row} [data-action-steps] li").all_text_contents()
    assert any(step.startswith(tuple("0123456789")) and "submitted: rebootRouter accepted" in step for step in steps), (
        steps
    )
    assert any("job: job" in step for step in steps)
    assert f"reboot succeeded (job {run.job_id})" in tab.inner_text("[data-actions-message]")
    assert tab.evaluate("window.notReloaded") is True


def test_a_failed_job_shows_cloudstacks_error_text(
    console: str, chromium: Any, sim: RunningSimulator, synced: Region, actions_queue: Any
) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False, vpc=False)
    sim.set_router(router.uuid, state="Stopped")
    Router.objects.filter(pk=router.pk).update(state="Stopped")
    operator()
    tab = open_router(chromium, console, "oncall", router)
    tab.wait_for_selector('#actions[data-actions-status="connected"]')
    tab.click('button[data-open-action="reboot"]')
    dialog = tab.locator('[id="action-dialog-reboot"]')
    # CloudStack will refuse: the page says so, and the warning must be acknowledged.
    assert "CloudStack reboots only a Running router" in dialog.inner_text()
    dialog.locator("textarea[name=reason]").fill("INC-5 try anyway")
    dialog.locator("[data-confirm]").click()
    # The browser does not submit until the warning is acknowledged.
    assert dialog.locator("input[name=acknowledge]").evaluate("e => e.validity.valueMissing") is True
    assert not ActionRun.objects.exists()
    dialog.locator("input[name=acknowledge]").check()
    dialog.locator("[data-confirm]").click()
    tab.wait_for_selector("text=queued (run #")
    run_the_queued_jobs(actions_queue)
    run = ActionRun.objects.get()
    tab.wait_for_selector(f'tr[data-action-id="{run.pk}"][data-status="failed"]')
    assert "Unable to reboot domR, it is not in right state Stopped" in tab.inner_text(f'tr[data-action-id="{run.pk}"]')


def test_a_viewer_gets_no_action_and_no_actions_socket(
    console: str, chromium: Any, sim: RunningSimulator, synced: Region
) -> None:
    router = pick(sim, synced, state="Running")
    viewer()
    tab = open_router(chromium, console, "watcher", router)
    tab.wait_for_selector('#live-panel[data-live-status="connected"]')
    assert tab.query_selector("[data-open-action]") is None
    assert tab.query_selector("[data-actions-indicator]") is None
    assert "are run by operators" in tab.inner_text("#actions")
