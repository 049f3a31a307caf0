"""Tests of diagnostics.router_status: a stale verdict is unknown, and unknown always says why."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from diagnostics.models import Collection, CollectionReason, CollectionStatus, RouterHealth, RouterStatus
from diagnostics.router_status import effective_status, unknown_reason
from tests.vrconsole.router_factory import make_host, make_region, make_router, make_zone
from vrconsole.dashboard import queries

pytestmark = pytest.mark.django_db


@pytest.fixture
def zone():
    return make_zone(make_region())


@pytest.fixture(autouse=True)
def allowed(settings):
    settings.SSH_ALLOWED_NETWORKS = []
    settings.SWEEP_INTERVAL_SECONDS = 300
    return settings


def health(router, status: str = RouterStatus.OK, age_s: float = 0, collection: Collection | None = None):
    return RouterHealth.objects.create(
        router=router,
        status=status,
        collection=collection,
        collection_status=collection.status if collection else CollectionStatus.SUCCEEDED,
        evaluated_at=timezone.now() - timedelta(seconds=age_s),
    )


def test_a_fresh_verdict_shows_as_it_is(zone):
    router = make_router(zone, hypervisor="VMware", link_local_ip="198.19.0.5")
    row = health(router, RouterStatus.CRITICAL, age_s=599)
    assert effective_status(row) == RouterStatus.CRITICAL
    assert unknown_reason(router, row) is None


def test_a_verdict_older_than_two_sweeps_is_unknown_and_stale(zone):
    router = make_router(zone, hypervisor="VMware", link_local_ip="198.19.0.5")
    collection = Collection.objects.create(router=router, status=CollectionStatus.SUCCEEDED)
    row = health(router, RouterStatus.CRITICAL, age_s=601, collection=collection)
    assert effective_status(row) == RouterStatus.UNKNOWN
    why = unknown_reason(router, row)
    assert why is not None and why.short == "stale"
    assert "last collected 10 min ago" in why.detail and "its status then was critical" in why.detail


def test_a_router_not_running_says_so_first(zone):
    router = make_router(zone, state="Stopped")
    why = unknown_reason(router, None)
    assert why is not None and why.short == "not Running"
    assert "CloudStack reports it Stopped" in why.detail


def test_a_router_never_collected_says_so(zone):
    router = make_router(zone, hypervisor="VMware", link_local_ip="198.19.0.5")
    why = unknown_reason(router, None)
    assert why is not None and why.short == "never collected"


def test_a_router_outside_the_allowed_networks_says_so(settings, zone):
    import ipaddress

    settings.SSH_ALLOWED_NETWORKS = [ipaddress.ip_network("198.19.0.0/16")]
    router = make_router(zone, host=make_host(zone, ipaddress="10.9.9.9"), link_local_ip="169.254.0.9")
    why = unknown_reason(router, None)
    assert why is not None and why.short == "outside SSH_ALLOWED_NETWORKS"
    assert "10.9.9.9" in why.detail


def test_a_router_without_an_address_says_so(zone):
    router = make_router(zone, hypervisor="VMware")
    why = unknown_reason(router, None)
    assert why is not None and why.short == "no address to reach it"


def test_a_failed_collection_gives_its_reason(zone):
    router = make_router(zone, hypervisor="VMware", link_local_ip="198.19.0.5")
    failed = Collection.objects.create(
        router=router, status=CollectionStatus.FAILED, reason=CollectionReason.TIMEOUT, error="no answer in 10 s"
    )
    why = unknown_reason(router, health(router, RouterStatus.UNKNOWN, collection=failed))
    assert why is not None and why.short == "collection failed: timed out"
    assert why.detail == "no answer in 10 s"


def test_the_list_filters_and_counts_a_stale_router_as_unknown(zone):
    fresh = make_router(zone, name="r-fresh-VM")
    stale = make_router(zone, name="r-stale-VM")
    health(fresh, RouterStatus.OK)
    health(stale, RouterStatus.OK, age_s=3600)
    names = lambda status: [r.name for r in queries.filter_routers(queries.FleetCriteria(status=status))]  # noqa: E731
    assert names("ok") == ["r-fresh-VM"]
    assert names("unknown") == ["r-stale-VM"]
    assert queries.fleet_summary().by_status["unknown"] == 1


def test_the_wall_sorts_worst_first_by_status_then_state(zone):
    ok = make_router(zone, name="r-a-VM")
    health(ok, RouterStatus.OK)
    make_router(zone, name="r-b-VM", state="Stopped")
    make_router(zone, name="r-c-VM", state="Error")
    crit = make_router(zone, name="r-d-VM")
    health(crit, RouterStatus.CRITICAL)
    warn = make_router(zone, name="r-e-VM")
    health(warn, RouterStatus.WARNING)
    make_router(zone, name="r-f-VM", state="Starting", state_since=timezone.now() - timedelta(hours=1))
    make_router(zone, name="r-g-VM", state="Running")
    names = [r.name for r in queries.filter_routers(queries.FleetCriteria())]
    assert names == ["r-d-VM", "r-e-VM", "r-c-VM", "r-f-VM", "r-b-VM", "r-g-VM", "r-a-VM"]
