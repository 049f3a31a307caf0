"""Tests of the diagnostics part of the router page: findings, collections and config history."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from diagnostics.models import CollectionStatus, ConfigSnapshot, ProbeResult
from tests.diagnostics.matrix_doubles import FakeMatrix, finished_collection, stored_facts
from tests.vrconsole.router_factory import make_region, make_router, make_zone

pytestmark = pytest.mark.django_db

FACTS = stored_facts("processes", "disk")


@pytest.fixture
def fake_matrix():
    return FakeMatrix()


@pytest.fixture
def viewer_client(client):
    client.force_login(get_user_model().objects.create_user("viewer", password="not-used-here-123"))
    return client


@pytest.fixture
def router():
    return make_router(make_zone(make_region()), name="r-231-VM")


def evaluate(fake_matrix, router, status=CollectionStatus.SUCCEEDED, facts=FACTS):
    collection = finished_collection(router, status=status, facts=facts)
    fake_matrix.evaluate(router, collection)
    return collection


def page(client, router) -> str:
    response = client.get(reverse("router-detail", args=[router.uuid]))
    assert response.status_code == 200
    return response.content.decode()


def test_it_shows_open_findings_worst_first_with_evidence_and_remedy(viewer_client, fake_matrix, router):
    fake_matrix.fire("template-outdated", "template 4.18.0")
    fake_matrix.fire("var-log-nearly-full", "/var/log 97%")
    fake_matrix.fire("dnsmasq-not-running", "pidof dnsmasq returned nothing")
    evaluate(fake_matrix, router)
    html = page(viewer_client, router)
    order = [html.index(f'id="finding-{rule}"') for rule in ("dnsmasq-not-running", "var-log-nearly-full")]
    assert order == sorted(order)
    assert html.index('id="finding-var-log-nearly-full"') < html.index('id="finding-template-outdated"')
    assert "pidof dnsmasq returned nothing" in html
    assert "Fix dnsmasq-not-running: restart it" in html
    assert "failing since" in html
    assert "▲ critical" in html


def test_it_puts_open_findings_before_the_resolved_ones(viewer_client, fake_matrix, router):
    fake_matrix.fire("var-log-nearly-full")
    evaluate(fake_matrix, router)
    fake_matrix.quiet("var-log-nearly-full")
    fake_matrix.fire("dnsmasq-not-running")
    evaluate(fake_matrix, router)
    html = page(viewer_client, router)
    assert html.index('id="finding-dnsmasq-not-running"') < html.index("Resolved in the last 7 days (1)")
    assert 'id="finding-var-log-nearly-full"' not in html


def test_it_escapes_hostile_evidence(viewer_client, fake_matrix, router):
    fake_matrix.fire("dnsmasq-not-running", "<script>alert(1)</script>", "bell\x07 escape\x1b[31m nul\x00 end")
    evaluate(fake_matrix, router)
    html = page(viewer_client, router)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "bell\\x07 escape\\x1b[31m nul\\x00 end" in html
    assert "\x1b" not in html and "\x00" not in html


def test_it_shows_a_flapping_finding(viewer_client, fake_matrix, router):
    fake_matrix.fire("dnsmasq-not-running")
    evaluate(fake_matrix, router)
    fake_matrix.quiet("dnsmasq-not-running")
    evaluate(fake_matrix, router)
    fake_matrix.fire("dnsmasq-not-running")
    evaluate(fake_matrix, router)
    assert "flapping: reopened 1 time" in page(viewer_client, router)


def test_it_says_status_unknown_for_a_router_never_collected(viewer_client, fake_matrix, router):
    html = page(viewer_client, router)
    assert "? unknown" in html
    assert "never been collected" in html


def test_it_lists_recent_collections_with_their_failures(viewer_client, fake_matrix, router):
    collection = evaluate(fake_matrix, router)
    ProbeResult.objects.create(collection=collection, name="conntrack", ok=False, error="exit status 1")
    evaluate(fake_matrix, router, status=CollectionStatus.FAILED, facts={})
    html = page(viewer_client, router)
    assert "▲ failed" in html
    assert ">conntrack</span>" in html


def test_it_shows_config_history_with_content_one_click_away(viewer_client, fake_matrix, router):
    collection = evaluate(fake_matrix, router)
    ConfigSnapshot.objects.create(
        router=router, collection=collection, kind="dnsmasq", content="dhcp-range=10.1.1.2\n<b>x</b>", sha256="ab" * 32
    )
    html = page(viewer_client, router)
    assert "<details><summary>show</summary>" in html
    assert "dhcp-range=10.1.1.2\n&lt;b&gt;x&lt;/b&gt;" in html
    assert "abababababab" in html


def test_it_serves_the_open_findings_as_json(viewer_client, fake_matrix, router):
    fake_matrix.fire("dnsmasq-not-running", "no dnsmasq")
    evaluate(fake_matrix, router)
    response = viewer_client.get(reverse("router-findings-json", args=[router.uuid]))
    data = response.json()
    assert data["status"] == "critical"
    assert [(f["rule"], f["evidence"]) for f in data["findings"]] == [("dnsmasq-not-running", ["no dnsmasq"])]
