"""Tests of the live fleet wall's server side: the rows endpoint and the events that drive it.

The page (static/js/fleet.js) asks `fleet/rows/` for the rows an event named; the browser
test (tests/vrconsole/dashboard/test_fleet_live_browser.py) drives the whole loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from devcloud.simulator.server import RunningSimulator, start_simulator
from diagnostics.models import STATUS_RANKS, RouterHealth
from tests.vrconsole.router_factory import make_region, make_router, make_zone
from vrconsole import events, jobs
from vrconsole.cloudstack.regions import RegionConfig
from vrconsole.models import Router
from vrconsole.sync import sync_region

pytestmark = pytest.mark.django_db


@pytest.fixture
def zone():
    return make_zone(make_region())


@pytest.fixture
def viewer_client(client):
    client.force_login(get_user_model().objects.create_user("noc", password="not-used-here-123"))
    return client


def rows(client, **params: str) -> dict[str, Any]:
    response = client.get(reverse("fleet-rows"), params)
    assert response.status_code == 200
    return response.json()


def judged(router: Router, status: str) -> Router:
    RouterHealth.objects.create(router=router, status=status, rank=STATUS_RANKS[status], collection_status="succeeded")
    return router


def test_it_needs_a_signed_in_user(client):
    response = client.get(reverse("fleet-rows"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_it_renders_only_the_rows_that_changed_and_gives_the_page_order(viewer_client, zone):
    first = judged(make_router(zone, name="r-1-VM"), "ok")
    second = judged(make_router(zone, name="r-2-VM"), "critical")
    data = rows(viewer_client, changed=str(first.pk), shown=f"{first.pk},{second.pk}")
    assert data["order"] == [second.pk, first.pk]  # worst first
    assert list(data["rows"]) == [str(first.pk)]
    assert f'data-router-id="{first.pk}"' in data["rows"][str(first.pk)]
    assert "r-1-VM" in data["rows"][str(first.pk)] and "● ok" in data["rows"][str(first.pk)]


def test_it_renders_a_row_that_enters_the_page(viewer_client, zone):
    known = judged(make_router(zone, name="r-1-VM"), "ok")
    newcomer = make_router(zone, name="r-2-VM", state="Error")
    data = rows(viewer_client, changed="", shown=str(known.pk))
    assert data["order"] == [newcomer.pk, known.pk]
    assert list(data["rows"]) == [str(newcomer.pk)]


def test_it_keeps_the_pages_filters_and_sort(viewer_client, zone):
    judged(make_router(zone, name="r-1-VM"), "ok")
    crit = judged(make_router(zone, name="r-2-VM"), "critical")
    data = rows(viewer_client, status="critical", all="1")
    assert data["order"] == [crit.pk]
    assert "1</strong> router match" in data["count"]


def test_it_renders_every_row_when_asked_to_refresh_all(viewer_client, zone):
    routers = [make_router(zone, name=f"r-{n}-VM") for n in range(3)]
    data = rows(viewer_client, all="1", shown=",".join(str(r.pk) for r in routers))
    assert sorted(data["rows"]) == sorted(str(r.pk) for r in routers)


def test_it_sends_the_summary_band_and_the_empty_row(viewer_client, zone):
    data = rows(viewer_client, all="1", state="Error")
    assert data["order"] == [] and "data-fleet-empty" in data["empty"]
    assert '<section class="summary"' in data["summary"]


def test_it_ignores_ids_that_are_not_numbers(viewer_client, zone):
    router = make_router(zone)
    data = rows(viewer_client, changed="1;drop table,abc,-4", shown="x," + str(router.pk))
    assert data["order"] == [router.pk] and data["rows"] == {}


def test_the_fleet_page_opens_the_fleet_socket_and_no_longer_reloads_itself(viewer_client, zone):
    html = viewer_client.get(reverse("fleet")).content.decode()
    assert 'data-socket-path="/ws/fleet/"' in html and f'data-rows-url="{reverse("fleet-rows")}"' in html
    assert "data-refresh-seconds" not in html
    assert "worst first" in html


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    running = start_simulator(routers=20, seed=3)
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.django_db(transaction=True)
def test_a_sync_names_the_routers_whose_rows_changed(sim, monkeypatch):
    region = RegionConfig("lab", sim.url, sim.api_key, sim.secret_key, timeout=5)
    first = sync_region(region)
    assert len(first.changed_router_ids) == Router.objects.count() == first.routers
    assert "changed_router_ids" not in first.as_json()
    router = Router.objects.filter(state="Running").order_by("pk").first()
    sim.set_router(router.uuid, state="Stopped")
    second = sync_region(region)
    assert second.changed_router_ids == [router.pk]

    published: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(events, "publish", lambda group, message: published.append((group, dict(message))))
    jobs.publish_sync(second)
    assert [message["type"] for _, message in published] == ["fleet.routers", "sync.finished"]
    assert published[0] == (
        events.FLEET_GROUP,
        {"type": "fleet.routers", "region": "lab", "router_ids": [router.pk], "truncated": False},
    )


def test_a_big_change_asks_pages_to_refresh_every_row(monkeypatch):
    from vrconsole.sync import SyncResult

    published: list[dict[str, Any]] = []
    monkeypatch.setattr(events, "publish", lambda group, message: published.append(dict(message)))
    result = SyncResult("lab", 900, 900, 0, 0, 0, 1.0, changed_router_ids=list(range(1, 901)))
    jobs.publish_sync(result)
    assert published[0]["truncated"] is True and len(published[0]["router_ids"]) == jobs.MAX_ROUTER_IDS_PER_EVENT
