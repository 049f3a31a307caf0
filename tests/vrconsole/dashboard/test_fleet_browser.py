"""Browser tests of the fleet pages' small scripts: the remembered theme and the copy buttons.

They drive Debian's chromium through Playwright against pytest-django's live server.
"""

from __future__ import annotations

import os
import shutil

import pytest
from django.contrib.auth import get_user_model

from tests.vrconsole.router_factory import make_region, make_router, make_zone

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "browser-test-password-1"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed"),
]


@pytest.fixture
def page(live_server, transactional_db, monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls here are ordinary test setup.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    playwright_api = pytest.importorskip("playwright.sync_api")
    get_user_model().objects.create_user("noc", password=PASSWORD)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context()
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
        tab = context.new_page()
        tab.goto(f"{live_server.url}/login/")
        tab.fill("input[name=username]", "noc")
        tab.fill("input[name=password]", PASSWORD)
        tab.click("button[type=submit]")
        tab.wait_for_url(f"{live_server.url}/")
        yield tab
        browser.close()


def test_it_remembers_the_light_theme_across_pages(page, live_server):
    assert page.get_attribute("html", "data-theme") == "dark"
    page.click("#theme-toggle")
    assert page.get_attribute("html", "data-theme") == "light"
    page.goto(f"{live_server.url}/?state=Error")
    assert page.get_attribute("html", "data-theme") == "light"


def test_it_copies_the_uuid_with_one_click(page, live_server):
    router = make_router(make_zone(make_region()), name="r-1-VM")
    page.goto(f"{live_server.url}/routers/{router.uuid}/")
    page.click(f'button[data-copy="{router.uuid}"]')
    page.wait_for_selector("button.copied")
    assert page.evaluate("navigator.clipboard.readText()") == router.uuid


def test_it_pauses_the_auto_refresh_and_remembers_it(page, live_server):
    page.click("#refresh-toggle")
    assert "resume" in page.inner_text("#refresh-toggle")
    page.reload()
    assert "resume" in page.inner_text("#refresh-toggle")
