"""Rules on what CloudStack says about the router: its state, versions, its own health checks, its zone's template.

CloudStack's word comes first because it decides what the management server will do: a
router in Error is not programmed, a router that "requires upgrade" refuses commands, a
zone without a ready system VM template cannot recreate any router. Health checks are
judged from the results, not from the unreliable `healthchecksfailed` flag (§5.12), and the
known false positives are downgraded with their explanation (§5.10, §5.11).
"""

from __future__ import annotations

import re
from datetime import timedelta

from diagnostics.matrix.base import RouterContext, RouterView, Rule, Severity, Verdict
from diagnostics.matrix.evidence import facts_of, verdict
from diagnostics.matrix.layout import own_redundant_state

TRANSITIONAL = ("Starting", "Stopping", "Expunging", "Migrating", "Restoring")


def restart_action(router: RouterView) -> str:
    """The CloudStack action that rebuilds a router from CloudStack's own state."""
    if router.router_type == "vpc":
        return "restartVPC id=<vpc uuid> cleanup=true"
    return "restartNetwork id=<network uuid> cleanup=true"


def restart_label(router: RouterView) -> str:
    """The console action that rebuilds the router, as its button reads."""
    return "Restart VPC with cleanup" if router.router_type == "vpc" else "Restart network with cleanup"


# --- What CloudStack recorded (diagnostics.failure_evidence), as evidence lines --------------

# CloudStack's error texts, by what they mean for the fix (CLOUDSTACK.md §1.3, §5.2).
_CAPACITY = re.compile(r"Unable to create a deployment|Insufficient\w*Capacity|insufficient capacity", re.IGNORECASE)
_SSH_TIMEOUT = re.compile(r"Timed out in waiting SSH execution result|vr_cfg\.sh|execution timed out", re.IGNORECASE)
_HOST_GONE = re.compile(r"is unreachable|host is down|AgentUnavailable|Host \S+ is not (?:up|connected)", re.IGNORECASE)
_NEEDS_UPGRADE = re.compile(r"requires upgrade", re.IGNORECASE)


def failure_lines(ctx: RouterContext) -> list[str]:
    """Evidence lines from what CloudStack recorded: failed jobs (its error text), ERROR/WARN events, log entries."""
    failure = ctx.failure
    if failure is None:
        return [
            "CloudStack's record (events, async jobs, host, template) has not been read for this failure yet: "
            "it is read within a sync interval, or at once with 'Read CloudStack's record'"
        ]
    lines: list[str] = []
    for job in failure.failed_jobs()[:3]:
        lines.append(
            f"async job {job.get('jobid', '?')} {job.get('command', '?')} failed at "
            f"{job.get('completed') or job.get('created') or '?'} (error {job.get('errorcode', '?')}): "
            f"{job.get('errortext') or 'no error text'}"
        )
    for job in failure.pending_jobs()[:2]:
        lines.append(
            f"async job {job.get('jobid', '?')} {job.get('command', '?')} still pending since {job.get('created', '?')}"
        )
    for event in failure.error_events()[:3]:
        lines.append(
            f"event {event.get('type', '?')} {event.get('level', '?')} at {event.get('created', '?')}: "
            f"{event.get('description', '')}"
        )
    for entry in failure.log_entries[-2:]:
        text = " | ".join(str(line) for line in list(entry.get("lines", []))[:3])
        lines.append(f"management-server log ({entry.get('server', '?')}): {text}")
    for part, why in sorted(failure.unknown.items()):
        lines.append(f"unknown: {part} could not be read ({why})")
    return lines


def failure_text(ctx: RouterContext) -> str:
    """CloudStack's error text of the router's newest failed job (the exception), "" when none is known."""
    if ctx.failure is None:
        return ""
    jobs = ctx.failure.failed_jobs(ctx.router.uuid) or ctx.failure.failed_jobs()
    return str(jobs[0].get("errortext") or "") if jobs else ""


def _fix_for_failure(ctx: RouterContext) -> tuple[str, str]:
    """(remediation, console action) for a router CloudStack failed, chosen by what CloudStack recorded."""
    router = ctx.router
    failure = ctx.failure
    text = failure_text(ctx)
    rebuild = f"{restart_label(router)} ({restart_action(router)})"
    template = failure.template if failure is not None else {}
    if router.zone_system_template_ready is False or template.get("isready") is False:
        return (
            f"The zone's system VM template ({template.get('name') or router.zone_system_template_name or '?'}) is "
            "not ready, so CloudStack cannot create or start a router here: fix the template on secondary storage "
            f"first (listTemplates templatefilter=system). Only then {rebuild}: before, it fails the same way.",
            "",
        )
    if _NEEDS_UPGRADE.search(text):
        return (
            "CloudStack refuses to program a router that requires upgrade: upgrade its template (upgradeRouterTemplate "
            "reboots it onto the zone's current system VM template).",
            "upgrade-template",
        )
    if _CAPACITY.search(text):
        return (
            "CloudStack found no host (or primary storage) with room for the router's service offering "
            f'("{text[:160]}"). Free or add capacity in zone {router.zone_name or "?"} (a host in Maintenance, '
            f"disabled, or out of memory), or give the router a smaller offering; then {rebuild}. Restarting now "
            "fails the same way.",
            "restart-network-cleanup",
        )
    if _SSH_TIMEOUT.search(text):
        return (
            "The router booted but its configuration (vr_cfg.sh over SSH) took longer than CloudStack waits: many "
            "rules, or a slow host (CLOUDSTACK.md §5.2). Raise router.aggregation.command.each.timeout if the network "
            f"has many rules, then {rebuild}.",
            "restart-network-cleanup",
        )
    if _HOST_GONE.search(text):
        return (
            f'The host failed while CloudStack started the router ("{text[:160]}"). {rebuild} deploys a new router '
            "on a host that is Up; fix the failed host's agent afterwards (systemctl status cloudstack-agent).",
            "restart-network-cleanup",
        )
    redundant = " The redundant peer keeps serving meanwhile." if router.is_redundant else ""
    read_log = (
        ""
        if failure is not None and failure.log_entries
        else " If the reason is not above, read the management-server log for the router's last start."
    )
    return (
        f"{rebuild}: CloudStack destroys this router and builds a new one, reprogramming every rule "
        f"(its logs are lost: capture evidence first).{redundant}{read_log} Do not destroy a lone router by hand: "
        "the restart with cleanup replaces it safely.",
        "restart-network-cleanup",
    )


def _error_state(ctx: RouterContext) -> list[Verdict]:
    router = ctx.router
    if router.state != "Error":
        return []
    evidence = [f"listRouters state: Error (router {router.name}, host {router.host_name or 'none'})"]
    if router.state_since is not None:
        evidence.append(f"in Error since {router.state_since.isoformat()}")
    if router.host_state and router.host_state != "Up":
        evidence.append(f"host {router.host_name} state: {router.host_state}")
    if router.zone_system_template_ready is False:
        evidence.append(
            f"system VM template {router.zone_system_template_name or '?'} not ready in zone {router.zone_name}"
        )
    evidence.extend(failure_lines(ctx))
    remediation, action = _fix_for_failure(ctx)
    text = failure_text(ctx)
    title = f"{router.name} is in Error state" + (f": {text[:120]}" if text else "")
    return [verdict(ERROR_STATE, title, evidence, remediation, action=action)]


ERROR_STATE = Rule(
    id="router-in-error-state",
    category="api-state",
    severity="critical",
    summary="CloudStack lists the router in Error: it is not programmed and its network has no working router.",
    remedy=(
        "The fix follows CloudStack's recorded reason (the failed job's exception): free capacity, fix the host or "
        "the template, then restartNetwork cleanup=true (restartVPC cleanup=true for a VPC)."
    ),
    reads=("api",),
    thresholds=(),
    check=_error_state,
)


def _stuck(ctx: RouterContext) -> list[Verdict]:
    router = ctx.router
    if router.state not in TRANSITIONAL or router.state_since is None:
        return []
    limit = ctx.threshold("stuck_transition_minutes")
    age = ctx.now - router.state_since
    if age < timedelta(minutes=limit):
        return []
    minutes = int(age.total_seconds() // 60)
    evidence = [
        f"listRouters state: {router.state} since {router.state_since.isoformat()} ({minutes} min, limit {limit:g} min)",
        f"host {router.host_name or 'none'} ({router.host_state or 'state unknown'})",
        *failure_lines(ctx),
    ]
    pending = ctx.failure.pending_jobs() if ctx.failure is not None else []
    waiting = (
        f"CloudStack still runs job {pending[0].get('jobid')} ({pending[0].get('command')}): wait for it to fail or "
        "time out (it holds the router's lock). "
        if pending
        else ""
    )
    remediation = (
        f"{waiting}1. Look for the router's async job in the management-server log: a vr_cfg.sh run that never "
        "returned (many rules on VMware, §5.1) or 'Timed out in waiting SSH execution result' (§5.2). "
        "2. Check the host agent is Up (listHosts) and the domain exists on it (virsh list). "
        "3. Once no job runs on it, stop it forced (stopRouter forced=true) to clear the state, then start it "
        f"or {restart_action(router)}."
    )
    return [
        verdict(
            STUCK,
            f"{router.name} stuck in {router.state} for {minutes} min",
            evidence,
            remediation,
            action="stop-forced",
        )
    ]


STUCK = Rule(
    id="router-stuck-in-transition",
    category="api-state",
    severity="warning",
    summary="The router has been Starting/Stopping/Migrating/Expunging longer than the threshold.",
    remedy="Find the hung job (vr_cfg.sh timeouts, host agent); once none runs, stop it forced, then start or restart the network with cleanup.",
    reads=("api",),
    thresholds=("stuck_transition_minutes",),
    check=_stuck,
)

NETWORK_UP_STATES = ("Implemented", "Implementing", "Enabled")


def _stopped_unexpectedly(ctx: RouterContext) -> list[Verdict]:
    router = ctx.router
    if router.state != "Stopped" or router.network_state not in NETWORK_UP_STATES:
        return []
    evidence = [
        "listRouters state: Stopped" + (f" since {router.state_since.isoformat()}" if router.state_since else ""),
        f"its {'VPC' if router.router_type == 'vpc' else 'network'} {router.network_name or '?'} is {router.network_state}",
    ]
    stops = [e for e in (ctx.failure.events if ctx.failure is not None else ()) if e.get("type") == "ROUTER.STOP"]
    if stops:
        last = stops[0]
        evidence.append(
            f"last ROUTER.STOP event: {last.get('level')} {last.get('state')} at {last.get('created')} by "
            f"{last.get('username') or '?'}: {last.get('description', '')}"
        )
    evidence.extend(line for line in failure_lines(ctx) if not line.startswith("event ROUTER.STOP"))
    serving = [p for p in ctx.peers if p.router.state == "Running"]
    severity: Severity = "warning" if serving else "critical"
    peer_note = (
        f" Its peer {serving[0].router.name} is Running, so the network is served meanwhile, without redundancy."
        if serving
        else " No other router serves the network: DHCP, DNS, NAT and the gateway are down for its VMs."
    )
    remediation = (
        f"Start the router (startRouter): CloudStack boots it and reprograms its rules.{peer_note} "
        "If it was stopped on purpose, say so in the reason; if it stopped by itself (HA, host failure, out of "
        f"memory), read its events and the host's state first. If the start fails, {restart_action(router)}."
    )
    return [
        verdict(
            STOPPED,
            f"{router.name} is Stopped while its network is up",
            evidence,
            remediation,
            severity,
            action="start",
        )
    ]


STOPPED = Rule(
    id="router-stopped-unexpectedly",
    category="api-state",
    severity="critical",
    summary="The router is Stopped although CloudStack keeps its network (or VPC) implemented.",
    remedy="startRouter; if the start fails, restart the network (VPC) with cleanup.",
    reads=("api", "peer"),
    thresholds=(),
    check=_stopped_unexpectedly,
)


def _host_not_up(ctx: RouterContext) -> list[Verdict]:
    router = ctx.router
    if not router.host_state or router.host_state == "Up" or router.state in ("Stopped", "Destroyed", "Expunging"):
        return []
    evidence = [f"listHosts {router.host_name or '?'} state: {router.host_state}"]
    host = ctx.failure.host if ctx.failure is not None else {}
    if host:
        details = ", ".join(
            f"{key} {host[key]}" for key in ("state", "resourcestate", "lastpinged", "disconnected") if host.get(key)
        )
        evidence.append(f"host as CloudStack reads it now: {details}")
    evidence.extend(failure_lines(ctx))
    remediation = (
        f"CloudStack cannot manage a router whose host is {router.host_state}: no command reaches it, and the next "
        "change to its network fails. 1. Fix the host's agent (systemctl status cloudstack-agent, its link to the "
        f"management server). 2. If the host is lost, {restart_label(router)} deploys a new router on an Up host "
        "(its logs are lost: capture evidence first if the router still answers)."
    )
    return [
        verdict(
            HOST_NOT_UP,
            f"{router.name}'s host {router.host_name or '?'} is {router.host_state}",
            evidence,
            remediation,
            action="restart-network-cleanup",
        )
    ]


HOST_NOT_UP = Rule(
    id="router-host-not-up",
    category="api-state",
    severity="critical",
    summary="The router's hypervisor host is not Up in CloudStack (Disconnected, Down, Alert...).",
    remedy="Fix the host agent; if the host is lost, restart the network with cleanup to place a new router.",
    reads=("api",),
    thresholds=(),
    check=_host_not_up,
)


def _requires_upgrade(ctx: RouterContext) -> list[Verdict]:
    router = ctx.router
    if not router.requires_upgrade:
        return []
    evidence = [f"listRouters requiresupgrade: true, version {router.template_version or 'UNKNOWN'}"]
    if router.software_version and router.software_version != router.template_version:
        evidence.append(
            f"softwareversion {router.software_version} (live-patched) differs from template {router.template_version}"
        )
    remediation = (
        "CloudStack refuses to send commands to this router ('Router requires upgrade'), so VM starts in its network "
        "fail. 1. Check minreq.sysvmtemplate.version for the zone. 2. If the router was live-patched, reboot it "
        "(rebootRouter) so CloudStack re-reads its version (§5.13). 3. Otherwise upgrade it: upgradeRouterTemplate, "
        f"or {restart_action(router)} after registering the new system VM template."
    )
    patched = bool(router.software_version) and not same_version(router.software_version, router.template_version)
    action = "reboot" if patched else "upgrade-template"
    return [verdict(REQUIRES_UPGRADE, f"{router.name} requires upgrade", evidence, remediation, action=action)]


REQUIRES_UPGRADE = Rule(
    id="router-requires-upgrade",
    category="template",
    severity="warning",
    summary="CloudStack flags the router as requiring upgrade and will refuse to program it.",
    remedy="Reboot a live-patched router; otherwise upgradeRouterTemplate or restart the network with cleanup.",
    reads=("api",),
    thresholds=(),
    check=_requires_upgrade,
)


_VERSION = re.compile(r"\d+(?:\.\d+)+")


def same_version(one: str, other: str) -> bool:
    """Two version strings naming the same release: 4.20.1 = 4.20.1.0; a full release line counts by its version."""

    def parts(text: str) -> tuple[int, ...]:
        match = _VERSION.search(text)
        numbers = [int(p) for p in match.group(0).split(".")] if match else []
        while numbers and numbers[-1] == 0:
            numbers.pop()
        return tuple(numbers)

    return parts(one) == parts(other) and bool(parts(one))


def _template_mismatch(ctx: RouterContext) -> list[Verdict]:
    versions = facts_of(ctx, "versions")
    router = ctx.router
    if versions is None or not versions.template_version:
        return []
    expected = router.template_version
    if not expected or not _VERSION.search(expected) or same_version(versions.template_version, expected):
        return []
    evidence = [
        f"listRouters version: {expected}",
        f"/etc/cloudstack-release: {versions.release_line}",
    ]
    remediation = (
        "The router runs another template than CloudStack recorded (router_version_check.py fails the same way). "
        f"Reboot it (rebootRouter) so CloudStack reads the version again; if it persists, {restart_action(router)} "
        "to rebuild it from the zone's current system VM template."
    )
    return [
        verdict(
            TEMPLATE_MISMATCH,
            f"{router.name} template {versions.template_version}, CloudStack says {expected}",
            evidence,
            remediation,
            action="reboot",
        )
    ]


TEMPLATE_MISMATCH = Rule(
    id="template-version-mismatch",
    category="template",
    severity="warning",
    summary="The template version in /etc/cloudstack-release differs from the version CloudStack lists.",
    remedy="Reboot the router; if it persists, restart the network with cleanup.",
    reads=("api", "facts:versions"),
    thresholds=(),
    check=_template_mismatch,
)


def _scripts_mismatch(ctx: RouterContext) -> list[Verdict]:
    versions = facts_of(ctx, "versions")
    router = ctx.router
    if versions is None or not versions.scripts_signature or not router.scripts_version:
        return []
    if versions.scripts_signature == router.scripts_version.lower():
        return []
    evidence = [
        f"listRouters scriptsversion: {router.scripts_version}",
        f"/var/cache/cloud/cloud-scripts-signature: {versions.scripts_signature}",
    ]
    remediation = (
        "The router's scripts are not the ones CloudStack shipped (a hand edit, or a failed patch at boot). "
        f"Reboot the router (rebootRouter) to re-patch it; if it persists, {restart_action(router)}."
    )
    return [
        verdict(
            SCRIPTS_MISMATCH,
            f"{router.name} scripts signature differs from CloudStack's",
            evidence,
            remediation,
            action="reboot",
        )
    ]


SCRIPTS_MISMATCH = Rule(
    id="scripts-version-mismatch",
    category="template",
    severity="warning",
    summary="The md5 in cloud-scripts-signature differs from the scripts version CloudStack lists.",
    remedy="Reboot the router to re-patch its scripts; if it persists, restart the network with cleanup.",
    reads=("api", "facts:versions"),
    thresholds=(),
    check=_scripts_mismatch,
)


def _live_patched(ctx: RouterContext) -> list[Verdict]:
    router = ctx.router
    if not router.software_version or not router.template_version or router.requires_upgrade:
        return []
    if not _VERSION.search(router.template_version) or same_version(router.software_version, router.template_version):
        return []
    evidence = [f"listRouters softwareversion {router.software_version}, version (template) {router.template_version}"]
    remediation = (
        "The router was live-patched (restartNetwork livepatch=true) and runs newer code than its template. "
        "That is fine until the next recreation; if CloudStack later says 'Router requires upgrade', reboot it "
        "(rebootRouter) and check minreq.sysvmtemplate.version (§5.13)."
    )
    return [verdict(LIVE_PATCHED, f"{router.name} live-patched to {router.software_version}", evidence, remediation)]


LIVE_PATCHED = Rule(
    id="software-version-differs-from-template",
    category="template",
    severity="info",
    summary="The live-patched software version differs from the template version.",
    remedy="Nothing now; reboot the router if CloudStack starts saying it requires upgrade.",
    reads=("api",),
    thresholds=(),
    check=_live_patched,
)


def _template_not_ready(ctx: RouterContext) -> list[Verdict]:
    router = ctx.router
    if router.zone_system_template_ready is not False:
        return []
    evidence = [
        f"zone {router.zone_name or '?'}: system VM template {router.zone_system_template_name or '?'} is not ready",
        f"router state: {router.state}",
    ]
    remediation = (
        "CloudStack cannot create a router in this zone, so a restart with cleanup, a redundant peer's "
        "replacement or a new network will fail. 1. listTemplates templatefilter=system zoneid=<zone>: check the "
        "template's isready and status. 2. If it is still downloading, wait; if the download failed, check the "
        "secondary storage VM and re-register the template (registerTemplate ... system=true / "
        "`cloud-install-sys-tmplt`)."
    )
    failing = router.state in ("Error", "Stopped", "Starting")
    return [
        verdict(
            TEMPLATE_NOT_READY,
            f"system VM template not ready in zone {router.zone_name or '?'}",
            evidence,
            remediation,
            severity="critical" if failing else "warning",
        )
    ]


TEMPLATE_NOT_READY = Rule(
    id="system-template-not-ready",
    category="template",
    severity="critical",
    summary="The zone's system VM template is not ready: routers there cannot be (re)created.",
    remedy="Fix the template download on secondary storage before restarting networks with cleanup.",
    reads=("api",),
    thresholds=(),
    check=_template_not_ready,
)


# Checks that other rules judge with the facts, so this rule leaves them out.
CHECKED_ELSEWHERE = ("dhcp_check.py", "dns_check.py", "iptables_check.py")


# monitorServices.py's service checks and the process whose absence they report: when the
# collection shows that process down, the rule about it carries the check as evidence.
SERVICE_CHECK_PROCESS = {"dhcp.service": "dnsmasq", "webserver.service": "apache2"}


def _explained_by_facts(ctx: RouterContext, name: str) -> bool:
    """A failing service check whose cause (its process not running) the collection confirms."""
    process = SERVICE_CHECK_PROCESS.get(name)
    processes = ctx.collection.fact("processes") if ctx.collection is not None else None
    if process is None or processes is None:
        return False
    return not processes.service(process).running


def _health_checks(ctx: RouterContext) -> list[Verdict]:
    router = ctx.router
    verdicts = []
    for check in router.health_checks:
        name = str(check.get("checkname", ""))
        if check.get("success") is not False or name in CHECKED_ELSEWHERE or _explained_by_facts(ctx, name):
            continue
        details = str(check.get("details", ""))
        evidence = [
            f"{name} ({check.get('checktype', '?')}) failed at {check.get('lastupdated', '?')}",
            f"details: {details}",
        ]
        severity: Severity = "warning"
        remediation = HEALTH_CHECKS.remedy
        action = "fresh-health-checks"
        if name == "gateways_check.py" and own_redundant_state(ctx) == "BACKUP":
            severity = "info"
            action = ""
            remediation = (
                "Known false positive (apache/cloudstack#4163): a BACKUP brings its public NIC down, so its gateways "
                "do not answer. Newer releases exclude this check on BACKUP; add it to router.health.checks.to.exclude."
            )
        elif name in ("connectivity.test", "filesystem.writable.test"):
            severity = "critical"
            action = "reboot"
            remediation = (
                "The management server cannot talk to the router or the router cannot write its disk: no "
                "configuration reaches it. Check the disk verdicts ('Read-only file system' means the VM's disk "
                f"failed), then rebootRouter; if it persists, {restart_action(router)}."
            )
        verdicts.append(
            verdict(
                HEALTH_CHECKS, f"CloudStack health check {name} failing", evidence, remediation, severity, action=action
            )
        )
    return verdicts


HEALTH_CHECKS = Rule(
    id="cloudstack-health-check-failing",
    category="api-state",
    severity="critical",
    summary="A CloudStack health check of the router failed (judged from the results, not the healthchecksfailed flag).",
    remedy=(
        "Read the check's details; fix what it names (getRouterHealthCheckResults routerid=<uuid> "
        "performfreshchecks=true re-runs them). Known false positives are reported as info."
    ),
    reads=("api",),
    thresholds=(),
    check=_health_checks,
)

_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")


def addresses_in(text: str) -> list[str]:
    """The IPv4 addresses a health check's details name, in order, once each."""
    return list(dict.fromkeys(_IPV4.findall(text)))


RULES = (
    ERROR_STATE,
    STUCK,
    STOPPED,
    HOST_NOT_UP,
    REQUIRES_UPGRADE,
    TEMPLATE_MISMATCH,
    SCRIPTS_MISMATCH,
    LIVE_PATCHED,
    TEMPLATE_NOT_READY,
    HEALTH_CHECKS,
)
