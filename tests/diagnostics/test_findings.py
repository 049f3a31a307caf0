"""Tests of the finding lifecycle: open, stay open, resolve, reopen, and the router's status."""

from __future__ import annotations

import pytest

from diagnostics.findings import merge_by_rule, status_for
from diagnostics.matrix.base import Verdict
from diagnostics.models import CollectionStatus, Finding, RouterHealth, VerdictRecord
from tests.diagnostics.matrix_doubles import FakeMatrix, finished_collection, stored_facts
from tests.vrconsole.router_factory import make_region, make_router, make_zone

pytestmark = pytest.mark.django_db

FACTS = stored_facts("processes", "disk")


@pytest.fixture
def fake_matrix():
    return FakeMatrix()


@pytest.fixture
def router():
    return make_router(make_zone(make_region()), name="r-231-VM")


def evaluate_new_collection(fake_matrix, router, status=CollectionStatus.SUCCEEDED, facts=FACTS):
    collection = finished_collection(router, status=status, facts=facts)
    return fake_matrix.evaluate(router, collection)


def test_it_opens_a_finding_on_the_first_verdict(fake_matrix, router):
    fake_matrix.fire("dnsmasq-not-running", "pidof dnsmasq returned nothing")
    evaluate_new_collection(fake_matrix, router)
    finding = Finding.objects.get(router=router, rule="dnsmasq-not-running")
    assert finding.is_open
    assert finding.times_opened == 1
    assert finding.evidence == ["pidof dnsmasq returned nothing"]
    assert finding.category == "dhcp"


def test_it_keeps_every_verdict_on_its_collection(fake_matrix, router):
    fake_matrix.fire("dnsmasq-not-running")
    fake_matrix.fire("template-outdated")
    evaluation = evaluate_new_collection(fake_matrix, router)
    rules = set(VerdictRecord.objects.filter(collection=evaluation.collection).values_list("rule", flat=True))
    assert rules == {"dnsmasq-not-running", "template-outdated"}


def test_it_keeps_a_finding_open_with_last_seen_moving(fake_matrix, router):
    fake_matrix.fire("dnsmasq-not-running", "first")
    evaluate_new_collection(fake_matrix, router)
    first = Finding.objects.get(rule="dnsmasq-not-running")
    fake_matrix.fire("dnsmasq-not-running", "second")
    second_evaluation = evaluate_new_collection(fake_matrix, router)
    finding = Finding.objects.get(rule="dnsmasq-not-running")
    assert finding.is_open
    assert finding.opened_at == first.opened_at
    assert finding.last_seen > first.last_seen
    assert finding.evidence == ["second"]
    assert finding.last_collection_id == second_evaluation.collection.pk
    assert finding.first_collection_id == first.first_collection_id


def test_it_resolves_a_finding_when_the_rule_stops_firing(fake_matrix, router):
    fake_matrix.fire("dnsmasq-not-running")
    evaluate_new_collection(fake_matrix, router)
    fake_matrix.quiet("dnsmasq-not-running")
    evaluation = evaluate_new_collection(fake_matrix, router)
    finding = Finding.objects.get(rule="dnsmasq-not-running")
    assert finding.resolved_at is not None
    assert evaluation.fold.resolved == ["dnsmasq-not-running"]


def test_it_reopens_a_resolved_finding_and_counts_the_flap(fake_matrix, router):
    fake_matrix.fire("dnsmasq-not-running")
    evaluate_new_collection(fake_matrix, router)
    fake_matrix.quiet("dnsmasq-not-running")
    evaluate_new_collection(fake_matrix, router)
    fake_matrix.fire("dnsmasq-not-running")
    evaluation = evaluate_new_collection(fake_matrix, router)
    finding = Finding.objects.get(rule="dnsmasq-not-running")
    assert finding.is_open
    assert finding.times_opened == 2
    assert finding.reopened == 1
    assert finding.opened_at > finding.first_seen
    assert evaluation.fold.reopened == ["dnsmasq-not-running"]
    assert Finding.objects.filter(router=router).count() == 1


def test_it_keeps_a_finding_open_when_its_rule_could_not_look(fake_matrix, router):
    fake_matrix.fire("dnsmasq-not-running")
    evaluate_new_collection(fake_matrix, router)
    fake_matrix.quiet("dnsmasq-not-running")
    # The processes probe failed this time: dnsmasq may still be down, nobody looked.
    evaluation = evaluate_new_collection(fake_matrix, router, facts=stored_facts("disk"))
    assert Finding.objects.get(rule="dnsmasq-not-running").is_open
    assert evaluation.fold.unjudged == ["dnsmasq-not-running"]


def test_it_does_not_resolve_findings_when_the_router_cannot_be_reached(fake_matrix, router):
    fake_matrix.fire("dnsmasq-not-running")
    evaluate_new_collection(fake_matrix, router)
    fake_matrix.quiet("dnsmasq-not-running")
    fake_matrix.fire("router-unreachable", "ssh: timed out")
    evaluate_new_collection(fake_matrix, router, status=CollectionStatus.FAILED, facts={})
    assert set(Finding.objects.open().values_list("rule", flat=True)) == {"dnsmasq-not-running", "router-unreachable"}


def test_it_resolves_an_api_finding_even_without_facts(fake_matrix, router):
    fake_matrix.fire("router-unreachable")
    evaluate_new_collection(fake_matrix, router, status=CollectionStatus.FAILED, facts={})
    fake_matrix.quiet("router-unreachable")
    evaluate_new_collection(fake_matrix, router)
    assert not Finding.objects.get(rule="router-unreachable").is_open


def test_it_gives_the_worst_open_finding_as_status(fake_matrix, router):
    fake_matrix.fire("var-log-nearly-full")
    fake_matrix.fire("template-outdated")
    evaluate_new_collection(fake_matrix, router)
    assert RouterHealth.status_of(router) == "warning"
    fake_matrix.fire("dnsmasq-not-running")
    evaluate_new_collection(fake_matrix, router)
    health = RouterHealth.objects.get(router=router)
    assert health.status == "critical"
    assert health.category_list == ["dhcp", "disk", "template"]


def test_it_says_ok_when_only_info_findings_are_open(fake_matrix, router):
    fake_matrix.fire("template-outdated")
    evaluate_new_collection(fake_matrix, router)
    assert RouterHealth.status_of(router) == "ok"


def test_it_says_unknown_for_a_router_never_collected(fake_matrix, router):
    assert RouterHealth.status_of(router) == "unknown"
    fake_matrix.evaluate(router)
    assert RouterHealth.status_of(router) == "unknown"


def test_it_says_unknown_when_the_last_collection_failed(fake_matrix, router):
    fake_matrix.fire("dnsmasq-not-running")
    evaluate_new_collection(fake_matrix, router)
    fake_matrix.fire("router-unreachable")
    evaluate_new_collection(fake_matrix, router, status=CollectionStatus.FAILED, facts={})
    assert RouterHealth.status_of(router) == "unknown"


def test_it_moves_status_since_only_when_the_status_changes(fake_matrix, router):
    fake_matrix.fire("dnsmasq-not-running")
    evaluate_new_collection(fake_matrix, router)
    since = RouterHealth.objects.get(router=router).status_since
    evaluate_new_collection(fake_matrix, router)
    assert RouterHealth.objects.get(router=router).status_since == since


def test_it_merges_several_verdicts_of_one_rule_into_one_finding() -> None:
    verdicts = [
        Verdict("disk-full", "disk", "warning", "/var/log 91%", ("a",), "clean"),
        Verdict("disk-full", "disk", "critical", "/ 99%", ("b",), "grow"),
    ]
    merged = merge_by_rule(verdicts)["disk-full"]
    assert (merged.severity, merged.title, merged.evidence) == ("critical", "/ 99% (and 1 more)", ("a", "b"))


@pytest.mark.parametrize(
    ("collection_status", "severities", "expected"),
    [
        (None, ["critical"], "unknown"),
        ("failed", ["critical"], "unknown"),
        ("errored", [], "unknown"),
        ("succeeded", [], "ok"),
        ("succeeded", ["info", "warning"], "warning"),
        ("succeeded", ["warning", "critical"], "critical"),
    ],
)
def test_it_derives_the_status_from_the_collection_and_severities(collection_status, severities, expected) -> None:
    assert status_for(collection_status, severities) == expected
