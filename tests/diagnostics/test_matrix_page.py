"""Tests of the /matrix/ page: generated from the registry, grouped by category, behind login."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from tests.diagnostics.matrix_doubles import install_fake_matrix

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_matrix(monkeypatch):
    return install_fake_matrix(monkeypatch)


@pytest.fixture
def viewer_client(client):
    client.force_login(get_user_model().objects.create_user("viewer", password="not-used-here-123"))
    return client


def matrix_html(client) -> str:
    response = client.get(reverse("matrix"))
    assert response.status_code == 200
    return response.content.decode()


def test_it_requires_login(client, fake_matrix):
    response = client.get(reverse("matrix"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_it_lists_every_registered_rule(viewer_client, fake_matrix):
    html = matrix_html(viewer_client)
    for rule_id in ("dnsmasq-not-running", "var-log-nearly-full", "template-outdated", "router-unreachable"):
        assert f'id="rule-{rule_id}"' in html


def test_it_groups_rules_by_category_in_the_vocabulary_order(viewer_client, fake_matrix):
    html = matrix_html(viewer_client)
    positions = [html.index(f'id="category-{name}"') for name in ("access", "dhcp", "disk", "template")]
    assert positions == sorted(positions)


def test_it_shows_what_each_rule_checks_reads_and_its_remedy(viewer_client, fake_matrix):
    html = matrix_html(viewer_client)
    assert "checks dnsmasq-not-running" in html
    assert "facts:processes" in html
    assert "remedy of dnsmasq-not-running" in html
    assert "▲ critical" in html


def test_it_shows_a_thresholds_current_value_default_unit_and_how_to_tune_it(viewer_client, fake_matrix):
    html = matrix_html(viewer_client)
    assert "disk_log_warning_pct" in html
    assert "<strong>85.0</strong> %" in html
    assert "default 90.0 %" in html
    assert "MATRIX_THRESHOLDS=&#x27;{&quot;disk_log_warning_pct&quot;: 85}&#x27;" in html


def test_it_is_linked_from_the_top_bar(viewer_client, fake_matrix):
    response = viewer_client.get(reverse("fleet"))
    assert f'href="{reverse("matrix")}"' in response.content.decode()


def test_it_lists_every_rule_of_the_real_registry_with_its_thresholds(viewer_client):
    from diagnostics.matrix import RULES

    html = matrix_html(viewer_client)
    for rule in RULES:
        assert f'id="rule-{rule.id}"' in html
        for name in rule.thresholds:
            assert f'<span class="mono">{name}</span>' in html
