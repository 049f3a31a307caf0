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
    redundant = " The peer keeps serving meanwhile." if router.is_redundant else ""
    remediation = (
        f"1. Restart the network with cleanup: {restart_action(router)} — CloudStack builds a new router "
        f"and reprograms every rule.{redundant} "
        "2. If that fails, read the management-server log for the router's last start (insufficient capacity, "
        "template not ready, 'Timed out in waiting SSH execution result', host down) and fix that first. "
        "Do not destroy a lone router by hand: the restart with cleanup replaces it safely."
    )
    return [verdict(ERROR_STATE, f"{router.name} is in Error state", evidence, remediation)]


ERROR_STATE = Rule(
    id="router-in-error-state",
    category="api-state",
    severity="critical",
    summary="CloudStack lists the router in Error: it is not programmed and its network has no working router.",
    remedy="restartNetwork cleanup=true (restartVPC cleanup=true for a VPC); find the start failure in the management log.",
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
    ]
    remediation = (
        "1. Look for the router's async job in the management-server log: a vr_cfg.sh run that never returned "
        "(many rules on VMware, §5.1) or 'Timed out in waiting SSH execution result' (§5.2). "
        "2. Check the host agent is Up (listHosts) and the domain exists on it (virsh list). "
        f"3. Once the job has failed or been cancelled, {restart_action(router)}."
    )
    return [verdict(STUCK, f"{router.name} stuck in {router.state} for {minutes} min", evidence, remediation)]


STUCK = Rule(
    id="router-stuck-in-transition",
    category="api-state",
    severity="warning",
    summary="The router has been Starting/Stopping/Migrating/Expunging longer than the threshold.",
    remedy="Find the hung job (vr_cfg.sh timeouts, host agent), then restart the network with cleanup.",
    reads=("api",),
    thresholds=("stuck_transition_minutes",),
    check=_stuck,
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
    return [verdict(REQUIRES_UPGRADE, f"{router.name} requires upgrade", evidence, remediation)]


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
        verdict(SCRIPTS_MISMATCH, f"{router.name} scripts signature differs from CloudStack's", evidence, remediation)
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


def _health_checks(ctx: RouterContext) -> list[Verdict]:
    router = ctx.router
    verdicts = []
    for check in router.health_checks:
        name = str(check.get("checkname", ""))
        if check.get("success") is not False or name in CHECKED_ELSEWHERE:
            continue
        details = str(check.get("details", ""))
        evidence = [
            f"{name} ({check.get('checktype', '?')}) failed at {check.get('lastupdated', '?')}",
            f"details: {details}",
        ]
        severity: Severity = "warning"
        remediation = HEALTH_CHECKS.remedy
        if name == "gateways_check.py" and own_redundant_state(ctx) == "BACKUP":
            severity = "info"
            remediation = (
                "Known false positive (apache/cloudstack#4163): a BACKUP brings its public NIC down, so its gateways "
                "do not answer. Newer releases exclude this check on BACKUP; add it to router.health.checks.to.exclude."
            )
        elif name in ("connectivity.test", "filesystem.writable.test"):
            severity = "critical"
            remediation = (
                "The management server cannot talk to the router or the router cannot write its disk: no "
                "configuration reaches it. Check the disk verdicts ('Read-only file system' means the VM's disk "
                f"failed), then rebootRouter; if it persists, {restart_action(router)}."
            )
        verdicts.append(
            verdict(HEALTH_CHECKS, f"CloudStack health check {name} failing", evidence, remediation, severity)
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
    REQUIRES_UPGRADE,
    TEMPLATE_MISMATCH,
    SCRIPTS_MISMATCH,
    LIVE_PATCHED,
    TEMPLATE_NOT_READY,
    HEALTH_CHECKS,
)
