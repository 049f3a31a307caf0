"""Tests of the /matrix/ page: generated from the registry, grouped by category, behind login."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils.html import escape

from diagnostics.matrix import RULES, rule

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer_client(client):
    client.force_login(get_user_model().objects.create_user("viewer", password="not-used-here-123"))
    return client


def matrix_html(client) -> str:
    response = client.get(reverse("matrix"))
    assert response.status_code == 200
    return response.content.decode()


def test_it_requires_login(client):
    response = client.get(reverse("matrix"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_lists_every_registered_rule(viewer_client):
    html = matrix_html(viewer_client)
    for one in RULES:
        assert f'id="rule-{one.id}"' in html


def test_it_groups_rules_by_category_in_the_vocabulary_order(viewer_client):
    html = matrix_html(viewer_client)
    positions = [html.index(f'id="category-{name}"') for name in ("access", "dhcp", "disk", "template")]
    assert positions == sorted(positions)


def test_it_shows_what_each_rule_checks_reads_and_its_remedy(viewer_client):
    html = matrix_html(viewer_client)
    dnsmasq = rule("dnsmasq-not-running")
    assert escape(dnsmasq.summary) in html
    assert "facts:processes" in html
    assert escape(dnsmasq.remedy) in html
    assert "▲ critical" in html


def test_it_shows_a_thresholds_current_value_default_unit_and_how_to_tune_it(viewer_client, settings):
    settings.MATRIX_THRESHOLDS = {"disk_warning_pct": 80}
    html = matrix_html(viewer_client)
    assert "disk_warning_pct" in html
    assert "<strong>80.0</strong> %" in html
    assert "default 85 %" in html
    assert "MATRIX_THRESHOLDS=&#x27;{&quot;disk_warning_pct&quot;: 80}&#x27;" in html


def test_it_is_linked_from_the_top_bar(viewer_client):
    response = viewer_client.get(reverse("fleet"))
    assert f'href="{reverse("matrix")}"' in response.content.decode()


def test_it_lists_every_rule_of_the_real_registry_with_its_thresholds(viewer_client):
    html = matrix_html(viewer_client)
    for one in RULES:
        assert f'id="rule-{one.id}"' in html
        for name in one.thresholds:
            assert f'<span class="mono">{name}</span>' in html
