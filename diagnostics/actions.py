"""The operator actions on a router: what each does, when it is refused, and how a request becomes a row.

Every action is one of a fixed catalogue (the names `manage.py act` takes): through the API,
reboot, start, stop (forced or not), restart of the network or VPC (with or without
cleanup), fresh health checks, template upgrade and change of service offering; over SSH,
the restart of one service from an allowlist. `plan_action` says, from the inventory, what
CloudStack (or the router) will be asked, what will happen — in words, consequences first
— which warnings the operator must acknowledge (a PRIMARY whose BACKUP is unhealthy,
a state CloudStack will refuse) and whether the console refuses it outright (dnsmasq or the
password server on a redundant BACKUP, a template upgrade for a router that needs none).
`request_action` turns an accepted request into an `ActionRun` row and the audit entry;
the database refuses a second exclusive action on the same network while one is pending or
running (the row's unique constraint), whoever asks. Running it is action_runner's job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import IntegrityError, transaction
from django.utils import timezone

from diagnostics.models import ActionRun, ActionStatus, RouterHealth, RouterStatus
from vrconsole.models import AuditEntry, Router, RouterState
from vrconsole.queues import ACTIONS as ACTIONS_QUEUE
from vrconsole.queues import QUEUE_TIMEOUTS

logger = logging.getLogger(__name__)

REASON_MAX = 2000


@dataclass(frozen=True)
class ActionSpec:
    """One kind of action: its name, what it works on, and how dangerous it is."""

    key: str
    label: str
    scope: str  # "router" or "network" (the network or VPC of the router)
    # Destructive actions lose what is on the router (logs, leases) or take it down: evidence
    # capture is on by default, and they warn about an unhealthy BACKUP.
    destructive: bool
    # Exclusive actions change the router or its network: one at a time per network.
    exclusive: bool
    summary: str
    # "service" (restart-service:<name>) or "offering" (change-offering:<offering>).
    argument: str = ""


@dataclass(frozen=True)
class ServiceSpec:
    """A service the console may restart inside a router, with the fixed command that does it."""

    name: str
    what: str
    command: str
    # dnsmasq and the password server run only on a redundant pair's PRIMARY (CLOUDSTACK.md §3.6, §3.8).
    primary_only: bool = False
    redundant_only: bool = False


ACTIONS: dict[str, ActionSpec] = {
    spec.key: spec
    for spec in (
        ActionSpec("reboot", "Reboot", "router", True, True, "rebootRouter: stop and start, rules reprogrammed"),
        ActionSpec(
            "reboot-forced", "Reboot (forced)", "router", True, True, "rebootRouter forced=true (CloudStack 4.16+)"
        ),
        ActionSpec("start", "Start", "router", False, True, "startRouter"),
        ActionSpec("stop", "Stop", "router", True, True, "stopRouter"),
        ActionSpec("stop-forced", "Stop (forced)", "router", True, True, "stopRouter forced=true"),
        ActionSpec("restart-network", "Restart network", "network", False, True, "restartNetwork / restartVPC"),
        ActionSpec(
            "restart-network-cleanup",
            "Restart network with cleanup",
            "network",
            True,
            True,
            "restartNetwork / restartVPC cleanup=true: the routers are destroyed and recreated",
        ),
        ActionSpec(
            "fresh-health-checks",
            "Run fresh health checks",
            "router",
            False,
            False,
            "getRouterHealthCheckResults performfreshchecks=true",
        ),
        ActionSpec(
            "upgrade-template", "Upgrade template", "router", True, True, "upgradeRouterTemplate (a reboot onto it)"
        ),
        ActionSpec(
            "change-offering",
            "Change service offering",
            "router",
            True,
            True,
            "changeServiceForRouter (stopped) / scaleSystemVm (running, VMware)",
            argument="offering",
        ),
        ActionSpec(
            "restart-service",
            "Restart a service",
            "router",
            False,
            True,
            "systemctl restart <service> on the router, over SSH",
            argument="service",
        ),
    )
}

# Fixed commands only: nothing from the API, the page or the router reaches these strings.
SERVICES: dict[str, ServiceSpec] = {
    spec.name: spec
    for spec in (
        ServiceSpec(
            "dnsmasq",
            "DHCP and DNS for the guest VMs",
            "systemctl restart dnsmasq && systemctl is-active dnsmasq",
            primary_only=True,
        ),
        ServiceSpec("haproxy", "the load balancer", "systemctl restart haproxy && systemctl is-active haproxy"),
        ServiceSpec(
            "keepalived",
            "VRRP between the redundant pair (a restart can move PRIMARY)",
            "systemctl restart keepalived && systemctl is-active keepalived",
            redundant_only=True,
        ),
        ServiceSpec(
            "apache2",
            "user data and metadata for the guest VMs (port 80)",
            "systemctl restart apache2 && systemctl is-active apache2",
        ),
        ServiceSpec(
            "password-server",
            "the VM password server (port 8080, cloud-password-server@<guest ip>)",
            "units=$(systemctl list-units --all --plain --no-legend 'cloud-password-server@*' 2>/dev/null"
            " | cut -d' ' -f1); if [ -z \"$units\" ]; then"
            " echo 'no cloud-password-server@ unit is loaded on this router' >&2; exit 5; fi;"
            " systemctl restart $units && systemctl is-active $units",
            primary_only=True,
        ),
    )
}

# Asked on a redundant router before a PRIMARY-only service is restarted: its own view of its role.
CHECK_ROLE_COMMAND = "/opt/cloud/bin/checkrouter.sh"

# change-offering: CloudStack scales a running router only where dynamic scaling exists (the UI
# hides it on KVM; XenServer refuses it for system VMs, ScaleSystemVMCmd).
LIVE_SCALING_HYPERVISORS = frozenset({"vmware"})


class ActionRefused(Exception):
    """The console will not run this action; the message says why in an operator's words."""


def parse_action_name(text: str) -> tuple[str, str]:
    """ "restart-service:dnsmasq" -> ("restart-service", "dnsmasq"); unknown names are refused."""
    key, _, argument = text.strip().partition(":")
    spec = ACTIONS.get(key)
    if spec is None:
        names = [k if not s.argument else f"{k}:<{s.argument}>" for k, s in ACTIONS.items()]
        raise ActionRefused(f"unknown action {text!r}; one of {', '.join(names)}")
    if spec.argument and not argument:
        raise ActionRefused(f"{key} needs a {spec.argument}: {key}:<{spec.argument}>")
    if not spec.argument and argument:
        raise ActionRefused(f"{key} takes no argument")
    return key, argument


def action_name(key: str, argument: str = "") -> str:
    return f"{key}:{argument}" if argument else key


@dataclass
class ActionPlan:
    """What an action on this router will do, in CloudStack's terms and in the operator's."""

    spec: ActionSpec
    router: Router
    argument: str = ""
    label: str = ""
    scope: str = "router"
    target_uuid: str = ""
    target_name: str = ""
    network_key: str = ""
    command: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    consequences: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    refusal: str = ""

    @property
    def name(self) -> str:
        return action_name(self.spec.key, self.argument)

    @property
    def command_line(self) -> str:
        """The call as an operator would type it in cmk: `restartNetwork id=... cleanup=true`."""
        if self.spec.key == "restart-service":
            return f"ssh {self.router.name}: {self.command}"

        def text(value: Any) -> str:
            return str(value).lower() if isinstance(value, bool) else str(value)

        return " ".join([self.command, *(f"{key}={text(value)}" for key, value in self.parameters.items())])

    @property
    def capture_by_default(self) -> bool:
        return self.spec.destructive and self.router.state == RouterState.RUNNING

    def as_json(self) -> dict[str, Any]:
        return {
            "action": self.name,
            "label": self.label,
            "scope": self.scope,
            "target": {"uuid": self.target_uuid, "name": self.target_name},
            "command": self.command,
            "parameters": self.parameters,
            "command_line": self.command_line,
            "destructive": self.spec.destructive,
            "exclusive": self.spec.exclusive,
            "consequences": self.consequences,
            "warnings": self.warnings,
            "refusal": self.refusal,
            "capture_evidence_default": self.capture_by_default,
        }


def network_key(router: Router) -> str:
    """What one exclusive action at a time is counted on: the router's VPC, else its network, else itself."""
    if router.vpc is not None:
        return f"{router.region_id}:vpc:{router.vpc.uuid}"
    if router.network is not None:
        return f"{router.region_id}:network:{router.network.uuid}"
    return f"{router.region_id}:router:{router.uuid}"


def unhealthy_backups(router: Router) -> list[str]:
    """Why each redundant peer of a PRIMARY could not take over now; empty when one could."""
    if not router.is_redundant or router.redundant_state != "PRIMARY":
        return []
    peers = list(router.redundant_peers())
    if not peers:
        return ["CloudStack lists no other router of this redundant network: nothing takes over"]
    status = dict(RouterHealth.objects.filter(router__in=peers).values_list("router_id", "status"))
    reasons: list[str] = []
    for peer in peers:
        problems = []
        if peer.state != RouterState.RUNNING:
            problems.append(f"state {peer.state or 'unknown'}")
        if peer.redundant_state != "BACKUP":
            problems.append(f"redundant state {peer.redundant_state or 'unknown'}")
        if status.get(peer.pk) == RouterStatus.CRITICAL:
            problems.append("critical findings open")
        if peer.health_checks_failed:
            problems.append("CloudStack health checks failing")
        if not problems:
            return []
        reasons.append(f"{peer.name} (BACKUP) is unhealthy: {', '.join(problems)}")
    return reasons


def _peer_words(router: Router) -> str:
    if not router.is_redundant:
        return "It is the network's only router: its VMs lose DHCP, DNS, NAT and their gateway meanwhile."
    if router.redundant_state == "PRIMARY":
        return "It is the PRIMARY of a redundant pair: its BACKUP takes over (VRRP), after a few seconds."
    return f"It is a redundant router ({router.redundant_state or 'state unknown'}): its peer keeps serving."


def plan_action(router: Router, key: str, argument: str = "") -> ActionPlan:
    """What `key` (with its argument) would do on this router now; `refusal` set when the console will not."""
    spec = ACTIONS.get(key)
    if spec is None:
        raise ActionRefused(f"unknown action {key!r}")
    plan = ActionPlan(
        spec=spec,
        router=router,
        argument=argument,
        label=spec.label,
        target_uuid=router.uuid,
        target_name=router.name,
        network_key=network_key(router),
    )
    if router.removed_at is not None:
        plan.refusal = "CloudStack no longer lists this router: there is nothing to act on."
        return plan
    _PLANNERS[key](plan)
    if spec.destructive and not plan.refusal:
        plan.warnings.extend(
            f"{reason}; acting on this PRIMARY leaves the network without a working router"
            for reason in unhealthy_backups(router)
        )
    pending = router.api_data.get("jobid") if isinstance(router.api_data, dict) else None
    if pending and spec.exclusive:
        plan.warnings.append(f"CloudStack is still running job {pending} on this router: this one may wait or fail")
    return plan


def _reboot(plan: ActionPlan) -> None:
    router, forced = plan.router, plan.spec.key == "reboot-forced"
    plan.command, plan.parameters = "rebootRouter", {"id": router.uuid, **({"forced": True} if forced else {})}
    plan.consequences = [
        f"CloudStack stops {router.name} and starts it again, reprogramming every rule; "
        "it is unreachable for a minute or two.",
        _peer_words(router),
        "Logs on the router survive a reboot; connection tracking and DHCP leases in memory do not.",
    ]
    if forced:
        plan.consequences.append("Forced: CloudStack does not wait for a clean shutdown (forced exists from 4.16).")
    if router.state != RouterState.RUNNING:
        plan.warnings.append(
            f"CloudStack reboots only a Running router; {router.name} is {router.state or 'in an unknown state'}, "
            'so it will refuse ("Unable to reboot domR, it is not in right state")'
        )


def _start(plan: ActionPlan) -> None:
    router = plan.router
    plan.command, plan.parameters = "startRouter", {"id": router.uuid}
    plan.consequences = [
        f"CloudStack places {router.name} on a host, boots it and programs its rules (a few minutes).",
    ]
    if router.state != RouterState.STOPPED:
        plan.warnings.append(
            f"CloudStack starts only a Stopped router; {router.name} is {router.state or 'in an unknown state'}"
            + (": stop it (forced) first, or restart the network with cleanup" if router.state == "Error" else "")
        )


def _stop(plan: ActionPlan) -> None:
    router, forced = plan.router, plan.spec.key == "stop-forced"
    plan.command, plan.parameters = "stopRouter", {"id": router.uuid, **({"forced": True} if forced else {})}
    plan.consequences = [
        f"CloudStack shuts {router.name} down and it stays down until started again.",
        _peer_words(router),
    ]
    if forced:
        plan.consequences.append(
            "Forced: CloudStack marks it Stopped even if the hypervisor cannot confirm (use it to clear a "
            "router stuck in Starting/Stopping or in Error)."
        )


def _restart_network(plan: ActionPlan) -> None:
    router, cleanup = plan.router, plan.spec.key == "restart-network-cleanup"
    if router.vpc is not None:
        plan.scope, plan.target_uuid, plan.target_name = "vpc", router.vpc.uuid, router.vpc.name
        plan.command, what = "restartVPC", f"VPC {router.vpc.name}"
        plan.label = "Restart VPC with cleanup" if cleanup else "Restart VPC"
    elif router.network is not None:
        plan.scope, plan.target_uuid, plan.target_name = "network", router.network.uuid, router.network.name
        plan.command, what = "restartNetwork", f"network {router.network.name}"
    else:
        plan.refusal = "The inventory does not know this router's network or VPC: sync, then try again."
        return
    plan.parameters = {"id": plan.target_uuid, "cleanup": cleanup}
    members_of = Router.objects.present()
    members_of = (
        members_of.filter(vpc=router.vpc) if router.vpc is not None else members_of.filter(network=router.network)
    )
    members = list(members_of.values_list("name", flat=True))
    names = ", ".join(members) or router.name
    if cleanup:
        plan.consequences = [
            f"CloudStack destroys every router of the {what} ({names}) and deploys new ones from the zone's "
            "current system VM template, reprogramming every rule.",
            "Everything on the old routers is lost: their logs, DHCP leases and anything changed by hand. "
            "Capture evidence first.",
            "The new routers get new names and ids; VMs lose DHCP, DNS and NAT until they are Running.",
        ]
    else:
        plan.consequences = [
            f"CloudStack re-applies the whole configuration of the {what} ({names}) to its running routers: "
            "rules are rewritten, services restarted as needed; the routers are not recreated.",
        ]


def _fresh_checks(plan: ActionPlan) -> None:
    router = plan.router
    plan.command = "getRouterHealthCheckResults"
    plan.parameters = {"routerid": router.uuid, "performfreshchecks": True}
    plan.consequences = [
        "CloudStack pushes the health-check data to the router and runs every basic and advanced check now "
        "(expensive on a busy router); the results replace the stored ones.",
    ]
    if router.state != RouterState.RUNNING:
        plan.warnings.append(f"Only a Running router can run checks; {router.name} is {router.state or 'unknown'}")


def _upgrade(plan: ActionPlan) -> None:
    router = plan.router
    plan.command, plan.parameters = "upgradeRouterTemplate", {"id": router.uuid}
    if not router.requires_upgrade:
        plan.refusal = (
            f"CloudStack does not flag {router.name} as requiring an upgrade (requiresupgrade=false, version "
            f"{router.template_version or '?'}): there is nothing to upgrade."
        )
        return
    plan.consequences = [
        f"CloudStack reboots {router.name} onto the zone's current system VM template "
        f"(now {router.template_version or 'UNKNOWN'}); it is unreachable for a minute or two.",
        _peer_words(router),
    ]


def _change_offering(plan: ActionPlan) -> None:
    router = plan.router
    plan.parameters = {"id": router.uuid, "serviceofferingid": plan.argument}
    hypervisor = (router.hypervisor or "").lower()
    if router.state == RouterState.STOPPED:
        plan.command = "changeServiceForRouter"
        plan.consequences = [f"The new offering applies when {router.name} next starts (it stays Stopped)."]
    elif router.state == RouterState.RUNNING and hypervisor in LIVE_SCALING_HYPERVISORS:
        plan.command = "scaleSystemVm"
        plan.consequences = [
            f"CloudStack scales {router.name} while it runs (VMware dynamic scaling); "
            "it fails if the router's template does not allow dynamic scaling.",
        ]
    else:
        plan.refusal = (
            f"CloudStack changes the offering of a running router only on VMware (dynamic scaling); "
            f"{router.name} is {router.state or 'unknown'} on {router.hypervisor or 'an unknown hypervisor'}. "
            "Stop it first: the new offering applies at the next start."
        )


def _restart_service(plan: ActionPlan) -> None:
    router = plan.router
    service = SERVICES.get(plan.argument)
    if service is None:
        plan.refusal = f"{plan.argument!r} is not a service the console restarts; one of {', '.join(SERVICES)}"
        return
    plan.label = f"Restart {service.name}"
    plan.command = service.command
    plan.parameters = {"service": service.name}
    plan.consequences = [
        f"Over SSH, the router restarts {service.name} ({service.what}): a few seconds without it.",
        "The console checks it is active again and says what the router answered.",
    ]
    if router.state != RouterState.RUNNING:
        plan.refusal = f"{router.name} is {router.state or 'unknown'}: a service restart needs a Running router."
    elif service.redundant_only and not router.is_redundant:
        plan.refusal = f"{service.name} runs only on redundant routers; {router.name} is not redundant."
    elif service.primary_only and router.is_redundant and router.redundant_state in ("BACKUP", "FAULT"):
        plan.refusal = (
            f"{service.name} must not run on a redundant {router.redundant_state}: only the PRIMARY serves "
            f"{service.what} (a BACKUP stops it on purpose, CLOUDSTACK.md §3.6). Restart it on the PRIMARY."
        )
    elif service.primary_only and router.is_redundant:
        plan.consequences.append(
            "Before restarting, the console asks the router itself (checkrouter.sh) and refuses if it says BACKUP."
        )


_PLANNERS = {
    "reboot": _reboot,
    "reboot-forced": _reboot,
    "start": _start,
    "stop": _stop,
    "stop-forced": _stop,
    "restart-network": _restart_network,
    "restart-network-cleanup": _restart_network,
    "fresh-health-checks": _fresh_checks,
    "upgrade-template": _upgrade,
    "change-offering": _change_offering,
    "restart-service": _restart_service,
}


def page_actions(router: Router) -> list[ActionPlan]:
    """The actions the router page offers, planned (a refused one is shown with its reason)."""
    plans = [
        plan_action(router, key)
        for key in (
            "reboot",
            "reboot-forced",
            "start",
            "stop",
            "stop-forced",
            "restart-network",
            "restart-network-cleanup",
            "fresh-health-checks",
        )
    ]
    if router.requires_upgrade:
        plans.append(plan_action(router, "upgrade-template"))
    plans.append(plan_action(router, "change-offering", "<offering>"))
    plans.extend(plan_action(router, "restart-service", name) for name in SERVICES)
    return plans


def action_job_timeout() -> int:
    """Seconds an action job may run: following CloudStack's job, plus evidence and re-collection."""
    return int(settings.ACTION_JOB_TIMEOUT_SECONDS + 2 * QUEUE_TIMEOUTS[ACTIONS_QUEUE])


def release_stale_runs() -> int:
    """Pending or running runs older than any run could last were lost with their worker: free their slot.

    A run released while its job still waits in the queue is not run afterwards (the runner
    runs only pending rows).
    """
    horizon = timedelta(seconds=action_job_timeout() + 600)
    stale = ActionRun.objects.in_flight().filter(created__lt=timezone.now() - horizon)
    return stale.update(
        status=ActionStatus.FAILED,
        error="the console lost this action (its worker stopped before it finished); check CloudStack for the job",
        finished=timezone.now(),
    )


def _username(user: User | AnonymousUser | None, source: str, actor: str) -> str:
    if user is not None and user.is_authenticated:
        return user.get_username()
    return f"{actor or 'system'} ({source})"


def request_action(
    router: Router,
    key: str,
    argument: str = "",
    *,
    reason: str,
    user: User | AnonymousUser | None = None,
    source: str = "page",
    dry_run: bool = False,
    capture_evidence: bool | None = None,
    acknowledged: bool = False,
    actor_name: str = "",
) -> ActionRun:
    """Record a request as an ActionRun (pending, or planned for a dry run) and audit it.

    Raises ActionRefused, audited too, when the console will not run it: no reason, a
    refusal of the plan, warnings not acknowledged, or another exclusive action holding the
    network (the database constraint decides, so two concurrent requests cannot both pass).
    """
    reason = reason.strip()[:REASON_MAX]
    router = Router.objects.select_related("region", "zone", "host", "network", "vpc").get(pk=router.pk)
    plan = plan_action(router, key, argument)
    actor = user if isinstance(user, User) and user.is_authenticated else None
    name = plan.name

    def refuse(why: str) -> ActionRefused:
        AuditEntry.record(
            "action.refused",
            user=actor,
            router=router,
            detail=f"{name}: {why} (reason given: {reason or '-'})",
            outcome="refused",
        )
        return ActionRefused(why)

    if not reason:
        raise refuse("a reason is required (a ticket, or why this action)")
    if plan.refusal:
        raise refuse(plan.refusal)
    if plan.warnings and not acknowledged and not dry_run:
        raise refuse("these warnings must be acknowledged first: " + "; ".join(plan.warnings))
    release_stale_runs()
    capture = plan.capture_by_default if capture_evidence is None else capture_evidence
    run = ActionRun(
        router=router,
        action=key,
        argument=argument,
        label=plan.label,
        scope=plan.scope,
        target_uuid=plan.target_uuid,
        target_name=plan.target_name,
        network_key=plan.network_key,
        exclusive=plan.spec.exclusive,
        destructive=plan.spec.destructive,
        requested_by=actor,
        username=_username(user, source, actor_name)[:150],
        source=source,
        reason=reason,
        dry_run=dry_run,
        capture_evidence=capture and not dry_run,
        warnings=plan.warnings,
        command=plan.command[:255],
        parameters=plan.parameters,
        status=ActionStatus.PLANNED if dry_run else ActionStatus.PENDING,
        result={"plan": plan.as_json()},
    )
    try:
        with transaction.atomic():
            run.save()
    except IntegrityError:
        holder = ActionRun.objects.holding(plan.network_key).select_related("router").first()
        what = f"{holder.action} on {holder.router.name} by {holder.username}, {holder.status}" if holder else "one"
        raise refuse(
            f"another action is already changing this {plan.scope if plan.scope != 'router' else 'network'} "
            f"({what}): one at a time per network"
        ) from None
    entry = AuditEntry.record(
        "action.dry_run" if dry_run else "action.requested",
        user=actor,
        router=router,
        target=f"{plan.scope} {plan.target_name or plan.target_uuid}",
        detail=f"{name} (run {run.pk}): {plan.command} {plan.parameters}; reason: {reason}"
        + (f"; warnings acknowledged: {'; '.join(plan.warnings)}" if plan.warnings else ""),
        outcome="planned" if dry_run else "requested",
    )
    if dry_run:
        run.audit_entry = entry
        run.finished = timezone.now()
        run.save(update_fields=["audit_entry", "finished"])
    return run
