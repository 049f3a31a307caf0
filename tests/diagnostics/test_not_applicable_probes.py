"""A host probe that does not apply (KVM-only probes on a XenServer router) reads as such on the pages and in triage."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from diagnostics.management.commands.triage import collection_summary
from diagnostics.models import ProbeResult
from tests.diagnostics.matrix_doubles import FakeMatrix, finished_collection, stored_facts
from tests.vrconsole.router_factory import make_region, make_router, make_zone

pytestmark = pytest.mark.django_db

WHY = "does not apply on XenServer: only KVM hosts have what it reads"


@pytest.fixture
def viewer_client(client):
    client.force_login(get_user_model().objects.create_user("viewer", password="not-used-here-123"))
    return client


@pytest.fixture
def collected():
    router = make_router(make_zone(make_region()), name="r-40-VM", hypervisor="XenServer")
    collection = finished_collection(router, facts=stored_facts("processes", "disk"))
    ProbeResult.objects.create(collection=collection, name="processes", ok=True)
    ProbeResult.objects.create(collection=collection, name="host_tap", scope="host", not_applicable=WHY)
    ProbeResult.objects.create(collection=collection, name="conntrack", error="exit status 1")
    FakeMatrix().evaluate(router, collection)
    return router, collection


def test_it_tells_triage_which_probes_do_not_apply_apart_from_the_errors(collected):
    _, collection = collected
    summary = collection_summary(collection)
    assert summary["probe_errors"] == {"conntrack": "exit status 1"}
    assert summary["not_applicable"] == {"host_tap": WHY}


def test_it_shows_not_applicable_probes_apart_from_failed_ones_on_the_router_page(viewer_client, collected):
    router, _ = collected
    html = viewer_client.get(reverse("router-detail", args=[router.uuid])).content.decode()
    assert 'title="exit status 1">conntrack</span>' in html
    assert f'data-not-applicable title="{WHY}">does not apply: <span class="mono">host_tap</span>' in html


def test_it_shows_the_reason_on_the_collection_page(viewer_client, collected):
    _, collection = collected
    html = viewer_client.get(reverse("collection-detail", args=[collection.pk])).content.decode()
    assert f'<span class="muted" data-not-applicable>– {WHY}</span>' in html
