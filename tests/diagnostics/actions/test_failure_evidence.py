"""Error triage against the simulator: what CloudStack recorded about a failed router, and the verdict it gives."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from devcloud.simulator.server import RunningSimulator
from diagnostics.evaluate import evaluate_router
from diagnostics.failure_evidence import failure_conditions, gather_failure_evidence, sorted_events
from diagnostics.models import EvidenceStatus, FailureEvidence, Finding
from tests.diagnostics.actions.support import pick
from vrconsole.cloudstack.client import CloudStackClient
from vrconsole.cloudstack.regions import RegionConfig
from vrconsole.models import Region, Router
from vrconsole.sync import sync_router

pytestmark = pytest.mark.django_db

CAPACITY_TEXT = "Unable to create a deployment for VM[DomainRouter|{name}]"


def broken(sim: RunningSimulator, synced: Region, failure: str = "insufficient-capacity") -> Router:
    """A router put in Error by a failed start in the simulator, and re-synced."""
    router = pick(sim, synced, state="Running", isredundantrouter=False, vpc=False)
    sim.break_router(router.uuid, failure)
    refreshed = sync_router(router)
    assert refreshed is not None and refreshed.state == "Error"
    return Router.objects.select_related("region", "zone", "host", "network", "vpc").get(pk=router.pk)


def gathered(router: Router, **options: object) -> FailureEvidence:
    evidence = FailureEvidence.objects.create(router=router)
    return gather_failure_evidence(evidence, **options)  # type: ignore[arg-type]


def test_a_router_in_error_gets_the_failed_jobs_error_text_and_the_error_event(
    sim: RunningSimulator, synced: Region
) -> None:
    router = broken(sim, synced)
    evidence = gathered(router)

    assert evidence.status == EvidenceStatus.COMPLETE, evidence.unknown
    assert evidence.conditions[0].startswith("in Error since")
    [job] = [j for j in evidence.failed_jobs if j["command"] == "StartRouterCmd"]
    assert job["status"] == "failed" and job["errorcode"] == 533
    assert job["errortext"] == CAPACITY_TEXT.format(name=router.name)
    assert evidence.events[0]["level"] == "ERROR" and evidence.events[0]["type"] == "ROUTER.START"
    assert evidence.events[0]["description"].startswith("Error while starting router Vm")
    assert evidence.template["isready"] is True
    assert evidence.network["state"] == "Implemented"
    assert evidence.failure_time is not None
    assert evidence.cloudstack_version == "4.20.1.0"


def test_the_verdict_carries_cloudstacks_text_and_names_the_fitting_action(
    sim: RunningSimulator, synced: Region
) -> None:
    router = broken(sim, synced)
    gathered(router)
    evaluation = evaluate_router(router)

    [verdict] = [v for v in evaluation.verdicts if v.rule == "router-in-error-state"]
    text = CAPACITY_TEXT.format(name=router.name)
    assert text in verdict.title
    assert any(text in line and "StartRouterCmd failed" in line for line in verdict.evidence)
    assert any(line.startswith("event ROUTER.START ERROR") for line in verdict.evidence)
    assert "no host (or primary storage) with room" in verdict.remediation
    assert verdict.action == "restart-network-cleanup"
    finding = Finding.objects.get(router=router, rule="router-in-error-state")
    assert finding.action == "restart-network-cleanup" and text in finding.title


def test_an_ssh_timeout_on_start_names_the_aggregation_timeout(sim: RunningSimulator, synced: Region) -> None:
    router = broken(sim, synced, "ssh-timeout")
    gathered(router)
    [verdict] = [v for v in evaluate_router(router).verdicts if v.rule == "router-in-error-state"]
    assert "router.aggregation.command.each.timeout" in verdict.remediation
    assert "Timed out in waiting SSH execution result" in verdict.title


def test_before_the_record_is_read_the_verdict_says_so(sim: RunningSimulator, synced: Region) -> None:
    router = broken(sim, synced)
    [verdict] = [v for v in evaluate_router(router).verdicts if v.rule == "router-in-error-state"]
    assert any("has not been read for this failure yet" in line for line in verdict.evidence)


def test_an_api_that_is_away_makes_every_part_unknown_not_empty(sim: RunningSimulator, synced: Region) -> None:
    router = broken(sim, synced)
    sim.fail("error530")
    evidence = gathered(router)
    assert evidence.status == EvidenceStatus.FAILED
    assert {"events", "jobs", "template", "network"} <= set(evidence.unknown)
    assert "HTTP 530" in evidence.unknown["events"]
    assert evidence.failed_jobs == [] and evidence.events == []


def test_one_part_failing_is_unknown_and_the_rest_is_kept(sim: RunningSimulator, synced: Region) -> None:
    router = broken(sim, synced)
    sim.fail("error530", command="listAsyncJobs")
    evidence = gathered(router)
    assert evidence.status == EvidenceStatus.PARTIAL
    assert set(evidence.unknown) == {"jobs"} and evidence.events


def test_an_older_cloudstack_is_asked_by_keyword(sim: RunningSimulator, synced: Region) -> None:
    router = broken(sim, synced)
    client = CloudStackClient(RegionConfig("lab", sim.url, sim.api_key, sim.secret_key, timeout=5))
    since = timezone.now() - timedelta(hours=1)
    sim.cloud.event_log.version = "4.16.1.0"
    by_keyword = client.router_events(router.uuid, router.name, since, "4.16.1.0")
    by_resource = client.router_events(router.uuid, router.name, since, "4.17.0.0")
    # An old server ignores resourceid, so asking that way would return every event of the cloud.
    assert len(by_resource) == len(sim.cloud.event_log.events)
    assert all(router.name in e["description"] or router.name in str(e) for e in by_keyword)


def test_events_come_error_first_then_warn_newest_first() -> None:
    events = sorted_events(
        [
            {"level": "INFO", "type": "A", "created": "2025-01-01T10:00:03+0000"},
            {"level": "ERROR", "type": "B", "created": "2025-01-01T10:00:01+0000"},
            {"level": "WARN", "type": "C", "created": "2025-01-01T10:00:02+0000"},
            {"level": "ERROR", "type": "D", "created": "2025-01-01T10:00:04+0000"},
            "garbage",
        ]
    )
    assert [e["type"] for e in events] == ["D", "B", "C", "A"]


def test_a_stopped_router_of_an_implemented_network_is_unexpected(sim: RunningSimulator, synced: Region) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False, vpc=False)
    sim.set_router(router.uuid, state="Stopped")
    router = sync_router(router)
    assert router is not None
    router = Router.objects.select_related("network", "vpc", "host").get(pk=router.pk)
    assert router.network.state == "Implemented"
    assert failure_conditions(router)[0].startswith("Stopped since")
    [verdict] = [v for v in evaluate_router(router).verdicts if v.rule == "router-stopped-unexpectedly"]
    assert verdict.action == "start" and verdict.severity == "critical"


def test_a_router_stuck_in_starting_and_a_host_not_up_are_conditions(sim: RunningSimulator, synced: Region) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False)
    Router.objects.filter(pk=router.pk).update(state="Starting", state_since=timezone.now() - timedelta(hours=1))
    router.refresh_from_db()
    assert failure_conditions(router)[0].startswith("stuck in Starting for 60 min")
    router.host.state = "Disconnected"
    router.host.save()
    assert failure_conditions(router)[-1] == f"its host {router.host.name} is Disconnected"
    verdicts = {v.rule: v for v in evaluate_router(router).verdicts}
    assert verdicts["router-stuck-in-transition"].action == "stop-forced"
    assert verdicts["router-host-not-up"].action == "restart-network-cleanup"


def test_a_healthy_running_router_needs_no_look(sim: RunningSimulator, synced: Region) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False)
    assert failure_conditions(router) == []


def test_triage_of_a_router_in_error_reads_cloudstacks_record_and_names_the_action(
    sim: RunningSimulator, synced: Region
) -> None:
    import json
    from io import StringIO

    from django.core.management import call_command

    router = pick(sim, synced, state="Running", isredundantrouter=False, vpc=False)
    sim.break_router(router.uuid)
    out = StringIO()
    call_command("triage", router.name, "--json", stdout=out, stderr=StringIO())
    data = json.loads(out.getvalue().strip().splitlines()[-1])
    assert data["router"]["state"] == "Error"
    evidence = data["failure_evidence"]
    assert evidence["status"] == "complete" and evidence["conditions"][0].startswith("in Error")
    assert evidence["failed_jobs"][0]["errortext"] == CAPACITY_TEXT.format(name=router.name)
    [verdict] = [v for v in data["verdicts"] if v["rule"] == "router-in-error-state"]
    assert verdict["action"] == "restart-network-cleanup"
