"""Findings keep every category their fault takes down; the fleet filters, counts, silences and metrics use them."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from diagnostics.matrix.base import CATEGORIES
from diagnostics.models import Finding, RouterHealth, Silence, VerdictRecord, in_category
from diagnostics.notifications import build_message
from diagnostics.reports import build_report, to_markdown, to_text
from diagnostics.rollup import record_fleet_counts
from diagnostics.rulebook import rulebook
from tests.diagnostics.matrix_doubles import FakeMatrix, finished_collection, stored_facts
from tests.vrconsole.router_factory import make_region, make_router, make_zone
from vrconsole.dashboard import queries

pytestmark = pytest.mark.django_db


@pytest.fixture
def zone():
    return make_zone(make_region())


@pytest.fixture
def fake_matrix():
    matrix = FakeMatrix()
    # A fault that takes more than its primary category down, as no-primary-router does.
    matrix.rules.append(matrix.rule("no-primary-router", "vrrp", "critical", ("api",), also=("nat", "dhcp", "dns")))
    return matrix


def _evaluate(fake_matrix, router):
    collection = finished_collection(router, facts=stored_facts("processes", "disk"))
    return fake_matrix.evaluate(router, collection)


def test_it_stores_every_category_on_the_finding_and_the_verdict_record(fake_matrix, zone):
    router = make_router(zone, name="r-1-VM")
    fake_matrix.fire("no-primary-router")
    evaluation = _evaluate(fake_matrix, router)
    finding = Finding.objects.get(router=router, rule="no-primary-router")
    assert (finding.category, finding.categories) == ("vrrp", "vrrp,nat,dhcp,dns")
    assert finding.category_list == ["vrrp", "nat", "dhcp", "dns"]
    record = VerdictRecord.objects.get(collection=evaluation.collection)
    assert record.category_list == ["vrrp", "nat", "dhcp", "dns"]


def test_it_reads_a_finding_stored_without_categories_as_its_primary_alone(zone):
    finding = Finding.objects.create(router=make_router(zone), rule="old", category="disk", severity="warning")
    assert finding.category_list == ["disk"]


def test_it_gives_the_router_every_open_category_the_worst_finding_first(fake_matrix, zone):
    router = make_router(zone, name="r-1-VM")
    fake_matrix.fire("var-log-nearly-full")
    fake_matrix.fire("no-primary-router")
    fake_matrix.fire("dnsmasq-not-running")
    _evaluate(fake_matrix, router)
    # dnsmasq-not-running (dhcp) and no-primary-router (vrrp, nat, dhcp, dns) are both critical:
    # by primary category, dhcp first; dhcp is listed once.
    assert RouterHealth.objects.get(router=router).category_list == ["dhcp", "vrrp", "nat", "dns", "disk"]


def test_it_finds_a_router_by_any_category_its_open_findings_take_down(fake_matrix, zone):
    down = make_router(zone, name="r-down-VM")
    fake_matrix.fire("no-primary-router")
    _evaluate(fake_matrix, down)
    fake_matrix.quiet("no-primary-router")
    fake_matrix.fire("var-log-nearly-full")
    _evaluate(fake_matrix, make_router(zone, name="r-disk-VM"))
    for category in ("vrrp", "nat", "dns"):
        names = [r.name for r in queries.filter_routers(queries.FleetCriteria(category=category))]
        assert names == ["r-down-VM"], category
    assert [r.name for r in queries.filter_routers(queries.FleetCriteria(category="disk"))] == ["r-disk-VM"]
    # "dns" must not match a category that merely contains it.
    Finding.objects.create(router=down, rule="x", category="disk", categories="disk,dnsx", severity="info")
    assert [r.name for r in queries.filter_routers(queries.FleetCriteria(category="dnsx"))] == ["r-down-VM"]


def test_it_counts_a_router_once_per_category_in_the_summary(fake_matrix, zone):
    router = make_router(zone, name="r-1-VM")
    fake_matrix.fire("no-primary-router")
    fake_matrix.fire("dnsmasq-not-running")
    _evaluate(fake_matrix, router)
    counts = dict(queries.category_counts())
    assert counts == {"vrrp": 1, "nat": 1, "dhcp": 1, "dns": 1}


def test_the_summary_counts_each_category_as_the_category_filter_finds_it(zone):
    # The summary's one grouped pass agrees with in_category, the filter the fleet list uses:
    # primary category or any further one, a router once, open findings of present routers.
    a, b, gone = (make_router(zone, name=name) for name in ("r-a-VM", "r-b-VM", "r-gone-VM"))
    Finding.objects.create(router=a, rule="x1", category="dhcp", categories="dhcp,dns", severity="critical")
    Finding.objects.create(router=a, rule="x2", category="dns", categories="", severity="warning")
    Finding.objects.create(router=b, rule="x3", category="disk", categories="disk,not-a-category", severity="info")
    Finding.objects.create(
        router=b, rule="x4", category="vrrp", categories="vrrp,nat", severity="critical", resolved_at=timezone.now()
    )
    Finding.objects.create(router=gone, rule="x5", category="nat", categories="", severity="critical")
    gone.removed_at = timezone.now()
    gone.save()

    counts = dict(queries.category_counts())

    assert counts == {"dhcp": 1, "dns": 1, "disk": 1}
    for name in CATEGORIES:
        matching = Finding.objects.open().of_present_routers().filter(in_category(name))
        assert counts.get(name, 0) == matching.values("router").distinct().count(), name


def test_it_counts_open_findings_under_each_category_in_the_fleet_history(fake_matrix, zone):
    fake_matrix.fire("no-primary-router")
    _evaluate(fake_matrix, make_router(zone, name="r-1-VM"))
    rows = {(row.dimension, row.key): row.value for row in record_fleet_counts()}
    assert {key: value for (dimension, key), value in rows.items() if dimension == "category"} == {
        "vrrp": 1,
        "nat": 1,
        "dhcp": 1,
        "dns": 1,
    }


def test_it_silences_a_finding_by_any_of_its_categories(fake_matrix, zone):
    router = make_router(zone, name="r-1-VM")
    fake_matrix.fire("no-primary-router")
    _evaluate(fake_matrix, router)
    finding = Finding.objects.get(router=router)
    now = timezone.now()
    silence = Silence(category="dns", starts=now, ends=now + timedelta(hours=1), reason="maintenance")
    assert silence.matches(finding, router)
    assert not Silence(category="disk", starts=now, ends=now + timedelta(hours=1), reason="x").matches(finding, router)


def test_it_lists_a_rule_under_each_further_category_on_the_matrix_page() -> None:
    sections = {section.category: section for section in rulebook()}
    assert "dnsmasq-not-running" in [entry.rule.id for entry in sections["dhcp"].entries]
    assert "dnsmasq-not-running" in [one.id for one in sections["dns"].also]
    assert "dnsmasq-not-running" not in [entry.rule.id for entry in sections["dns"].entries]


def test_it_backfills_the_categories_of_existing_findings_from_the_registry(zone):
    migration = importlib.import_module("diagnostics.migrations.0009_finding_categories")
    router = make_router(zone, name="r-1-VM")
    Finding.objects.create(router=router, rule="dnsmasq-not-running", category="dhcp", severity="critical")
    Finding.objects.create(router=router, rule="filesystem-near-full", category="disk", severity="warning")
    RouterHealth.objects.create(router=router, status="critical", categories="dhcp,disk")
    migration.backfill_categories(django_apps, None)
    assert Finding.objects.get(rule="dnsmasq-not-running").categories == "dhcp,dns"
    assert Finding.objects.get(rule="filesystem-near-full").categories == ""
    assert RouterHealth.objects.get(router=router).category_list == ["dhcp", "dns", "disk"]


def test_it_tells_every_category_in_notifications_and_the_ticket_report(fake_matrix, zone):
    router = make_router(zone, name="r-1-VM")
    fake_matrix.fire("no-primary-router")
    _evaluate(fake_matrix, router)
    finding = Finding.objects.get(router=router)
    message = build_message("opened", finding, router, timezone.now())
    assert message["finding"]["categories"] == ["vrrp", "nat", "dhcp", "dns"]
    assert "Takes down: vrrp, nat, dhcp, dns." in message["text"]
    report = build_report(router)
    assert "`no-primary-router` (vrrp, nat, dhcp, dns)" in to_markdown(report)
    assert "no-primary-router (vrrp, nat, dhcp, dns)" in to_text(report)


def test_it_shows_the_further_categories_on_the_matrix_page(client):
    client.force_login(get_user_model().objects.create_user("viewer", password="not-used-here-123"))
    html = client.get(reverse("matrix")).content.decode()
    assert '<a class="badge tone-quiet" href="#category-dns">dns</a>' in html
    assert 'Also taken down by: <a class="mono" href="#rule-dnsmasq-not-running">dnsmasq-not-running</a>' in html


def test_it_shows_every_category_of_an_open_finding_on_the_router_page(client, fake_matrix, zone):
    client.force_login(get_user_model().objects.create_user("viewer", password="not-used-here-123"))
    router = make_router(zone, name="r-1-VM")
    fake_matrix.fire("no-primary-router")
    _evaluate(fake_matrix, router)
    html = client.get(reverse("router-detail", args=[router.uuid])).content.decode()
    assert '<span class="badge tone-quiet" title="also takes down">dns</span>' in html
