"""/metrics: a bearer token from settings, no session; the exposition parses with prometheus_client's parser."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from diagnostics.models import Finding, HealthSample, RouterHealth
from tests.vrconsole.router_factory import make_region, make_router, make_zone

pytestmark = pytest.mark.django_db
TOKEN = "metrics-token-0123456789abcdef"


@pytest.fixture
def fleet(settings):
    settings.METRICS_TOKEN = TOKEN
    zone = make_zone(make_region())
    hot = make_router(zone, name="r-1-VM")
    calm = make_router(zone, name="r-2-VM", state="Stopped")
    RouterHealth.objects.create(router=hot, status="critical", rank=3)
    Finding.objects.create(
        router=hot, rule="conntrack-table-near-full", category="conntrack", severity="critical", title="t"
    )
    Finding.objects.create(router=hot, rule="disk", category="disk", severity="warning", title="t")
    HealthSample.objects.create(
        router=hot,
        at=timezone.now() - timedelta(minutes=2),
        conntrack_percent=93.5,
        softirq_percent=12.0,
        disk_root_percent=40.0,
        disk_log_percent=97.0,
        cpu_percent=55.0,
    )
    return hot, calm


def scrape(client, token: str | None = TOKEN):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    return client.get("/metrics", **headers)


def samples(response) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found, name: str, **labels) -> float:
    matches = [v for (n, pairs), v in found.items() if n == name and set(labels.items()) <= set(pairs)]
    assert len(matches) == 1, (name, labels, matches)
    return matches[0]


def test_it_exposes_per_router_gauges_and_fleet_counts_that_parse(client, fleet) -> None:
    response = scrape(client)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain; version=0.0.4")
    found = samples(response)
    assert value(found, "vrconsole_router_status", router="r-1-VM", status="critical") == 1
    assert value(found, "vrconsole_router_status", router="r-1-VM", status="ok") == 0
    assert value(found, "vrconsole_router_status", router="r-2-VM", status="unknown") == 1
    assert value(found, "vrconsole_router_conntrack_fill_percent", router="r-1-VM") == 93.5
    assert value(found, "vrconsole_router_softirq_percent", router="r-1-VM") == 12.0
    assert value(found, "vrconsole_router_disk_used_percent", router="r-1-VM", mount="/var/log") == 97.0
    assert value(found, "vrconsole_router_open_findings", router="r-1-VM", severity="critical") == 1
    assert value(found, "vrconsole_routers", state="Stopped") == 1
    assert value(found, "vrconsole_routers_by_status", status="critical") == 1
    assert value(found, "vrconsole_open_findings", category="conntrack") == 1
    assert value(found, "vrconsole_open_findings_by_severity", severity="warning") == 1


def test_it_needs_no_session_but_refuses_a_missing_or_wrong_token_with_401(client, fleet) -> None:
    assert scrape(client, None).status_code == 401
    wrong = scrape(client, "not-the-token-at-all-xxxxxxxx")
    assert wrong.status_code == 401 and wrong["WWW-Authenticate"].startswith("Bearer")
    assert scrape(client).status_code == 200


def test_without_a_configured_token_the_endpoint_does_not_exist(client, fleet, settings) -> None:
    settings.METRICS_TOKEN = ""
    assert scrape(client).status_code == 404
