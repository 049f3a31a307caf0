"""Tests of vrconsole.dashboard.queries: list filters, search, sorting and the summary band's numbers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.vrconsole.router_factory import make_network, make_region, make_router, make_vpc, make_zone
from vrconsole.dashboard import queries
from vrconsole.dashboard.queries import FleetCriteria, PairFilter, RemovedFilter
from vrconsole.models import Region, RouterNic, SyncStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def zone():
    return make_zone(make_region())


def names(criteria: FleetCriteria) -> list[str]:
    return list(queries.filter_routers(criteria).values_list("name", flat=True))


def test_it_hides_removed_routers_by_default(zone):
    make_router(zone, name="r-1-VM")
    make_router(zone, name="r-2-VM", removed_at=timezone.now())
    assert names(FleetCriteria()) == ["r-1-VM"]


def test_it_shows_removed_routers_when_asked(zone):
    make_router(zone, name="r-1-VM")
    make_router(zone, name="r-2-VM", removed_at=timezone.now())
    assert names(FleetCriteria(removed=RemovedFilter.INCLUDE)) == ["r-1-VM", "r-2-VM"]
    assert names(FleetCriteria(removed=RemovedFilter.ONLY)) == ["r-2-VM"]


def test_it_filters_by_zone(zone):
    other = make_zone(zone.region, name="zone-b")
    make_router(zone, name="r-1-VM")
    make_router(other, name="r-2-VM")
    assert names(FleetCriteria(zone=other.pk)) == ["r-2-VM"]


def test_it_filters_by_region(zone):
    other_zone = make_zone(make_region("prod-us"), name="us-1")
    make_router(zone, name="r-1-VM")
    make_router(other_zone, name="r-2-VM")
    assert names(FleetCriteria(region=other_zone.region_id)) == ["r-2-VM"]


def test_it_filters_by_state(zone):
    make_router(zone, name="r-1-VM", state="Running")
    make_router(zone, name="r-2-VM", state="Error")
    assert names(FleetCriteria(state="Error")) == ["r-2-VM"]


def test_it_filters_by_hypervisor_ignoring_case(zone):
    make_router(zone, name="r-1-VM", hypervisor="KVM")
    make_router(zone, name="r-2-VM", hypervisor="VMware")
    assert names(FleetCriteria(hypervisor="vmware")) == ["r-2-VM"]


def test_it_filters_by_account(zone):
    make_router(zone, name="r-1-VM", account="acme")
    make_router(zone, name="r-2-VM", account="globex")
    assert names(FleetCriteria(account="globex")) == ["r-2-VM"]


def test_it_filters_by_network_name_or_uuid(zone):
    shop = make_network(zone, "shop-prod")
    other = make_network(zone, "other")
    make_router(zone, name="r-1-VM", network=shop)
    make_router(zone, name="r-2-VM", network=other)
    assert names(FleetCriteria(network="shop-prod")) == ["r-1-VM"]
    assert names(FleetCriteria(network=shop.uuid)) == ["r-1-VM"]


def test_it_filters_by_vpc(zone):
    vpc = make_vpc(zone)
    make_router(zone, name="r-1-VM", vpc=vpc, router_type="vpc")
    make_router(zone, name="r-2-VM")
    assert names(FleetCriteria(vpc=vpc.uuid)) == ["r-1-VM"]


def test_it_filters_by_redundancy(zone):
    make_router(zone, name="r-1-VM", is_redundant=True)
    make_router(zone, name="r-2-VM")
    assert names(FleetCriteria(redundant=PairFilter.YES)) == ["r-1-VM"]
    assert names(FleetCriteria(redundant=PairFilter.NO)) == ["r-2-VM"]


def test_it_filters_by_upgrade_and_failed_checks(zone):
    make_router(zone, name="r-1-VM", requires_upgrade=True)
    make_router(zone, name="r-2-VM", health_checks_failed=True)
    assert names(FleetCriteria(upgrade=True)) == ["r-1-VM"]
    assert names(FleetCriteria(healthfailed=True)) == ["r-2-VM"]
    assert names(FleetCriteria(healthfailed=False)) == ["r-1-VM"]


def test_it_filters_stuck_routers(zone):
    long_ago = timezone.now() - timedelta(hours=2)
    make_router(zone, name="r-1-VM", state="Starting", state_since=long_ago)
    make_router(zone, name="r-2-VM", state="Starting", state_since=timezone.now())
    make_router(zone, name="r-3-VM", state="Running", state_since=long_ago)
    assert names(FleetCriteria(stuck=True)) == ["r-1-VM"]


def test_it_searches_by_partial_name(zone):
    make_router(zone, name="r-231-VM")
    make_router(zone, name="r-118-VM")
    assert names(FleetCriteria(q="231")) == ["r-231-VM"]


def test_it_searches_by_uuid_prefix(zone):
    router = make_router(zone, name="r-1-VM")
    make_router(zone, name="r-2-VM")
    assert names(FleetCriteria(q=router.uuid[:8])) == ["r-1-VM"]


@pytest.mark.parametrize("field", ["public_ip", "guest_ip", "link_local_ip"])
def test_it_searches_by_exact_router_ip(zone, field):
    make_router(zone, name="r-1-VM", **{field: "10.1.4.17"})
    make_router(zone, name="r-2-VM", **{field: "10.1.4.18"})
    assert names(FleetCriteria(q="10.1.4.17")) == ["r-1-VM"]


def test_it_searches_by_ip_prefix(zone):
    make_router(zone, name="r-1-VM", public_ip="203.0.113.5")
    make_router(zone, name="r-2-VM", public_ip="10.0.0.5")
    assert names(FleetCriteria(q="203.0.")) == ["r-1-VM"]


def test_it_searches_by_nic_ip(zone):
    router = make_router(zone, name="r-1-VM")
    make_router(zone, name="r-2-VM")
    RouterNic.objects.create(router=router, position=3, traffic_type="Public", ip_address="192.0.2.77")
    assert names(FleetCriteria(q="192.0.2.77")) == ["r-1-VM"]


def test_it_searches_by_account(zone):
    make_router(zone, name="r-1-VM", account="globex-corp")
    make_router(zone, name="r-2-VM", account="acme")
    assert names(FleetCriteria(q="GLOBEX")) == ["r-1-VM"]


def test_it_searches_by_network_and_vpc_name(zone):
    make_router(zone, name="r-1-VM", network=make_network(zone, "shop-prod"))
    make_router(zone, name="r-2-VM", vpc=make_vpc(zone, "vpc-Globex"))
    make_router(zone, name="r-3-VM", network=make_network(zone, "other"))
    assert names(FleetCriteria(q="SHOP")) == ["r-1-VM"]
    assert names(FleetCriteria(q="globex")) == ["r-2-VM"]


@pytest.mark.parametrize("number", ["1", "2", "3", "4", "99", "x", None])
def test_a_search_page_counted_with_its_ids_is_the_page_counted_apart(zone, number):
    for n in range(23):
        make_router(zone, name=f"r-{100 + n}-VM", account="acme" if n % 3 else "globex")
    make_router(zone, name="r-999-VM", account="initech")
    criteria = FleetCriteria(q="acme", sort="-name")
    apart = queries.list_page(queries.filter_routers(criteria), 5, number)
    together = queries.list_page(queries.filter_routers(criteria), 5, number, count_with_ids=True)
    assert together.paginator.count == apart.paginator.count == 15
    assert together.number == apart.number
    assert [r.name for r in together.object_list] == [r.name for r in apart.object_list]
    assert len(together.object_list) == 5


def test_it_sorts_by_a_whitelisted_column_both_ways(zone):
    make_router(zone, name="r-1-VM", account="b")
    make_router(zone, name="r-2-VM", account="a")
    assert names(FleetCriteria(sort="account")) == ["r-2-VM", "r-1-VM"]
    assert names(FleetCriteria(sort="-account")) == ["r-1-VM", "r-2-VM"]


def test_it_ignores_an_unknown_sort_column(zone):
    make_router(zone, name="r-2-VM")
    make_router(zone, name="r-1-VM")
    assert names(FleetCriteria(sort="api_data")) == ["r-1-VM", "r-2-VM"]
    assert names(FleetCriteria(sort="--name; drop table")) == ["r-1-VM", "r-2-VM"]


def test_it_sorts_by_network_or_vpc_label(zone):
    make_router(zone, name="r-1-VM", vpc=make_vpc(zone, "zz-vpc"))
    make_router(zone, name="r-2-VM", network=make_network(zone, "aa-net"))
    assert names(FleetCriteria(sort="network")) == ["r-2-VM", "r-1-VM"]


def test_it_counts_routers_by_state(zone):
    make_router(zone, state="Running")
    make_router(zone, state="Running")
    make_router(zone, state="Error")
    make_router(zone, state="Error", removed_at=timezone.now())
    summary = queries.fleet_summary()
    assert summary.by_state == {"Running": 2, "Error": 1}
    assert summary.errors == 1
    assert summary.total == 3
    assert summary.removed == 1


def test_it_counts_split_brain_pairs(zone):
    split = make_network(zone, "split")
    healthy = make_network(zone, "healthy")
    for state in ("PRIMARY", "PRIMARY"):
        make_router(zone, network=split, is_redundant=True, redundant_state=state)
    for state in ("PRIMARY", "BACKUP"):
        make_router(zone, network=healthy, is_redundant=True, redundant_state=state)
    summary = queries.fleet_summary()
    assert summary.split_brain_pairs == 1
    assert summary.no_primary_pairs == 0
    assert len(names(FleetCriteria(redundant=PairFilter.SPLIT_BRAIN))) == 2


def test_it_counts_vpc_pairs_with_no_primary(zone):
    vpc = make_vpc(zone)
    for state in ("BACKUP", "FAULT"):
        make_router(zone, vpc=vpc, router_type="vpc", is_redundant=True, redundant_state=state)
    summary = queries.fleet_summary()
    assert summary.no_primary_pairs == 1
    assert len(names(FleetCriteria(redundant=PairFilter.NO_PRIMARY))) == 2


def test_it_does_not_count_a_stopped_pair_as_missing_its_primary(zone):
    network = make_network(zone)
    for _ in range(2):
        make_router(zone, network=network, is_redundant=True, redundant_state="UNKNOWN", state="Stopped")
    assert queries.fleet_summary().no_primary_pairs == 0


def test_it_counts_upgrades_failed_checks_and_stuck_routers(zone):
    make_router(zone, requires_upgrade=True)
    make_router(zone, health_checks_failed=True)
    make_router(zone, state="Stopping", state_since=timezone.now() - timedelta(hours=1))
    make_router(zone, requires_upgrade=True, removed_at=timezone.now())
    summary = queries.fleet_summary()
    assert (summary.requires_upgrade, summary.health_failed, summary.stuck) == (1, 1, 1)


def test_it_reports_each_region_sync_with_its_error(zone):
    Region.objects.filter(pk=zone.region_id).update(
        last_sync_status=SyncStatus.FAILED,
        last_sync_error="HTTP 401: unable to verify user credentials",
        last_sync_finished=timezone.now(),
    )
    (chip,) = queries.fleet_summary().regions
    assert chip.failed
    assert chip.error == "HTTP 401: unable to verify user credentials"
    assert chip.is_stale


def test_the_summary_is_shared_between_requests_for_its_cache_time(settings, django_assert_num_queries) -> None:
    from django.core.cache import cache

    from vrconsole.dashboard.queries import SUMMARY_CACHE_KEY, cached_fleet_summary

    settings.FLEET_SUMMARY_CACHE_SECONDS = 30
    cache.delete(SUMMARY_CACHE_KEY)
    first = cached_fleet_summary()
    with django_assert_num_queries(0):
        again = cached_fleet_summary()
    assert again.total == first.total
    cache.delete(SUMMARY_CACHE_KEY)
