"""The router's chart data, exports (parsed with csv and json), collection page and snapshot diffs."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from diagnostics.models import Collection, CollectionStatus, ConfigSnapshot, FindingEvent, HealthSample, ProbeResult
from diagnostics.probes.config import redact_output
from tests.diagnostics.history_data import generate_samples
from tests.vrconsole.router_factory import make_region, make_router, make_zone
from vrconsole.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(client):
    client.force_login(get_user_model().objects.create_user("viewer", password="not-used-here-123"))
    return client


@pytest.fixture
def router():
    return make_router(make_zone(make_region()), name="r-231-VM")


def stream(response) -> str:
    return b"".join(response.streaming_content).decode()


def test_the_chart_data_of_a_range_holds_every_figure_downsampled(viewer, router) -> None:
    generate_samples(router, timezone.now() - timedelta(hours=23), 23 * 12, timedelta(minutes=5), with_collections=True)
    response = viewer.get(reverse("router-history-json", args=[router.uuid]), {"range": "24h"})
    assert response.status_code == 200
    body = response.json()
    assert body["bucket_seconds"] == 300 and body["samples"] == 23 * 12
    ids = [item["id"] for item in body["figures"]]
    assert ids[:7] == ["conntrack", "cpu", "softirq", "memory", "disk", "dhcp", "iptables"]
    assert "nic-eth0" in ids
    entries = next(t for t in body["figures"][0]["figure"]["data"] if t["name"] == "entries")
    assert len(entries["y"]) in (288, 289)  # partial buckets at both ends of an unaligned range


def test_a_range_it_cannot_draw_is_a_clear_400(viewer, router) -> None:
    response = viewer.get(reverse("router-history-json", args=[router.uuid]), {"range": "2y"})
    assert response.status_code == 400 and "unknown range" in response.json()["error"]


def test_the_chart_data_needs_a_login(client, router) -> None:
    response = client.get(reverse("router-history-json", args=[router.uuid]))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_csv_export_parses_and_holds_every_sample_of_the_range(viewer, router) -> None:
    generated = generate_samples(router, timezone.now() - timedelta(hours=2), 60, timedelta(minutes=1), null_share=0)
    response = viewer.get(reverse("router-samples-csv", args=[router.uuid]), {"range": "24h"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert 'filename="r-231-VM-raw-' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(stream(response))))
    assert len(rows) == 60
    assert float(rows[0]["cpu_percent"]) == generated.rows[0][1]["cpu_percent"]
    assert float(rows[0]["eth1.tx_bps"]) == generated.rows[0][2]["eth1"][1]
    assert rows[0]["cpu1.softirq_percent"] != ""
    assert AuditEntry.objects.filter(action="history.export", router=router).exists()


def test_the_json_export_parses_and_names_units(viewer, router) -> None:
    generate_samples(router, timezone.now() - timedelta(hours=2), 30, timedelta(minutes=1))
    response = viewer.get(reverse("router-samples-json", args=[router.uuid]), {"range": "24h"})
    document = json.loads(stream(response))
    assert document["router"]["name"] == "r-231-VM" and len(document["rows"]) == 30
    assert document["series"]["conntrack_percent"]["unit"] == "%"
    assert set(document["rows"][0]["per_nic"]) >= {"eth0", "eth1"}


def test_the_hourly_export_gives_min_avg_max_per_hour(viewer, router, settings) -> None:
    from diagnostics.rollup import roll_up

    now = timezone.now()
    generate_samples(router, now - timedelta(hours=6), 6 * 12, timedelta(minutes=5))
    roll_up(now + timedelta(hours=1))
    response = viewer.get(reverse("router-samples-csv", args=[router.uuid]), {"range": "24h", "resolution": "hourly"})
    rows = list(csv.DictReader(io.StringIO(stream(response))))
    assert 6 <= len(rows) <= 7
    assert {"start", "samples", "cpu_percent.min", "cpu_percent.avg", "cpu_percent.max"} <= set(rows[0])
    assert sum(int(row["samples"]) for row in rows) == 72


def test_the_collection_page_shows_outcome_numbers_and_raw_output(viewer, router) -> None:
    collection = Collection.objects.create(router=router, status=CollectionStatus.SUCCEEDED, duration_s=2.5)
    HealthSample.objects.create(router=router, collection=collection, conntrack_percent=91.5)
    ProbeResult.objects.create(collection=collection, name="conntrack", ok=True, stdout="count=915\n<script>x</script>")
    FindingEvent.objects.create(
        router=router,
        rule="conntrack-table-near-full",
        category="conntrack",
        severity="critical",
        kind="opened",
        collection=collection,
    )
    response = viewer.get(reverse("collection-detail", args=[collection.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "91.5 %" in html and "conntrack-table-near-full" in html and "count=915" in html
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html


def test_a_pruned_collection_says_so(viewer) -> None:
    response = viewer.get(reverse("collection-detail", args=[999999]))
    assert response.status_code == 404


def snapshot(router, kind: str, content: str, minutes_ago: int) -> ConfigSnapshot:
    return ConfigSnapshot.objects.create(
        router=router,
        kind=kind,
        content=content,
        sha256=str(minutes_ago),
        taken_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


def test_the_snapshot_diff_is_unified_with_secrets_redacted(viewer, router) -> None:
    old = snapshot(router, "keepalived", "vrrp_instance x {\n  auth_pass oldsecret1\n  priority 100\n}\n", 60)
    new = snapshot(router, "keepalived", "vrrp_instance x {\n  auth_pass newsecret2\n  priority 90\n}\n", 5)
    response = viewer.get(reverse("router-snapshot-diff", args=[router.uuid]), {"a": new.pk, "b": old.pk})
    html = response.content.decode()
    assert response.status_code == 200
    assert '<span class="diff-remove">-  priority 100</span>' in html
    assert '<span class="diff-add">+  priority 90</span>' in html
    assert "oldsecret1" not in html and "newsecret2" not in html
    assert html.index(f"#{old.pk}") < html.index(f"#{new.pk}")  # the older one is the "from" side


def test_the_snapshot_diff_refuses_a_snapshot_of_another_router(viewer, router) -> None:
    other = make_router(router.zone, name="r-9-VM")
    foreign = snapshot(other, "dnsmasq", "x\n", 3)
    response = viewer.get(reverse("router-snapshot-diff", args=[router.uuid]), {"a": foreign.pk, "b": "abc"})
    html = response.content.decode()
    assert "is not a snapshot of this router" in html and "is not a snapshot number" in html


def test_the_router_page_lists_snapshots_with_a_diff_link_and_the_charts_section(viewer, router) -> None:
    old = snapshot(router, "dnsmasq", "a\n", 60)
    new = snapshot(router, "dnsmasq", "b\n", 5)
    html = viewer.get(reverse("router-detail", args=[router.uuid])).content.decode()
    assert f"?a={old.pk}&amp;b={new.pk}" in html
    assert 'id="charts"' in html and "vendor/plotly/plotly.min.js" in html
    assert reverse("router-history-json", args=[router.uuid]) in html


def test_the_config_probe_stores_its_raw_output_with_secrets_redacted() -> None:
    raw = "==> /etc/keepalived/keepalived.conf <==\n|  auth_pass s3cr3t99\n|  stats auth admin1:AdMiN123\n|priority 1\n"
    redacted = redact_output(raw)
    assert "s3cr3t99" not in redacted and "AdMiN123" not in redacted
    assert "|priority 1" in redacted and redacted.startswith("==> /etc/keepalived/keepalived.conf <==")
