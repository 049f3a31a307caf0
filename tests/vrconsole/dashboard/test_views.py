"""Tests of the fleet pages as an operator sees them: login, list, filters, detail, escaping, query bounds."""

from __future__ import annotations

import uuid as uuid_module
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from tests.vrconsole.router_factory import build_router, make_host, make_network, make_region, make_router, make_zone
from vrconsole.models import Region, Router, RouterNic, RouterStateChange, SyncStatus

pytestmark = pytest.mark.django_db

# The fleet page needs 16 queries (session, user, role, filter choices, summary with verdict categories and
# the current sweep, count, page, acknowledgements); 1 spare.
FLEET_QUERY_BOUND = 17


@pytest.fixture
def zone():
    return make_zone(make_region())


@pytest.fixture
def operator_client(client):
    user = get_user_model().objects.create_user("noc", password="not-used-here-123")
    client.force_login(user)
    return client


def fleet_html(client, query: str = "") -> str:
    response = client.get(reverse("fleet") + query)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("url", ["/", "/routers/00000000-0000-0000-0000-000000000000/"])
def test_it_sends_anonymous_visitors_to_the_login_page(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_renders_the_login_page_for_anonymous_visitors(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b"Sign in" in response.content


def test_it_lists_routers_with_state_as_text_and_glyph(operator_client, zone):
    make_router(zone, name="r-231-VM", state="Error")
    html = fleet_html(operator_client)
    assert "r-231-VM" in html
    assert "▲ Error" in html


def test_it_hides_removed_routers_from_the_list(operator_client, zone):
    make_router(zone, name="r-gone-VM", removed_at=timezone.now())
    make_router(zone, name="r-here-VM")
    html = fleet_html(operator_client)
    assert "r-here-VM" in html
    assert "r-gone-VM" not in html
    assert "r-gone-VM" in fleet_html(operator_client, "?removed=include")


def test_it_filters_the_list_from_the_query_string(operator_client, zone):
    make_router(zone, name="r-1-VM", state="Running")
    make_router(zone, name="r-2-VM", state="Error")
    html = fleet_html(operator_client, "?state=Error")
    assert "r-2-VM" in html
    assert "r-1-VM" not in html


def test_it_searches_the_list(operator_client, zone):
    make_router(zone, name="r-1-VM", guest_ip="10.1.4.17")
    make_router(zone, name="r-2-VM", guest_ip="10.1.4.99")
    html = fleet_html(operator_client, "?q=10.1.4.17")
    assert "r-1-VM" in html
    assert "r-2-VM" not in html


def test_it_ignores_an_invalid_filter_value(operator_client, zone):
    make_router(zone, name="r-1-VM")
    assert "r-1-VM" in fleet_html(
        operator_client, "?zone=not-a-number&state=Bogus&per_page=7&sort=password&q=%00&page=x"
    )


def test_it_paginates_the_list(operator_client, zone):
    Router.objects.bulk_create([build_router(zone, name=f"r-{n:03d}-VM") for n in range(120)])
    first = fleet_html(operator_client, "?per_page=50")
    third = fleet_html(operator_client, "?per_page=50&page=3")
    assert "r-000-VM" in first and "r-050-VM" not in first
    assert "r-100-VM" in third and "r-099-VM" not in third
    assert "120" in first


def test_it_shows_the_summary_counts(operator_client, zone):
    network = make_network(zone, "split-net")
    for _ in range(2):
        make_router(zone, network=network, is_redundant=True, redundant_state="PRIMARY")
    make_router(zone, requires_upgrade=True, state="Starting", state_since=timezone.now() - timedelta(hours=1))
    response = operator_client.get(reverse("fleet"))
    summary = response.context["summary"]
    assert (summary.split_brain_pairs, summary.requires_upgrade, summary.stuck) == (1, 1, 1)
    assert "split brain" in response.content.decode()


def test_it_shows_the_region_sync_error(operator_client, zone):
    Region.objects.filter(pk=zone.region_id).update(
        last_sync_status=SyncStatus.FAILED,
        last_sync_error="HTTP 401: unable to verify user credentials",
        last_sync_finished=timezone.now() - timedelta(minutes=4),
    )
    html = fleet_html(operator_client)
    assert "sync FAILED" in html
    assert "HTTP 401: unable to verify user credentials" in html


def test_it_shows_a_healthy_region_sync_with_its_age(operator_client):
    make_region(
        "prod-us", last_sync_status=SyncStatus.OK, last_success=timezone.now(), last_sync_finished=timezone.now()
    )
    assert "region prod-us: synced" in fleet_html(operator_client)


def test_it_shows_a_region_sync_warning(operator_client):
    now = timezone.now()
    make_region(
        "prod-us",
        last_sync_status=SyncStatus.OK,
        last_success=now,
        last_sync_finished=now,
        last_sync_warning="the API key is not a root admin's",
    )
    html = fleet_html(operator_client)
    assert "with a warning" in html
    assert "the API key is not a root admin&#x27;s" in html


def test_it_escapes_hostile_router_names_in_the_list(operator_client, zone):
    make_router(zone, name="<script>alert(1)</script>", account="<img src=x onerror=alert(2)>")
    html = fleet_html(operator_client)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html


def test_it_escapes_hostile_api_data_on_the_detail_page(operator_client, zone):
    hostile = "<script>alert(1)</script>"
    router = make_router(
        zone,
        name=hostile,
        api_data={"name": hostile, "extra": hostile},
        health_checks=[{"checkname": hostile, "success": False, "details": hostile}],
    )
    html = operator_client.get(reverse("router-detail", args=[router.uuid])).content.decode()
    assert hostile not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_it_shows_nics_peer_and_history_on_the_detail_page(operator_client, zone):
    network = make_network(zone)
    host = make_host(zone, ipaddress="198.19.0.10")
    router = make_router(
        zone,
        name="r-231-VM",
        network=network,
        host=host,
        is_redundant=True,
        redundant_state="PRIMARY",
        link_local_ip="169.254.3.93",
        state_since=timezone.now() - timedelta(hours=3),
    )
    peer = make_router(zone, name="r-232-VM", network=network, is_redundant=True, redundant_state="BACKUP")
    RouterNic.objects.create(
        router=router,
        position=2,
        traffic_type="Public",
        ip_address="203.0.113.5",
        mac_address="1e:00:aa:00:00:01",
        netmask="255.255.255.0",
        mtu=1500,
    )
    RouterStateChange.objects.create(router=router, from_state="Starting", to_state="Running")
    html = operator_client.get(reverse("router-detail", args=[router.uuid])).content.decode()
    assert "1e:00:aa:00:00:01" in html
    assert reverse("router-detail", args=[peer.uuid]) in html
    assert "◇ BACKUP" in html
    assert "Starting" in html and "Running" in html
    assert "ssh -J root@198.19.0.10 -i /root/.ssh/id_rsa.cloud -p 3922 root@169.254.3.93" in html
    assert "since" in html and "3 h" in html


def test_it_shows_failed_health_checks_first(operator_client, zone):
    router = make_router(
        zone,
        health_checks=[
            {"checkname": "aaa_ok_check", "success": True},
            {"checkname": "zzz_failed_check", "success": False, "details": "dnsmasq not running"},
        ],
    )
    html = operator_client.get(reverse("router-detail", args=[router.uuid])).content.decode()
    assert html.index("zzz_failed_check") < html.index("aaa_ok_check")


def test_it_says_since_when_a_removed_router_is_gone(operator_client, zone):
    router = make_router(zone, removed_at=timezone.now() - timedelta(days=2))
    response = operator_client.get(reverse("router-detail", args=[router.uuid]))
    assert response.status_code == 200
    assert "Removed from the API" in response.content.decode()


def test_it_answers_404_for_an_unknown_router(operator_client):
    response = operator_client.get(reverse("router-detail", args=[str(uuid_module.uuid4())]))
    assert response.status_code == 404


def make_fleet(zone, count: int) -> None:
    """`count` routers spread over networks and hosts, made with one bulk insert."""
    host = make_host(zone)
    networks = [make_network(zone, f"net-{n}") for n in range(10)]
    Router.objects.bulk_create(
        [
            build_router(
                zone,
                name=f"r-{n}-VM",
                network=networks[n % 10],
                host=host,
                host_name=host.name,
                public_ip=f"10.{n // 65536}.{n // 256 % 256}.{n % 256}",
                is_redundant=n % 3 == 0,
                redundant_state="PRIMARY" if n % 6 == 0 else "BACKUP",
                health_checks=[{"checkname": "dns_check.py", "success": n % 7 != 0}],
            )
            for n in range(count)
        ],
        batch_size=1000,
    )


@pytest.mark.parametrize("count", [100, 10_000])
def test_it_renders_the_list_in_a_bounded_number_of_queries(
    operator_client, zone, count, django_assert_max_num_queries
):
    make_fleet(zone, count)
    with django_assert_max_num_queries(FLEET_QUERY_BOUND):
        response = operator_client.get(reverse("fleet") + "?per_page=500&sort=-network")
    assert response.status_code == 200
    assert response.context["page"].paginator.count == count


def test_it_renders_a_filtered_search_in_the_same_bound(operator_client, zone, django_assert_max_num_queries):
    make_fleet(zone, 10_000)
    with django_assert_max_num_queries(FLEET_QUERY_BOUND):
        response = operator_client.get(reverse("fleet") + "?q=10.0.1&redundant=split-brain&healthfailed=no")
    assert response.status_code == 200


def test_it_links_each_summary_count_to_its_filtered_list(operator_client, zone):
    make_router(zone, state="Stopped")
    html = fleet_html(operator_client)
    for query in ("?state=Error", "?state=Stopped", "?stuck=yes", "?redundant=split-brain", "?upgrade=yes"):
        assert f'href="{query}"' in html


def test_it_serves_the_page_assets_from_the_console(operator_client):
    html = fleet_html(operator_client)
    assert "/static/css/console.css" in html and "/static/js/theme.js" in html
    assert "http://" not in html and "https://" not in html


def test_it_shows_the_running_sweeps_progress_and_eta(operator_client, zone):
    from diagnostics.models import Collection, Sweep

    router = make_router(zone, name="r-5-VM")
    sweep = Sweep.objects.create(started=timezone.now() - timedelta(seconds=60), total=4, interval_s=300)
    Collection.objects.create(router=router, sweep=sweep, status="succeeded")
    Collection.objects.create(router=router, sweep=sweep, status="failed")
    Collection.objects.create(router=router, sweep=sweep)
    Collection.objects.create(router=router, sweep=sweep)
    html = fleet_html(operator_client)
    assert 'sweep <strong class="num">2/4</strong> (50 %)' in html
    assert '<strong class="num">1</strong> failed' in html
    assert "ETA 1 min" in html


def test_it_says_a_sweep_overran_its_interval(operator_client, zone):
    from diagnostics.models import Sweep

    Sweep.objects.create(started=timezone.now() - timedelta(minutes=7), total=10, interval_s=300, overran=True)
    assert "OVERRAN its 5 min interval" in fleet_html(operator_client)


def test_it_shows_each_routers_collection_age_and_stale_past_two_intervals(operator_client, zone, settings):
    from diagnostics.models import Collection, RouterHealth

    settings.SWEEP_INTERVAL_SECONDS = 300
    fresh = make_router(zone, name="r-1-VM")
    old = make_router(zone, name="r-2-VM")
    for router, age in ((fresh, timedelta(minutes=3)), (old, timedelta(minutes=11))):
        at = timezone.now() - age
        collection = Collection.objects.create(router=router, status="succeeded", finished=at)
        RouterHealth.objects.create(router=router, collection=collection, evaluated_at=at)
    html = fleet_html(operator_client)
    fresh_row = html[html.index(f'data-router-id="{fresh.pk}"') :]
    old_row = html[html.index(f'data-router-id="{old.pk}"') :]
    assert "3 min ago" in fresh_row[: fresh_row.index("</tr>")]
    assert "⚠ stale" not in fresh_row[: fresh_row.index("</tr>")]
    assert "⚠ stale" in old_row[: old_row.index("</tr>")]
