"""Browser tests of the on-call parts of the pages, in Debian's chromium through Playwright:
the fleet page's keys, "Copy for ticket", acknowledging from the router page, and the router
page's order as a user sees it (the findings above the triage table).

They run against pytest-django's live server (no sockets: the live panels stay disconnected,
which these tests do not need).
"""

from __future__ import annotations

import os
import shutil

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from diagnostics.models import Finding
from tests.diagnostics.matrix_doubles import FakeMatrix, finished_collection, stored_facts
from tests.vrconsole.router_factory import make_region, make_router, make_zone
from vrconsole.roles import OPERATOR

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "browser-test-password-1"
WAIT_MS = 15_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed"),
]


@pytest.fixture
def page(live_server, transactional_db, monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls here are ordinary test setup.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    playwright_api = pytest.importorskip("playwright.sync_api")
    user = get_user_model().objects.create_user("ana", password=PASSWORD)
    user.groups.add(Group.objects.get_or_create(name=OPERATOR)[0])
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
        tab = context.new_page()
        tab.set_default_timeout(WAIT_MS)
        tab.goto(f"{live_server.url}/login/")
        tab.fill("input[name=username]", "ana")
        tab.fill("input[name=password]", PASSWORD)
        tab.click("button[type=submit]")
        tab.wait_for_url(f"{live_server.url}/")
        yield tab
        browser.close()


@pytest.fixture
def failing_router():
    zone = make_zone(make_region(), name="zone-a")
    router = make_router(zone, name="r-231-VM", account="acme")
    matrix = FakeMatrix()
    matrix.fire("dnsmasq-not-running", "pidof dnsmasq returned nothing")
    matrix.fire("var-log-nearly-full", "/var/log 97% (23.3 of 24.0 MB)")
    matrix.evaluate(router, finished_collection(router, facts=stored_facts("processes", "disk")))
    return router


def test_the_fleet_page_moves_by_keys(page, live_server):
    zone = make_zone(make_region(), name="zone-k")
    routers = [make_router(zone, name=f"r-{n}-VM") for n in (101, 102, 103)]
    page.goto(f"{live_server.url}/?sort=name")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "fleet-search"
    page.keyboard.press("Escape")
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert page.get_attribute("tr.kbd-current", "data-router-id") == str(routers[1].pk)
    page.keyboard.press("k")
    assert page.get_attribute("tr.kbd-current", "data-router-id") == str(routers[0].pk)
    page.keyboard.press("?")
    assert page.is_visible("#keys-help")
    assert "next router" in page.inner_text("#keys-help")
    page.keyboard.press("Escape")
    assert not page.is_visible("#keys-help")
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/routers/{routers[1].uuid}/")


def test_typing_j_in_the_search_types_it(page, live_server):
    make_router(make_zone(make_region(), name="zone-k"), name="r-1-VM")
    page.goto(live_server.url)
    page.keyboard.press("/")
    page.keyboard.type("jk")
    assert page.input_value("#fleet-search") == "jk"
    assert page.query_selector("tr.kbd-current") is None


def test_copy_for_ticket_copies_the_report_in_both_forms(page, live_server, failing_router):
    page.goto(f"{live_server.url}/routers/{failing_router.uuid}/")
    page.click('button[data-copy-ticket="markdown"]')
    page.wait_for_selector("button.copied")
    markdown = page.evaluate("navigator.clipboard.readText()")
    assert markdown.startswith("### Router r-231-VM: 2 open finding(s)")
    assert "**CRITICAL** `dnsmasq-not-running` (dhcp)" in markdown
    assert "pidof dnsmasq returned nothing" in markdown
    assert f"Router page: `/routers/{failing_router.uuid}/`" in markdown
    page.wait_for_selector("button.copied", state="detached")
    page.click('button[data-copy-ticket="text"]')
    page.wait_for_selector("button.copied")
    text = page.evaluate("navigator.clipboard.readText()")
    assert text.startswith("Router r-231-VM: 2 open finding(s)")
    assert "[WARNING] var-log-nearly-full (disk)" in text
    assert "  | /var/log 97% (23.3 of 24.0 MB)" in text


def test_the_router_page_shows_the_findings_above_the_triage_table(page, live_server, failing_router):
    page.goto(f"{live_server.url}/routers/{failing_router.uuid}/")
    status = page.locator("#router-answer").bounding_box()
    findings = page.locator("#findings").bounding_box()
    triage = page.locator("#live-panel").bounding_box()
    assert status is not None and findings is not None and triage is not None
    assert status["y"] < findings["y"] < triage["y"]
    # The answer is on the first screen: status, freshness and the worst finding.
    assert findings["y"] < 900
    assert "▲ critical" in page.inner_text("#router-answer")
    assert "last collected" in page.inner_text("#router-answer")
    titles = page.locator("li.finding .finding-head strong").all_inner_texts()
    assert titles == ["dnsmasq-not-running", "var-log-nearly-full"]
    # The probe table is one click away, folded under its summary line.
    assert not page.is_visible("[data-live-table]")
    assert "probes, 0 failed" in page.inner_text("[data-live-summary]")


def test_an_operator_acknowledges_from_the_router_page(page, live_server, failing_router):
    page.goto(f"{live_server.url}/routers/{failing_router.uuid}/")
    item = page.locator("#finding-dnsmasq-not-running")
    item.locator("details.acknowledge summary").click()
    item.locator("input[name=comment]").fill("on it, INC-4411")
    item.locator("form.acknowledge-form button[type=submit]").click()
    page.wait_for_selector("#finding-dnsmasq-not-running [data-acknowledged]")
    assert "✓ Acknowledged by ana" in page.inner_text("#finding-dnsmasq-not-running [data-acknowledged]")
    assert "on it, INC-4411" in page.inner_text("#finding-dnsmasq-not-running")
    assert Finding.objects.get(router=failing_router, rule="dnsmasq-not-running").is_acknowledged
    assert "(1 acknowledged)" in page.inner_text("#router-answer")
