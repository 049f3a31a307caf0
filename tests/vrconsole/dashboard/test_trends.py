"""The fleet trends page: top-N routers per series from aggregates, status and findings over time."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from diagnostics.models import HealthSample
from diagnostics.rollup import record_fleet_counts, roll_up
from tests.vrconsole.router_factory import make_region, make_router, make_zone
from vrconsole.dashboard.trends import fleet_trends

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet():
    zone = make_zone(make_region())
    now = timezone.now()
    routers = []
    for number, fill in ((1, 20.0), (2, 95.0), (3, 60.0)):
        router = make_router(zone, name=f"r-{number}-VM")
        routers.append(router)
        for hours in range(30, 0, -1):
            HealthSample.objects.create(
                router=router,
                at=now - timedelta(hours=hours),
                conntrack_percent=fill + (hours % 3),
                cpu_percent=fill / 2,
            )
        HealthSample.objects.create(router=router, at=now - timedelta(minutes=1), conntrack_percent=100 - fill)
    roll_up(now + timedelta(hours=1))
    record_fleet_counts(now)
    return routers


def test_it_ranks_routers_by_the_range_average_from_the_rollups(fleet) -> None:
    tables = {table.series: table for table in fleet_trends("7d", "avg")["tables"]}
    rows = tables["conntrack_percent"].rows
    assert [row.name for row in rows] == ["r-2-VM", "r-3-VM", "r-1-VM"]
    assert rows[0].peak >= rows[0].avg >= 90 and rows[0].sparkline.startswith("M")


def test_it_ranks_by_the_latest_sample_when_asked(fleet) -> None:
    tables = {table.series: table for table in fleet_trends("24h", "now")["tables"]}
    assert [row.name for row in tables["conntrack_percent"].rows] == ["r-1-VM", "r-3-VM", "r-2-VM"]
    assert tables["conntrack_percent"].rows[0].now == 80.0


def test_the_page_embeds_the_counts_figures_and_links_to_each_router(client, fleet) -> None:
    client.force_login(get_user_model().objects.create_user("viewer", password="not-used-here-123"))
    response = client.get(reverse("fleet-trends"), {"range": "30d", "rank": "peak"})
    html = response.content.decode()
    assert response.status_code == 200
    assert reverse("router-detail", args=[fleet[1].uuid]) in html
    start = html.index('id="status-figure"')
    figure = json.loads(html[html.index(">", start) + 1 : html.index("</script>", start)])
    assert {trace["name"] for trace in figure["data"]} == {"critical", "warning", "ok", "unknown"}
    unknown = next(trace for trace in figure["data"] if trace["name"] == "unknown")
    assert 3 in unknown["y"]
    assert "vendor/plotly/plotly.min.js" in html
