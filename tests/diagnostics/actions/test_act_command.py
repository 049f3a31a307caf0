"""`manage.py act`: a dry run calls nothing mutating; --yes runs it; --json ends with the one object."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from devcloud.simulator.server import RunningSimulator
from diagnostics.models import ActionRun, ActionStatus
from tests.diagnostics.actions.support import pick
from vrconsole.models import AuditEntry, Region

pytestmark = pytest.mark.django_db

MUTATING = (
    "rebootRouter",
    "startRouter",
    "stopRouter",
    "destroyRouter",
    "restartNetwork",
    "restartVPC",
    "upgradeRouterTemplate",
    "changeServiceForRouter",
    "scaleSystemVm",
)


def act(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("act", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def mutating_calls(sim: RunningSimulator) -> dict[str, int]:
    requests = sim.stats()["requests"]
    return {name: requests[name] for name in MUTATING if requests.get(name)}


def test_without_yes_it_is_a_dry_run_that_calls_nothing_mutating(sim: RunningSimulator, synced: Region) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False, vpc=False)
    out, _ = act(router.name, "restart-network-cleanup", "--reason", "INC-5 what would happen")
    assert "DRY RUN: would run Restart network with cleanup on network" in out
    assert "destroys every router of the network" in out and "captures evidence first by default" in out
    assert mutating_calls(sim) == {}
    run = ActionRun.objects.get()
    assert run.dry_run and run.status == ActionStatus.PLANNED
    assert AuditEntry.objects.get(action="action.dry_run").detail.endswith("reason: INC-5 what would happen")


def test_a_json_dry_run_ends_with_the_one_object(sim: RunningSimulator, synced: Region) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False, vpc=False)
    out, _ = act(router.uuid, "reboot", "--reason", "INC-6", "--json")
    payload = last_json(out)
    assert {"router", "action", "dry_run", "job", "evidence_collection", "audit_id"} <= set(payload)
    assert payload["router"] == router.name and payload["action"] == "reboot" and payload["dry_run"] is True
    assert payload["job"] == {"id": None, "status": "succeeded", "error": ""}
    assert payload["evidence_collection"] is None
    assert AuditEntry.objects.get(pk=payload["audit_id"]).action == "action.dry_run"
    assert mutating_calls(sim) == {}


def test_with_yes_it_runs_and_reports_the_job(sim: RunningSimulator, synced: Region) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False, vpc=False)
    out, _ = act(router.name, "reboot", "--reason", "INC-7", "--yes", "--json")
    payload = last_json(out)
    assert payload["dry_run"] is False and payload["job"]["status"] == "succeeded" and payload["job"]["id"]
    assert payload["job"]["id"] in sim.cloud.jobs
    # Destructive on a Running router: evidence first, by default (synthetic router: it could not be reached).
    assert payload["evidence_collection"] is not None
    assert AuditEntry.objects.get(pk=payload["audit_id"]).action == "action.finished"
    assert mutating_calls(sim) == {"rebootRouter": 1}


def test_a_failed_job_is_failed_in_the_object_and_the_exit_status(sim: RunningSimulator, synced: Region) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False, vpc=False)
    sim.set_router(router.uuid, state="Stopped")
    out = StringIO()
    with pytest.raises(CommandError, match="reboot failed"):
        call_command("act", router.name, "reboot", "--reason", "INC-8", "--yes", "--json", "--no-evidence", stdout=out)
    payload = last_json(out.getvalue())
    assert payload["job"]["status"] == "failed"
    assert payload["job"]["error"] == "Unable to reboot domR, it is not in right state Stopped"
    assert payload["evidence_collection"] is None


def test_a_refused_action_is_failed_with_the_reason(sim: RunningSimulator, synced: Region) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=True, redundantstate="BACKUP")
    out = StringIO()
    with pytest.raises(CommandError, match="refused"):
        call_command("act", router.name, "restart-service:dnsmasq", "--reason", "INC-9", "--yes", "--json", stdout=out)
    payload = last_json(out.getvalue())
    assert payload["job"]["status"] == "failed" and "must not run on a redundant BACKUP" in payload["job"]["error"]
    assert AuditEntry.objects.get(pk=payload["audit_id"]).action == "action.refused"


def test_an_unknown_action_is_a_usage_error(sim: RunningSimulator, synced: Region) -> None:
    router = pick(sim, synced, state="Running")
    with pytest.raises(CommandError, match="unknown action"):
        act(router.name, "explode", "--reason", "x")
