"""Tests of the live panel partial and its template tag: what each role sees before any script runs."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template.loader import render_to_string
from django.test import RequestFactory

from diagnostics.jobs import collection_time_bound
from diagnostics.models import Collection, CollectionStatus
from tests.vrconsole.router_factory import make_region, make_router, make_zone
from vrconsole.models import Router

pytestmark = pytest.mark.django_db


@pytest.fixture
def router() -> Router:
    return make_router(make_zone(make_region()), name="r-7-VM")


def render_panel(router: Router, operator: bool) -> str:
    request = RequestFactory().get(f"/routers/{router.uuid}/")
    request.user = AnonymousUser()
    return render_to_string(
        "diagnostics/_live_panel.html", {"router": router, "user_is_operator": operator}, request=request
    )


def test_it_gives_the_script_its_socket_and_collect_addresses(router):
    html = render_panel(router, operator=True)
    assert f'data-socket-path="/ws/routers/{router.pk}/"' in html
    assert f'data-collect-url="/routers/{router.pk}/collect/"' in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_it_states_the_consequence_and_worst_case_before_the_click(router):
    html = render_panel(router, operator=True)
    assert "▶ Collect now" in html
    assert "read-only probes" in html
    assert "nothing on the router is changed" in html
    assert f"at most ~{round(collection_time_bound())} s" in html


def test_it_says_how_long_a_run_usually_takes_from_past_runs(router):
    for seconds in (3.0, 4.2, 9.0):
        Collection.objects.create(router=router, status=CollectionStatus.SUCCEEDED, duration_s=seconds)
    Collection.objects.create(router=router, status=CollectionStatus.FAILED, duration_s=60.0)
    assert "Usually takes ~4 s" in render_panel(router, operator=True)


def test_it_hides_collect_now_from_a_viewer(router):
    html = render_panel(router, operator=False)
    assert "Collect now" not in html
    assert "data-collect-url" not in html
    assert "follows them live" in html
