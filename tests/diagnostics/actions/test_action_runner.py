"""Actions run to the end against the CloudStack simulator over real HTTP: each job followed to success and failure.

The collections before and after an action are the real code; the synthetic routers' addresses
are outside SSH_ALLOWED_NETWORKS, so those collections end `failed (not_allowed)` before any
packet is sent — which is what an unreachable router gives too (the lab tests cover real SSH).
"""

from __future__ import annotations

import pytest

from devcloud.simulator.server import RunningSimulator
from diagnostics.action_runner import execute_action
from diagnostics.actions import request_action
from diagnostics.models import ActionStatus, Collection, CollectionTrigger
from tests.diagnostics.actions.support import Published, operator, pick, recording_collect
from vrconsole.models import AuditEntry, Region, Router

pytestmark = pytest.mark.django_db


def run(router: Router, name: str, argument: str = "", **options: object) -> tuple[object, Published]:
    published = Published()
    requested = request_action(
        router,
        name,
        argument,
        reason="INC-1234 test",
        user=options.pop("user", None) or operator(),
        acknowledged=True,
        **options,  # type: ignore[arg-type]
    )
    return execute_action(requested, publish=published), published


def test_a_reboot_is_followed_to_success(sim: RunningSimulator, synced: Region) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False, vpc=False)
    done, published = run(router, "reboot", capture_evidence=False)

    assert done.status == ActionStatus.SUCCEEDED
    assert done.job_id and done.job_status == "succeeded" and done.error == ""
    assert done.final_state == "Running"
    assert sim.stats()["requests"]["queryAsyncJobResult"] >= 1
    steps = [event["step"] for event in published.of_type("action.progress")]
    assert steps[:2] == ["started", "submitted"] and "job" in steps and "resync" in steps
    job_messages = [e["message"] for e in published.of_type("action.progress") if e["step"] == "job"]
    assert any("Stopping" in m or "Starting" in m for m in job_messages)
    [finished] = published.of_type("action.finished")
    assert finished["status"] == "succeeded" and finished["job"] == {
        "id": done.job_id,
        "status": "succeeded",
        "error": "",
    }


def test_a_reboot_of_a_stopped_router_fails_with_cloudstacks_text(sim: RunningSimulator, synced: Region) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False, vpc=False)
    sim.set_router(router.uuid, state="Stopped")
    router.state = "Stopped"
    router.save()

    done, published = run(router, "reboot", capture_evidence=False)

    assert done.status == ActionStatus.FAILED
    assert done.job_status == "failed"
    assert done.error == "Unable to reboot domR, it is not in right state Stopped"
    assert published.of_type("action.finished")[0]["job"]["error"] == done.error


def test_start_and_stop_forced_are_followed(sim: RunningSimulator, synced: Region) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False, vpc=True)
    stopped, _ = run(router, "stop-forced", capture_evidence=False)
    assert stopped.status == ActionStatus.SUCCEEDED and stopped.final_state == "Stopped"
    assert sim.cloud.find_router(router.uuid).state == "Stopped"
    assert stopped.parameters == {"id": router.uuid, "forced": True}

    started, _ = run(Router.objects.get(pk=router.pk), "start")
    assert started.status == ActionStatus.SUCCEEDED and started.final_state == "Running"


def test_an_injected_restart_failure_keeps_cloudstacks_error_text(sim: RunningSimulator, synced: Region) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False, vpc=False)
    text = "Failed to restart network: Resource [DataCenter:1] is unreachable: Unable to apply dhcp entry on router"
    sim.inject_failure("restartNetwork", text, target=router.network.uuid)

    done, _ = run(router, "restart-network")

    assert done.status == ActionStatus.FAILED and done.error == text and done.job_status == "failed"


def test_a_restart_with_cleanup_captures_evidence_first_and_follows_the_replacement(
    sim: RunningSimulator, synced: Region
) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False, vpc=False)
    collect = recording_collect()
    requested = request_action(
        router, "restart-network-cleanup", reason="INC-77 router in Error", user=operator(), acknowledged=True
    )
    assert requested.capture_evidence is True  # on by default for a destructive action on a Running router

    done = execute_action(requested, publish=Published(), collect=collect)

    assert done.status == ActionStatus.SUCCEEDED
    evidence = done.evidence_collection
    assert evidence is not None and evidence.keep is True and evidence.trigger == CollectionTrigger.ACTION
    # The evidence was taken before CloudStack was asked anything mutating: first collect call, with the log tails.
    first_collection, probes = collect.calls[0]
    assert first_collection == evidence.pk and "log_tails" in {p.name for p in probes}
    steps = [step["step"] for step in done.progress]
    assert steps.index("evidence") < steps.index("submitted")
    router.refresh_from_db()
    assert router.removed_at is not None
    assert done.final_state.startswith("replaced by r-")
    [replacement] = Router.objects.present().filter(network=router.network)
    assert replacement.state == "Running" and replacement.uuid != router.uuid
    assert done.after_collection is not None and done.after_collection.router_id == replacement.pk


def test_a_vpc_router_restarts_its_vpc(sim: RunningSimulator, synced: Region) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False, vpc=True)
    done, _ = run(router, "restart-network", capture_evidence=False)
    assert done.command == "restartVPC" and done.scope == "vpc" and done.target_uuid == router.vpc.uuid
    assert done.status == ActionStatus.SUCCEEDED
    assert sim.stats()["requests"]["restartVPC"] == 1


def test_fresh_health_checks_report_the_failing_ones(sim: RunningSimulator, synced: Region) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False)
    sim.set_router(router.uuid, failing_checks=["dns_check.py"])
    done, _ = run(router, "fresh-health-checks")
    assert done.status == ActionStatus.SUCCEEDED and done.job_id == ""
    assert done.result["job_result"]["failing"] == ["dns_check.py"]
    assert Router.objects.get(pk=router.pk).health_checks_failed is True


def test_a_template_upgrade_reboots_the_router_onto_the_current_template(sim: RunningSimulator, synced: Region) -> None:
    router = next(r for r in Router.objects.present().filter(region=synced, requires_upgrade=True, state="Running"))
    done, _ = run(router, "upgrade-template", capture_evidence=False)
    assert done.status == ActionStatus.SUCCEEDED and done.job_id
    assert Router.objects.get(pk=router.pk).requires_upgrade is False


def test_the_offering_of_a_stopped_router_is_changed(sim: RunningSimulator, synced: Region) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False)
    sim.set_router(router.uuid, state="Stopped")
    router.state = "Stopped"
    router.save()
    done, _ = run(router, "change-offering", "System Offering For Software Router - Large", capture_evidence=False)
    assert done.status == ActionStatus.SUCCEEDED and done.command == "changeServiceForRouter"
    assert Router.objects.get(pk=router.pk).service_offering == "System Offering For Software Router - Large"


def test_every_action_and_its_outcome_is_in_the_audit_log(sim: RunningSimulator, synced: Region) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False, vpc=False)
    done, _ = run(router, "reboot", capture_evidence=False, user=operator("alice"))
    requested = AuditEntry.objects.get(action="action.requested", router=router)
    finished = AuditEntry.objects.get(action="action.finished", router=router)
    assert requested.username == finished.username == "alice"
    assert "INC-1234 test" in requested.detail and "rebootRouter" in requested.detail
    assert finished.outcome == "succeeded" and done.job_id in finished.detail
    assert done.audit_entry_id == finished.pk


def test_an_unreachable_api_fails_the_action_with_the_reason(sim: RunningSimulator, synced: Region) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False, vpc=False)
    sim.fail("error530", command="rebootRouter")
    done, _ = run(router, "reboot", capture_evidence=False)
    assert done.status == ActionStatus.FAILED
    assert done.error.startswith("CloudStack refused rebootRouter: CloudStack internal error (HTTP 530)")
    assert done.job_id == ""


def test_an_action_whose_network_is_busy_is_not_run_twice(sim: RunningSimulator, synced: Region) -> None:
    router = pick(sim, synced, state="Running", isredundantrouter=False, vpc=False)
    first, _ = run(router, "reboot", capture_evidence=False)
    assert first.status == ActionStatus.SUCCEEDED
    # A finished run frees the network: the next one is accepted.
    second, _ = run(router, "reboot", capture_evidence=False)
    assert second.status == ActionStatus.SUCCEEDED
    assert Collection.objects.filter(router=router, trigger=CollectionTrigger.ACTION, keep=True).count() == 0
