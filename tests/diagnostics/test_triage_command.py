"""Tests of `manage.py triage`: sync, collect, evaluate, print; the --json shape and the exit status."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from diagnostics.models import SEVERITY_RANKS, Collection, CollectionStatus, ProbeResult
from tests.diagnostics.matrix_doubles import FIXTURES
from tests.vrconsole.router_factory import make_host, make_region, make_router, make_zone
from vrconsole.cloudstack.client import ApiFailure

pytestmark = pytest.mark.django_db

TRIAGE = "diagnostics.management.commands.triage"


# The real matrix judges canned facts: dnsmasq and keepalived down on a redundant PRIMARY.
DNSMASQ_DOWN = {
    "processes": json.loads((FIXTURES / "processes/keepalived_and_dnsmasq_down.json").read_text()),
    "disk": json.loads((FIXTURES / "disk/captured.json").read_text()),
}


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
    """Replace SSH with a collection that ends as given; the command judges it like a real one."""
    collected = []

    def run_collection(collection, probes=None, *, publish=None, **kwargs):
        collection.status = status
        collection.reason = reason
        collection.error = error
        collection.facts = DNSMASQ_DOWN if facts is None else facts
        collection.started = collection.finished = timezone.now()
        collection.duration_s = 1.25
        collection.save()
        if status == CollectionStatus.SUCCEEDED:
            ProbeResult.objects.create(collection=collection, name="conntrack", ok=False, error="exit status 1")
        collected.append(collection.trigger)
        return collection

    monkeypatch.setattr(f"{TRIAGE}.run_collection", run_collection)
    return collected


def triage(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("triage", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_it_refuses_an_unknown_router():
    with pytest.raises(CommandError, match="no router named"):
        triage("r-404-VM")


def test_it_ends_json_output_with_the_router_collection_and_verdicts(monkeypatch, router, api_lists_router):
    canned_collection(monkeypatch)
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
    dnsmasq = next(v for v in data["verdicts"] if v["rule"] == "dnsmasq-not-running")
    assert set(dnsmasq) == {"rule", "category", "categories", "severity", "title", "evidence", "remediation", "action"}
    assert dnsmasq["action"] == "restart-service:dnsmasq"
    # dnsmasq serves DHCP and DNS: the primary category, then every category it takes down.
    assert (dnsmasq["category"], dnsmasq["categories"]) == ("dhcp", ["dhcp", "dns"])
    assert (dnsmasq["category"], dnsmasq["severity"]) == ("dhcp", "critical")
    assert dnsmasq["evidence"] and dnsmasq["remediation"]
    assert data["status"] == "critical"


def test_it_syncs_and_collects_with_the_triage_trigger(monkeypatch, router, api_lists_router):
    collected = canned_collection(monkeypatch)
    triage(router.uuid, "--json")
    assert api_lists_router == [router.pk]
    assert collected == ["triage"]


def test_it_lists_the_verdicts_worst_first(monkeypatch, router, api_lists_router):
    canned_collection(monkeypatch)
    data = last_json(triage("r-231-VM", "--json")[0])
    ranks = [SEVERITY_RANKS[v["severity"]] for v in data["verdicts"]]
    assert len(ranks) > 1
    assert ranks == sorted(ranks, reverse=True)


def test_it_exits_normally_when_the_router_cannot_be_reached(monkeypatch, router, api_lists_router):
    canned_collection(monkeypatch, CollectionStatus.FAILED, facts={}, reason="timeout", error="connect timed out")
    data = last_json(triage("r-231-VM", "--json")[0])
    assert (data["collection"]["status"], data["collection"]["error"]) == ("failed", "connect timed out")
    assert "router-unmanageable" in [v["rule"] for v in data["verdicts"]]


def test_it_goes_on_with_the_stored_inventory_when_the_api_fails(monkeypatch, router):
    def sync_router(router):
        raise ApiFailure("HTTP 401: unable to verify user credentials")

    monkeypatch.setattr("vrconsole.sync.sync_router", sync_router)
    canned_collection(monkeypatch)
    data = last_json(triage("r-231-VM", "--json")[0])
    assert data["sync"]["ok"] is False
    assert "401" in data["sync"]["error"]
    assert data["collection"]["status"] == "succeeded"


def test_it_does_not_collect_a_router_the_api_no_longer_lists(monkeypatch, router):
    monkeypatch.setattr("vrconsole.sync.sync_router", lambda router: None)
    collected = canned_collection(monkeypatch)
    data = last_json(triage("r-231-VM", "--json")[0])
    assert collected == []
    assert data["collection"]["status"] == "skipped"
    assert "no longer lists" in data["collection"]["error"]
    assert not Collection.objects.exists()


def test_it_fails_when_the_matrix_cannot_run(monkeypatch, router, api_lists_router):
    canned_collection(monkeypatch)

    def broken(*args, **kwargs):
        raise RuntimeError("rule bug")

    monkeypatch.setattr("diagnostics.evaluate.build_context", broken)
    with pytest.raises(CommandError, match="could not run"):
        triage("r-231-VM", "--json")


def test_it_prints_verdicts_readably_with_terminal_controls_made_visible(monkeypatch, router, api_lists_router):
    canned_collection(monkeypatch)
    output, _ = triage("r-231-VM")
    assert "▲ critical dnsmasq-not-running [dhcp, dns]" in output
    assert "Fix: " in output
    assert "status: ▲ critical" in output


def test_it_makes_terminal_controls_from_the_router_visible(monkeypatch, router, api_lists_router):
    hostile = "\x1b]0;owned\x07 connect timed out"
    canned_collection(monkeypatch, CollectionStatus.FAILED, facts={}, reason="timeout", error=hostile)
    output, _ = triage("r-231-VM")
    assert "]0;owned" in output
    assert "\x1b" not in output and "\x07" not in output
