"""Tests of the verdict status on the fleet dashboard: column, findings, filter, summary counts, query bound."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from diagnostics.models import STATUS_RANKS, Finding, RouterHealth
from tests.vrconsole.router_factory import build_router, make_region, make_router, make_zone
from vrconsole.dashboard import queries
from vrconsole.models import Router

pytestmark = pytest.mark.django_db

# Same bound as tests/vrconsole/test_fleet_views.py: the status and findings columns are joined, not queried per row.
FLEET_QUERY_BOUND = 17


@pytest.fixture
def zone():
    return make_zone(make_region())


@pytest.fixture
def viewer_client(client):
    client.force_login(get_user_model().objects.create_user("noc", password="not-used-here-123"))
    return client


def with_status(router: Router, status: str, *findings: tuple[str, str, str]) -> Router:
    """Give the router a status row and open findings (rule, category, severity)."""
    for rule, category, severity in findings:
        Finding.objects.create(router=router, rule=rule, category=category, severity=severity, title=rule)
    RouterHealth.objects.create(
        router=router,
        status=status,
        rank=STATUS_RANKS[status],
        categories=",".join(category for _, category, _ in findings),
        collection_status="succeeded",
    )
    return router


def fleet_html(client, query: str = "") -> str:
    response = client.get(reverse("fleet") + query)
    assert response.status_code == 200
    return response.content.decode()


def test_it_shows_the_status_as_glyph_and_text(viewer_client, zone):
    with_status(make_router(zone, name="r-1-VM"), "critical", ("dnsmasq-not-running", "dhcp", "critical"))
    with_status(make_router(zone, name="r-2-VM"), "warning", ("var-log-nearly-full", "disk", "warning"))
    with_status(make_router(zone, name="r-3-VM"), "ok")
    html = fleet_html(viewer_client)
    for text in ("▲ critical", "⚠ warning", "● ok"):
        assert text in html


def test_it_shows_unknown_for_a_router_never_evaluated_and_says_why(viewer_client, zone):
    make_router(zone, name="r-new-VM", hypervisor="VMware", link_local_ip="198.19.5.5")
    html = fleet_html(viewer_client)
    assert '? unknown</span> <span class="why" title="not collected yet' in html
    assert ">never collected</span>" in html


def test_it_lists_the_categories_of_open_findings(viewer_client, zone):
    with_status(
        make_router(zone, name="r-1-VM"),
        "critical",
        ("dnsmasq-not-running", "dhcp", "critical"),
        ("var-log-nearly-full", "disk", "warning"),
    )
    html = fleet_html(viewer_client)
    assert '<a href="?category=dhcp">dhcp</a>, <a href="?category=disk">disk</a>' in html


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("critical", {"r-crit-VM"}),
        ("warning", {"r-warn-VM"}),
        ("ok", {"r-ok-VM"}),
        ("unknown", {"r-new-VM", "r-unk-VM"}),
    ],
)
def test_it_filters_the_list_by_status(zone, status, expected):
    with_status(make_router(zone, name="r-crit-VM"), "critical")
    with_status(make_router(zone, name="r-warn-VM"), "warning")
    with_status(make_router(zone, name="r-ok-VM"), "ok")
    with_status(make_router(zone, name="r-unk-VM"), "unknown")
    make_router(zone, name="r-new-VM")
    routers = queries.filter_routers(queries.FleetCriteria(status=status))
    assert {router.name for router in routers} == expected


def test_it_reads_the_status_filter_from_the_query_string(viewer_client, zone):
    with_status(make_router(zone, name="r-crit-VM"), "critical")
    make_router(zone, name="r-new-VM")
    html = fleet_html(viewer_client, "?status=critical")
    assert "r-crit-VM" in html
    assert "r-new-VM" not in html


def test_it_ignores_an_unknown_status_value(viewer_client, zone):
    make_router(zone, name="r-new-VM")
    assert "r-new-VM" in fleet_html(viewer_client, "?status=purple")


def test_it_filters_the_list_by_open_finding_category(zone):
    with_status(make_router(zone, name="r-dhcp-VM"), "critical", ("dnsmasq-not-running", "dhcp", "critical"))
    with_status(make_router(zone, name="r-disk-VM"), "warning", ("var-log-nearly-full", "disk", "warning"))
    resolved = with_status(make_router(zone, name="r-was-VM"), "ok")
    Finding.objects.create(router=resolved, rule="x", category="dhcp", severity="critical", resolved_at=timezone.now())
    routers = queries.filter_routers(queries.FleetCriteria(category="dhcp"))
    assert [router.name for router in routers] == ["r-dhcp-VM"]


def test_it_sorts_the_worst_status_first_on_request(zone):
    with_status(make_router(zone, name="r-a-VM"), "ok")
    with_status(make_router(zone, name="r-b-VM"), "critical")
    make_router(zone, name="r-c-VM")
    with_status(make_router(zone, name="r-d-VM"), "warning")
    names = [router.name for router in queries.filter_routers(queries.FleetCriteria(sort="-status"))]
    assert names == ["r-b-VM", "r-d-VM", "r-a-VM", "r-c-VM"]


def test_it_counts_routers_per_status_in_the_summary(zone):
    with_status(make_router(zone), "critical")
    with_status(make_router(zone), "critical")
    with_status(make_router(zone), "warning")
    with_status(make_router(zone), "ok")
    with_status(make_router(zone), "unknown")
    make_router(zone)
    with_status(make_router(zone, removed_at=timezone.now()), "critical")
    summary = queries.fleet_summary()
    assert summary.by_status == {"critical": 2, "warning": 1, "ok": 1, "unknown": 2}
    assert summary.total == 6


def test_it_counts_routers_per_open_finding_category_in_the_summary(zone):
    with_status(
        make_router(zone),
        "critical",
        ("dnsmasq-not-running", "dhcp", "critical"),
        ("dhcp-leases-nearly-full", "dhcp", "warning"),
    )
    with_status(
        make_router(zone), "warning", ("dhcp-leases-nearly-full", "dhcp", "warning"), ("disk-full", "disk", "warning")
    )
    summary = queries.fleet_summary()
    assert summary.by_category == [("dhcp", 2), ("disk", 1)]


def test_it_links_the_summary_counts_to_the_filtered_list(viewer_client, zone):
    with_status(make_router(zone), "critical", ("dnsmasq-not-running", "dhcp", "critical"))
    html = fleet_html(viewer_client)
    assert 'href="?status=critical"' in html
    assert 'href="?category=dhcp"' in html


def make_evaluated_fleet(zone, count: int) -> None:
    Router.objects.bulk_create([build_router(zone, name=f"r-{n}-VM") for n in range(count)], batch_size=1000)
    statuses = ["critical", "warning", "ok", "unknown"]
    routers = list(Router.objects.values_list("pk", flat=True))
    RouterHealth.objects.bulk_create(
        [
            RouterHealth(
                router_id=pk, status=statuses[n % 4], rank=STATUS_RANKS[statuses[n % 4]], categories="dhcp,disk"
            )
            for n, pk in enumerate(routers)
            if n % 5
        ],
        batch_size=2000,
    )
    Finding.objects.bulk_create(
        [
            Finding(router_id=pk, rule="dnsmasq-not-running", category="dhcp", severity="critical")
            for pk in routers[::4]
        ],
        batch_size=2000,
    )


def test_it_renders_10000_evaluated_routers_in_the_same_query_bound(viewer_client, zone, django_assert_max_num_queries):
    make_evaluated_fleet(zone, 10_000)
    with django_assert_max_num_queries(FLEET_QUERY_BOUND):
        response = viewer_client.get(reverse("fleet") + "?per_page=500&sort=-status")
    assert response.status_code == 200
    assert "▲ critical" in response.content.decode()


def test_it_filters_10000_routers_by_status_in_the_same_query_bound(viewer_client, zone, django_assert_max_num_queries):
    make_evaluated_fleet(zone, 10_000)
    with django_assert_max_num_queries(FLEET_QUERY_BOUND):
        response = viewer_client.get(reverse("fleet") + "?per_page=500&status=unknown&category=dhcp")
    assert response.status_code == 200
