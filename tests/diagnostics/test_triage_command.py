"""Tests of `manage.py triage`: sync, collect, evaluate, print; the --json shape and the exit status."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from diagnostics.evaluate import evaluate_after_collection
from diagnostics.models import Collection, CollectionStatus, ProbeResult
from tests.diagnostics.matrix_doubles import install_fake_matrix, stored_facts
from tests.vrconsole.router_factory import make_host, make_region, make_router, make_zone
from vrconsole.cloudstack.client import ApiFailure

pytestmark = pytest.mark.django_db

TRIAGE = "diagnostics.management.commands.triage"


@pytest.fixture
def fake_matrix(monkeypatch):
    return install_fake_matrix(monkeypatch)


@pytest.fixture
def router():
    zone = make_zone(make_region(), name="zone-a")
    host = make_host(zone, name="kvm-07")
    return make_router(
        zone, name="r-231-VM", host=host, is_redundant=True, redundant_state="PRIMARY", link_local_ip="169.254.3.4"
    )


@pytest.fixture
def api_lists_router(monkeypatch):
    synced = []

    def sync_router(router):
        synced.append(router.pk)
        return router

    monkeypatch.setattr("vrconsole.sync.sync_router", sync_router)
    return synced


def canned_collection(monkeypatch, status=CollectionStatus.SUCCEEDED, facts=None, reason="", error=""):
    """Replace SSH with a collection that ends as given, then runs the same hook a real one does."""
    collected = []

    def run_collection(collection, probes=None, *, publish=None, **kwargs):
        collection.status = status
        collection.reason = reason
        collection.error = error
        collection.facts = stored_facts("processes", "disk") if facts is None else facts
        collection.started = collection.finished = timezone.now()
        collection.duration_s = 1.25
        collection.save()
        if status == CollectionStatus.SUCCEEDED:
            ProbeResult.objects.create(collection=collection, name="conntrack", ok=False, error="exit status 1")
        collected.append(collection.trigger)
        evaluate_after_collection(collection)
        return collection

    monkeypatch.setattr(f"{TRIAGE}.run_collection", run_collection)
    return collected


def triage(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("triage", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_it_refuses_an_unknown_router(fake_matrix):
    with pytest.raises(CommandError, match="no router named"):
        triage("r-404-VM")


def test_it_ends_json_output_with_the_router_collection_and_verdicts(
    monkeypatch, fake_matrix, router, api_lists_router
):
    canned_collection(monkeypatch)
    fake_matrix.fire("dnsmasq-not-running", "pidof dnsmasq returned nothing")
    output, _ = triage("r-231-VM", "--json")
    data = last_json(output)
    assert {"name": "r-231-VM", "uuid": router.uuid, "state": "Running", "redundant_state": "PRIMARY"}.items() <= data[
        "router"
    ].items()
    assert (data["router"]["hypervisor"], data["router"]["zone"], data["router"]["host"]) == ("KVM", "zone-a", "kvm-07")
    assert data["collection"]["status"] == "succeeded"
    assert data["collection"]["duration_s"] == 1.25
    assert data["collection"]["error"] == ""
    assert data["collection"]["probe_errors"] == {"conntrack": "exit status 1"}
    assert data["verdicts"] == [
        {
            "rule": "dnsmasq-not-running",
            "category": "dhcp",
            "severity": "critical",
            "title": "dnsmasq-not-running on r-231-VM",
            "evidence": ["pidof dnsmasq returned nothing"],
            "remediation": "Fix dnsmasq-not-running: restart it, then check /var/log/cloud.log.",
        }
    ]
    assert data["status"] == "critical"


def test_it_syncs_and_collects_with_the_triage_trigger(monkeypatch, fake_matrix, router, api_lists_router):
    collected = canned_collection(monkeypatch)
    triage(router.uuid, "--json")
    assert api_lists_router == [router.pk]
    assert collected == ["triage"]


def test_it_lists_the_verdicts_worst_first(monkeypatch, fake_matrix, router, api_lists_router):
    canned_collection(monkeypatch)
    fake_matrix.fire("template-outdated")
    fake_matrix.fire("dnsmasq-not-running")
    fake_matrix.fire("var-log-nearly-full")
    data = last_json(triage("r-231-VM", "--json")[0])
    assert [v["rule"] for v in data["verdicts"]] == ["dnsmasq-not-running", "var-log-nearly-full", "template-outdated"]


def test_it_exits_normally_when_the_router_cannot_be_reached(monkeypatch, fake_matrix, router, api_lists_router):
    canned_collection(monkeypatch, CollectionStatus.FAILED, facts={}, reason="timeout", error="connect timed out")
    fake_matrix.fire("router-unreachable", "ssh to 169.254.3.4:3922 timed out")
    data = last_json(triage("r-231-VM", "--json")[0])
    assert (data["collection"]["status"], data["collection"]["error"]) == ("failed", "connect timed out")
    assert [v["rule"] for v in data["verdicts"]] == ["router-unreachable"]
    assert data["status"] == "unknown"


def test_it_evaluates_itself_when_the_collection_hook_did_not(monkeypatch, fake_matrix, router, api_lists_router):
    def run_collection(collection, probes=None, *, publish=None, **kwargs):
        collection.status = CollectionStatus.SUCCEEDED
        collection.finished = timezone.now()
        collection.facts = stored_facts("processes")
        collection.save()
        return collection

    monkeypatch.setattr(f"{TRIAGE}.run_collection", run_collection)
    fake_matrix.fire("dnsmasq-not-running")
    data = last_json(triage("r-231-VM", "--json")[0])
    assert [v["rule"] for v in data["verdicts"]] == ["dnsmasq-not-running"]


def test_it_goes_on_with_the_stored_inventory_when_the_api_fails(monkeypatch, fake_matrix, router):
    def sync_router(router):
        raise ApiFailure("HTTP 401: unable to verify user credentials")

    monkeypatch.setattr("vrconsole.sync.sync_router", sync_router)
    canned_collection(monkeypatch)
    data = last_json(triage("r-231-VM", "--json")[0])
    assert data["sync"]["ok"] is False
    assert "401" in data["sync"]["error"]
    assert data["collection"]["status"] == "succeeded"


def test_it_does_not_collect_a_router_the_api_no_longer_lists(monkeypatch, fake_matrix, router):
    monkeypatch.setattr("vrconsole.sync.sync_router", lambda router: None)
    collected = canned_collection(monkeypatch)
    data = last_json(triage("r-231-VM", "--json")[0])
    assert collected == []
    assert data["collection"]["status"] == "skipped"
    assert "no longer lists" in data["collection"]["error"]
    assert not Collection.objects.exists()


def test_it_fails_when_the_matrix_cannot_run(monkeypatch, fake_matrix, router, api_lists_router):
    canned_collection(monkeypatch)

    def broken(context):
        raise RuntimeError("rule bug")

    monkeypatch.setattr("diagnostics.matrix.evaluate", broken)
    with pytest.raises(CommandError, match="could not run"):
        triage("r-231-VM", "--json")


def test_it_prints_verdicts_readably_with_terminal_controls_made_visible(
    monkeypatch, fake_matrix, router, api_lists_router
):
    canned_collection(monkeypatch)
    fake_matrix.fire("dnsmasq-not-running", "dnsmasq.log: \x1b]0;owned\x07 last line 02:13:58")
    output, _ = triage("r-231-VM")
    assert "▲ critical dnsmasq-not-running [dhcp]" in output
    assert "    | dnsmasq.log: \\x1b]0;owned\\x07 last line 02:13:58" in output
    assert "\x1b" not in output
    assert "Fix: Fix dnsmasq-not-running" in output
    assert "status: ▲ critical" in output
