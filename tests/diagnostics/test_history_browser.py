"""Browser test: the router page draws its health charts from real lab collections, in both themes.

A lab of its own (name `vrch`, block 198.19.65.0/24 shifted per run) is synced through the
CloudStack simulator; its isolated router is collected and judged three times with the real
probes over SSH, so the charts hold samples (and interface rates, which need two). Daphne
serves the console from a subprocess; Debian's chromium, driven by Playwright, signs in,
opens the router page and waits for plotly to draw every figure, then switches the theme and
checks that the charts follow it without a reload.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from devcloud.lab.topology import LabPlan
from diagnostics.jobs import collect_and_evaluate
from diagnostics.models import Collection, CollectionStatus, HealthSample
from tests.diagnostics.lab_inventory import fresh_lab, sync_lab_inventory
from tests.diagnostics.test_live_browser import CHROMIUM, CHROMIUM_ARGS, PASSWORD, WAIT_MS, running_server
from tests.lab_slots import lab_block, lab_name
from vrconsole.models import Router

pytestmark = [
    pytest.mark.lab,
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="chromium is not installed"),
    pytest.mark.django_db(transaction=True),
]

LAB_NAME = lab_name("vrch")
LAB_BLOCK = lab_block(65)
# The themes' --bg-raised (static/css/console.css): the charts' paper must take it.
PAPER = {"dark": "rgb(26, 31, 38)", "light": "rgb(255, 255, 255)"}


@pytest.fixture(scope="module")
def history_lab() -> Iterator[LabPlan]:
    with fresh_lab(LAB_NAME, LAB_BLOCK) as plan:
        yield plan


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
            from django.db import connections

            connections.close_all()


def paper_colour(tab: Any, chart: str) -> str:
    return tab.evaluate(f"getComputedStyle(document.querySelector('#chart-{chart} .main-svg')).backgroundColor")


def test_the_router_page_draws_charts_of_real_collections_in_both_themes(
    history_lab: LabPlan, browser: Any, settings: Any, tmp_path: Path, django_db_blocker: Any
) -> None:
    settings.SSH_KNOWN_HOSTS_FILE = str(tmp_path / "known_hosts")
    settings.SSH_OVERRIDES = {}
    region = sync_lab_inventory(LAB_NAME, f"lab-{LAB_NAME}")
    name = next(router.name for router in history_lab.routers if router.kind == "isolated")
    router = Router.objects.get(region=region, name=name)
    for _ in range(3):
        collection = collect_and_evaluate(Collection.objects.create(router=router), publish=lambda *_: None)
        assert collection.status == CollectionStatus.SUCCEEDED, collection.error
    samples = list(HealthSample.objects.filter(router=router).order_by("at"))
    assert len(samples) == 3 and samples[-1].conntrack_max and samples[-1].per_nic
    assert any(values[0] is not None for values in samples[-1].per_nic.values())  # rates from two collections
    get_user_model().objects.create_user("noc", password=PASSWORD)

    with running_server(django_db_blocker) as server:
        tab = browser.new_context().new_page()
        tab.set_default_timeout(WAIT_MS)
        tab.goto(f"{server.url}/login/")
        tab.fill("input[name=username]", "noc")
        tab.fill("input[name=password]", PASSWORD)
        tab.click("button[type=submit]")
        tab.wait_for_url(f"{server.url}/")
        tab.goto(f"{server.url}/routers/{router.uuid}/?range=1h#charts")
        tab.wait_for_selector('#charts[data-chart-state="ready"]', timeout=3 * WAIT_MS)
        assert "3 sample(s)" in tab.inner_text("[data-chart-status]")
        for chart in ("conntrack", "cpu", "memory", "disk", "iptables"):
            tab.wait_for_selector(f'#chart-{chart}[data-chart-drawn="true"]')
            assert tab.locator(f"#chart-{chart} .scatterlayer .trace").count() >= 1, chart
        assert tab.locator(".chart[id^=chart-nic-]").count() >= 1
        assert paper_colour(tab, "conntrack") == PAPER["dark"]

        tab.click("#theme-toggle")
        tab.wait_for_selector('#chart-conntrack[data-chart-theme="light"]')
        assert paper_colour(tab, "conntrack") == PAPER["light"]
        assert paper_colour(tab, "memory") == PAPER["light"]

        tab.click('[data-range="24h"]')
        tab.wait_for_function("location.search.includes('range=24h')")
        tab.wait_for_selector('#charts[data-chart-state="ready"]')
        assert "buckets of 5 min" in tab.inner_text("[data-chart-status]")
        assert paper_colour(tab, "conntrack") == PAPER["light"]
