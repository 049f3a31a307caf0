"""Retention deletes exactly what it should, keeps what it must, and running it twice changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone

from diagnostics.models import (
    Collection,
    CollectionStatus,
    ConfigSnapshot,
    Finding,
    FindingEvent,
    HealthRollup,
    HealthSample,
    Notification,
    NotificationDelivery,
    ProbeResult,
    RouterHealth,
    Silence,
    VerdictRecord,
)
from diagnostics.retention import apply_retention
from diagnostics.rollup import roll_up
from tests.vrconsole.router_factory import make_region, make_router, make_zone
from vrconsole.models import AuditEntry, SyncRun

pytestmark = pytest.mark.django_db
NOW = timezone.now()


@pytest.fixture
def retention(settings):
    settings.HEALTH_RETENTION_DAYS = 14
    settings.HEALTH_ROLLUP_RETENTION_DAYS = 400
    settings.COLLECTION_RETENTION_DAYS = 7
    settings.COLLECTION_EVIDENCE_RETENTION_DAYS = 90
    settings.CONFIG_SNAPSHOT_RETENTION_DAYS = 90
    settings.SYNC_RUN_RETENTION_DAYS = 30
    settings.AUDIT_RETENTION_DAYS = 400
    settings.RETENTION_BATCH_SIZE = 100
    return settings


@pytest.fixture
def router():
    return make_router(make_zone(make_region()), name="r-300-VM")


def collection(router, days_ago: float, **fields) -> Collection:
    moment = NOW - timedelta(days=days_ago)
    made = Collection.objects.create(
        router=router, status=CollectionStatus.SUCCEEDED, created=moment, started=moment, finished=moment, **fields
    )
    ProbeResult.objects.create(collection=made, name="conntrack", ok=True, stdout="x" * 100)
    VerdictRecord.objects.create(collection=made, router=router, rule="r", category="c", severity="warning", title="t")
    HealthSample.objects.create(router=router, collection=made, at=moment, cpu_percent=10.0)
    return made


def test_it_deletes_old_samples_collections_and_their_probe_output_and_verdicts(retention, router) -> None:
    old = collection(router, 20)
    kept = collection(router, 1)
    report = apply_retention(NOW)
    assert not Collection.objects.filter(pk=old.pk).exists()
    assert not ProbeResult.objects.filter(collection_id=old.pk).exists()
    assert not VerdictRecord.objects.filter(collection_id=old.pk).exists()
    assert list(HealthSample.objects.filter(at__lt=NOW - timedelta(days=14)).values_list("pk", flat=True)) == []
    assert HealthSample.objects.get(collection_id=kept.pk)
    assert report.deleted["collections"] == 1 and report.deleted["health samples"] == 1


def test_it_rolls_samples_up_before_deleting_them(retention, router) -> None:
    collection(router, 20)
    apply_retention(NOW)
    assert HealthRollup.objects.filter(router=router, span=3600, cpu_percent_n=1).exists()


def test_a_collection_older_than_the_retention_keeps_its_sample_until_the_sample_retention(retention, router) -> None:
    middle = collection(router, 10)
    collection(router, 1)
    apply_retention(NOW)
    assert not Collection.objects.filter(pk=middle.pk).exists()
    # The sample stays (and keeps the pruned collection's number: its page says it was pruned).
    assert HealthSample.objects.filter(at=middle.created).exists()


def test_it_keeps_the_latest_collection_of_a_router_whatever_its_age(retention, router) -> None:
    only = collection(router, 60)
    apply_retention(NOW)
    assert Collection.objects.filter(pk=only.pk).exists()


def test_it_keeps_evidence_captured_before_a_destructive_action_whatever_its_age(retention, router) -> None:
    evidence = collection(router, 400, keep=True)
    collection(router, 1)
    apply_retention(NOW)
    assert Collection.objects.filter(pk=evidence.pk).exists()
    assert ProbeResult.objects.filter(collection_id=evidence.pk).exists()


def test_it_keeps_collections_that_opened_or_resolved_a_finding_for_the_evidence_retention(retention, router) -> None:
    opened = collection(router, 30)
    too_old = collection(router, 120)
    for made in (opened, too_old):
        FindingEvent.objects.create(
            router=router, rule="r", category="c", severity="warning", kind="opened", collection=made, at=made.created
        )
    collection(router, 1)
    apply_retention(NOW)
    assert Collection.objects.filter(pk=opened.pk).exists()
    assert not Collection.objects.filter(pk=too_old.pk).exists()


def test_it_keeps_the_evidence_of_an_open_finding_and_the_collection_a_status_was_judged_from(
    retention, router
) -> None:
    evidence = collection(router, 200)
    judged = collection(router, 150)
    collection(router, 1)
    Finding.objects.create(
        router=router, rule="r", category="c", severity="critical", title="t", first_collection=evidence
    )
    RouterHealth.objects.create(router=router, collection=judged)
    apply_retention(NOW)
    assert Collection.objects.filter(pk__in=[evidence.pk, judged.pk]).count() == 2


def test_it_keeps_the_latest_config_snapshot_of_each_kind(retention, router) -> None:
    source = collection(router, 200)

    def snap(kind, days):
        return ConfigSnapshot.objects.create(
            router=router, collection=source, kind=kind, content=kind, sha256=kind, taken_at=NOW - timedelta(days=days)
        )

    replaced, latest_old, recent = snap("dnsmasq", 200), snap("dnsmasq", 150), snap("haproxy", 150)
    newer_dnsmasq = snap("dnsmasq", 1)
    apply_retention(NOW)
    left = set(ConfigSnapshot.objects.values_list("pk", flat=True))
    assert left == {recent.pk, newer_dnsmasq.pk}
    assert replaced.pk not in left and latest_old.pk not in left


def test_it_prunes_sync_runs_but_the_latest_of_each_region_sessions_and_old_audit_entries(retention, router) -> None:
    region = router.region
    old_run = SyncRun.objects.create(region=region, started=NOW - timedelta(days=60))
    last_old_run = SyncRun.objects.create(region=region, started=NOW - timedelta(days=40))
    Session.objects.create(session_key="a" * 32, session_data="x", expire_date=NOW - timedelta(days=1))
    Session.objects.create(session_key="b" * 32, session_data="x", expire_date=NOW + timedelta(days=1))
    ancient = AuditEntry.objects.create(action="test.old", username="system", at=NOW - timedelta(days=500))
    recent = AuditEntry.record("test.recent")
    apply_retention(NOW)
    assert list(SyncRun.objects.values_list("pk", flat=True)) == [last_old_run.pk]
    assert not SyncRun.objects.filter(pk=old_run.pk).exists()
    assert list(Session.objects.values_list("session_key", flat=True)) == ["b" * 32]
    assert not AuditEntry.objects.filter(pk=ancient.pk).exists() and AuditEntry.objects.filter(pk=recent.pk).exists()


def test_it_deletes_rollups_and_finding_events_past_the_rollup_retention(retention, router) -> None:
    HealthRollup.objects.create(router=router, span=3600, start=NOW - timedelta(days=500), samples=1)
    kept = HealthRollup.objects.create(router=router, span=3600, start=NOW - timedelta(days=300), samples=1)
    FindingEvent.objects.create(
        router=router, rule="r", category="c", severity="info", kind="opened", at=NOW - timedelta(days=450)
    )
    apply_retention(NOW)
    assert list(HealthRollup.objects.filter(start__lt=NOW - timedelta(days=30)).values_list("pk", flat=True)) == [
        kept.pk
    ]
    assert not FindingEvent.objects.exists()


def test_running_it_twice_is_running_it_once(retention, router) -> None:
    for days in (40, 20, 10, 5, 1):
        collection(router, days)
    apply_retention(NOW)
    state = (
        sorted(Collection.objects.values_list("pk", flat=True)),
        sorted(HealthSample.objects.values_list("pk", flat=True)),
        sorted(HealthRollup.objects.values_list("pk", "samples")),
    )
    second = apply_retention(NOW)
    assert second.total == 0
    assert state[0] == sorted(Collection.objects.values_list("pk", flat=True))
    assert state[1] == sorted(HealthSample.objects.values_list("pk", flat=True))
    assert [s for _, s in state[2]] == [s for _, s in sorted(HealthRollup.objects.values_list("pk", "samples"))]


def test_a_dry_run_counts_and_deletes_nothing(retention, router) -> None:
    collection(router, 20)
    collection(router, 1)
    report = apply_retention(NOW, dry_run=True)
    assert report.deleted["collections"] == 1 and report.deleted["health samples"] == 1
    assert Collection.objects.count() == 2 and not AuditEntry.objects.filter(action="history.retention").exists()


def test_a_pass_that_deleted_something_is_audited(retention, router) -> None:
    collection(router, 20)
    collection(router, 1)
    apply_retention(NOW)
    entry = AuditEntry.objects.get(action="history.retention")
    assert "1 collections" in entry.detail and entry.username == "system"


def test_rolling_up_twice_gives_the_same_rows(retention, router) -> None:
    for days in (3, 2, 1):
        collection(router, days)
    roll_up(NOW)
    first = sorted(HealthRollup.objects.values_list("span", "start", "samples", "cpu_percent_sum"))
    roll_up(NOW)
    assert sorted(HealthRollup.objects.values_list("span", "start", "samples", "cpu_percent_sum")) == first


def test_it_prunes_old_notifications_and_silences_but_not_those_of_open_findings(retention, router):
    old = NOW - timedelta(days=500)
    still_open = Finding.objects.create(router=router, rule="a", category="dhcp", severity="critical", title="t")
    resolved = Finding.objects.create(
        router=router, rule="b", category="disk", severity="warning", title="t", resolved_at=old
    )
    kept = Notification.objects.create(finding=still_open, router=router, kind="opened", subject="s", created=old)
    gone = Notification.objects.create(finding=resolved, router=router, kind="opened", subject="s", created=old)
    NotificationDelivery.objects.create(notification=gone, channel="email", destination="a@b.c", label="e-mail")
    recent = Notification.objects.create(finding=resolved, router=router, kind="resolved", subject="s")
    Silence.objects.create(router=router, starts=old, ends=old + timedelta(hours=1), reason="long ago")
    current = Silence.objects.create(router=router, ends=NOW + timedelta(hours=1), reason="now")
    report = apply_retention(NOW)
    assert set(Notification.objects.values_list("pk", flat=True)) == {kept.pk, recent.pk}
    assert not NotificationDelivery.objects.exists()
    assert list(Silence.objects.values_list("pk", flat=True)) == [current.pk]
    assert (report.deleted["notifications"], report.deleted["silences"]) == (1, 1)
