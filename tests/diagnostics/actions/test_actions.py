"""Planning and requesting actions: what each says it will do, when it warns, when it is refused, one at a time."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from diagnostics.actions import (
    ActionRefused,
    page_actions,
    parse_action_name,
    plan_action,
    request_action,
    unhealthy_backups,
)
from diagnostics.models import ActionRun, ActionStatus, RouterHealth
from tests.diagnostics.actions.support import operator
from tests.vrconsole.router_factory import make_host, make_network, make_region, make_router, make_vpc, make_zone
from vrconsole.models import AuditEntry, Router

pytestmark = pytest.mark.django_db


@pytest.fixture
def zone():
    return make_zone(make_region())


def pair(zone, backup_state: str = "Running", **backup_fields: object) -> tuple[Router, Router]:
    network = make_network(zone, name="shop-prod")
    host = make_host(zone)
    primary = make_router(
        zone, name="r-231-VM", network=network, host=host, is_redundant=True, redundant_state="PRIMARY"
    )
    backup = make_router(
        zone,
        name="r-232-VM",
        network=network,
        host=host,
        is_redundant=True,
        redundant_state=backup_fields.pop("redundant_state", "BACKUP"),
        state=backup_state,
        **backup_fields,
    )
    return primary, backup


def test_it_reads_the_action_names_of_the_command_line() -> None:
    assert parse_action_name("reboot-forced") == ("reboot-forced", "")
    assert parse_action_name("restart-service:dnsmasq") == ("restart-service", "dnsmasq")
    for bad in ("explode", "restart-service", "reboot:now"):
        with pytest.raises(ActionRefused):
            parse_action_name(bad)


def test_a_cleanup_says_the_routers_and_their_logs_are_lost(zone) -> None:
    primary, _ = pair(zone)
    plan = plan_action(primary, "restart-network-cleanup")
    assert plan.command == "restartNetwork" and plan.parameters == {"id": primary.network.uuid, "cleanup": True}
    assert plan.scope == "network" and plan.target_name == "shop-prod"
    text = " ".join(plan.consequences)
    assert "destroys every router of the network shop-prod (r-231-VM, r-232-VM)" in text
    assert "their logs" in text and plan.capture_by_default


def test_a_vpc_router_restarts_its_vpc(zone) -> None:
    vpc = make_vpc(zone, name="vpc-globex")
    router = make_router(zone, name="r-40-VM", vpc=vpc, router_type="vpc")
    plan = plan_action(router, "restart-network")
    assert (plan.command, plan.scope, plan.label) == ("restartVPC", "vpc", "Restart VPC")
    assert plan.parameters == {"id": vpc.uuid, "cleanup": False}


def test_it_warns_when_the_backup_of_a_primary_is_unhealthy(zone) -> None:
    primary, backup = pair(zone, backup_state="Stopped", redundant_state="UNKNOWN")
    plan = plan_action(primary, "reboot")
    assert plan.warnings == [
        "r-232-VM (BACKUP) is unhealthy: state Stopped, redundant state UNKNOWN; acting on this PRIMARY leaves "
        "the network without a working router"
    ]
    RouterHealth.objects.create(router=backup, status="critical")
    Router.objects.filter(pk=backup.pk).update(state="Running", redundant_state="BACKUP")
    assert unhealthy_backups(primary) == ["r-232-VM (BACKUP) is unhealthy: critical findings open"]


def test_a_healthy_backup_gives_no_warning(zone) -> None:
    primary, _ = pair(zone)
    assert plan_action(primary, "stop").warnings == []


def test_warnings_must_be_acknowledged(zone) -> None:
    primary, _ = pair(zone, backup_state="Stopped")
    with pytest.raises(ActionRefused, match="must be acknowledged"):
        request_action(primary, "reboot", reason="INC-1", user=operator())
    run = request_action(primary, "reboot", reason="INC-1", user=operator(), acknowledged=True)
    assert run.warnings and run.status == ActionStatus.PENDING
    assert "warnings acknowledged" in AuditEntry.objects.get(action="action.requested").detail


def test_a_reason_is_required_and_a_refusal_is_audited(zone) -> None:
    router = make_router(zone, name="r-5-VM")
    with pytest.raises(ActionRefused, match="a reason is required"):
        request_action(router, "reboot", reason="   ", user=operator())
    refused = AuditEntry.objects.get(action="action.refused")
    assert refused.username == "oncall" and refused.outcome == "refused"
    assert not ActionRun.objects.exists()


def test_dnsmasq_and_the_password_server_are_refused_on_a_backup(zone) -> None:
    _, backup = pair(zone)
    for service in ("dnsmasq", "password-server"):
        plan = plan_action(backup, "restart-service", service)
        assert "must not run on a redundant BACKUP" in plan.refusal
        with pytest.raises(ActionRefused):
            request_action(backup, "restart-service", service, reason="INC-2", user=operator())
    assert plan_action(backup, "restart-service", "haproxy").refusal == ""


def test_keepalived_restarts_only_on_redundant_routers_and_services_only_when_running(zone) -> None:
    lone = make_router(zone, name="r-6-VM")
    assert "only on redundant routers" in plan_action(lone, "restart-service", "keepalived").refusal
    stopped = make_router(zone, name="r-8-VM", state="Stopped")
    assert "needs a Running router" in plan_action(stopped, "restart-service", "apache2").refusal
    assert "not a service" in plan_action(lone, "restart-service", "sshd").refusal


def test_a_template_upgrade_is_offered_only_to_routers_that_need_it(zone) -> None:
    current = make_router(zone, name="r-9-VM", template_version="4.20.1")
    assert "does not flag" in plan_action(current, "upgrade-template").refusal
    assert "upgrade-template" not in {p.spec.key for p in page_actions(current)}
    old = make_router(zone, name="r-10-VM", template_version="4.19.1", requires_upgrade=True)
    assert plan_action(old, "upgrade-template").refusal == ""


def test_the_offering_changes_where_cloudstack_allows_it(zone) -> None:
    stopped = make_router(zone, name="r-11-VM", state="Stopped")
    assert plan_action(stopped, "change-offering", "large").command == "changeServiceForRouter"
    vmware = make_router(zone, name="r-12-VM", hypervisor="VMware")
    assert plan_action(vmware, "change-offering", "large").command == "scaleSystemVm"
    kvm = make_router(zone, name="r-13-VM")
    assert "only on VMware" in plan_action(kvm, "change-offering", "large").refusal


def test_cloudstacks_own_refusals_are_warnings_not_vetoes(zone) -> None:
    stopped = make_router(zone, name="r-14-VM", state="Stopped")
    plan = plan_action(stopped, "reboot")
    assert plan.refusal == "" and "CloudStack reboots only a Running router" in plan.warnings[0]


def test_two_destructive_actions_on_one_network_are_refused(zone) -> None:
    primary, backup = pair(zone)
    first = request_action(primary, "reboot", reason="INC-3", user=operator())
    with pytest.raises(ActionRefused, match="another action is already changing this network"):
        request_action(backup, "restart-network-cleanup", reason="INC-3 again", user=operator("bob"))
    assert AuditEntry.objects.filter(action="action.refused", username="bob").exists()
    # The database itself refuses, whoever writes the row.
    with pytest.raises(IntegrityError), transaction.atomic():
        ActionRun.objects.create(
            router=backup, action="stop", network_key=first.network_key, exclusive=True, reason="by hand"
        )
    first.status = ActionStatus.SUCCEEDED
    first.save()
    assert request_action(backup, "reboot", reason="INC-4", user=operator()).status == ActionStatus.PENDING


def test_a_non_exclusive_action_and_a_dry_run_do_not_hold_the_network(zone) -> None:
    router = make_router(zone, name="r-15-VM", network=make_network(zone))
    request_action(router, "fresh-health-checks", reason="check", user=operator())
    dry = request_action(router, "restart-network-cleanup", reason="what if", dry_run=True, source="command")
    assert dry.status == ActionStatus.PLANNED and dry.audit_entry.action == "action.dry_run"
    assert request_action(router, "reboot", reason="INC-5", user=operator()).status == ActionStatus.PENDING


def test_a_removed_router_cannot_be_acted_on(zone) -> None:
    from django.utils import timezone

    router = make_router(zone, name="r-16-VM", removed_at=timezone.now())
    assert "no longer lists" in plan_action(router, "start").refusal
