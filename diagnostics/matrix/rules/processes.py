"""Rules on the router's service processes: haproxy's defunct children, haproxy and keepalived not running.

haproxy reloads leave `<defunct>` children when the parent does not reap them, and the
next load-balancer apply fails with "Resource busy". haproxy matters only where load
balancing is configured (a `listen <ip>-<port>` section, not the template's `cloud-default` or stats), and
keepalived only on a redundant router, where its absence makes the router FAULT.
"""

from __future__ import annotations

import re

from diagnostics.matrix.base import RouterContext, Rule, Severity, Verdict
from diagnostics.matrix.evidence import facts_of, quoted, verdict
from diagnostics.matrix.layout import is_redundant, is_standby
from diagnostics.matrix.rules.api_state import restart_action

HAPROXY_CFG = "/etc/haproxy/haproxy.cfg"


def _defunct(ctx: RouterContext) -> list[Verdict]:
    processes = facts_of(ctx, "processes")
    if processes is None:
        return []
    haproxy = processes.service("haproxy")
    if haproxy.defunct < 1:
        return []
    evidence = [
        f"ps: {haproxy.defunct} defunct haproxy process(es); live haproxy pids {', '.join(map(str, haproxy.pids)) or 'none'}",
        f"{processes.zombie_count} zombie process(es) in all",
    ]
    remediation = (
        "Unreaped haproxy children keep sockets busy, and the next load-balancer apply fails ('Resource busy'). "
        "Restart haproxy cleanly on the router: `systemctl restart haproxy` (a short interruption of load-balanced "
        "traffic), then re-apply the load-balancer rules if an apply failed."
    )
    return [verdict(DEFUNCT, f"{haproxy.defunct} defunct haproxy children", evidence, remediation)]


DEFUNCT = Rule(
    id="haproxy-defunct-children",
    category="haproxy",
    severity="warning",
    summary="haproxy left defunct (zombie) children: the next LB apply fails with 'Resource busy'.",
    remedy="systemctl restart haproxy, then re-apply the load-balancer rules.",
    reads=("facts:processes",),
    thresholds=(),
    check=_defunct,
)


# CloudStack names a load-balancer section after its public IP and port: `listen 10_1_1_5-80`.
_LB_SECTION = re.compile(r"^\s*(?:listen|frontend)\s+\d{1,3}_\d{1,3}_\d{1,3}_\d{1,3}-\d+")


def _lb_sections(ctx: RouterContext) -> list[str]:
    config = facts_of(ctx, "config")
    cfg = config.file(HAPROXY_CFG) if config is not None else None
    if cfg is None or cfg.missing:
        return []
    return [line.strip() for line in cfg.text.splitlines() if _LB_SECTION.match(line)]


def _haproxy_not_running(ctx: RouterContext) -> list[Verdict]:
    processes = facts_of(ctx, "processes")
    if processes is None or processes.service("haproxy").running:
        return []
    sections = _lb_sections(ctx)
    if not sections:
        return []
    evidence = ["ps: no haproxy process", *quoted((f"{HAPROXY_CFG}: {s}" for s in sections), 5)]
    remediation = (
        "Load-balancer rules are configured but nothing serves them. On the router: `haproxy -c -f "
        f"{HAPROXY_CFG}` (a config error stops it), then `systemctl restart haproxy`; if the config is wrong, "
        f"re-push it: {restart_action(ctx.router)}."
    )
    severity: Severity = "info" if is_standby(ctx) else "critical"
    return [
        verdict(
            HAPROXY_DOWN,
            "haproxy not running although load balancing is configured",
            evidence,
            remediation,
            severity,
            action="restart-service:haproxy",
        )
    ]


HAPROXY_DOWN = Rule(
    id="haproxy-not-running",
    category="haproxy",
    severity="critical",
    summary="haproxy.cfg has load-balancer sections but no haproxy process runs.",
    remedy="Check the config with haproxy -c, restart haproxy; re-push with a restart with cleanup if wrong.",
    reads=("facts:processes", "facts:config", "facts:vrrp"),
    thresholds=(),
    check=_haproxy_not_running,
)


def _keepalived(ctx: RouterContext) -> list[Verdict]:
    if not is_redundant(ctx):
        return []
    vrrp, processes = facts_of(ctx, "vrrp"), facts_of(ctx, "processes")
    severity: Severity = "critical"
    if vrrp is not None and not vrrp.systemd_answered:
        # systemctl failed: that says nothing about keepalived. The process list decides, and
        # systemd-not-answering reports the failed probe itself.
        if processes is None or processes.service("keepalived").running:
            return []
        evidence = [
            f"systemctl is-active keepalived could not answer: {vrrp.keepalived_status}",
            "ps: no keepalived process",
        ]
    elif vrrp is not None:
        if vrrp.keepalived_active:
            return []
        if vrrp.router_type == "vpcrouter" and not vrrp.guest_nics:
            # A VPC pair configures keepalived only once a tier exists (§5.16): expected, not a fault.
            severity = "info"
        evidence = [
            f"systemctl is-active keepalived: {vrrp.keepalived_status or '(nothing)'}",
            f"checkrouter would say: Status: {vrrp.state} ({vrrp.reason})",
        ]
        evidence += quoted(vrrp.keepalived_log[-3:], 3)
    elif processes is not None and not processes.service("keepalived").running:
        evidence = ["ps: no keepalived process"]
    else:
        return []
    remediation = (
        "Without keepalived this member is FAULT: it cannot take over if its peer fails, and the pair may lose "
        "its PRIMARY. 1. `systemctl status keepalived` and /etc/keepalived/keepalived.conf on the router: 'start "
        "condition failed' means the config was never generated (§5.16, a tier with running VMs is needed). "
        f"2. `systemctl restart keepalived`. 3. If it will not stay up, {restart_action(ctx.router)}."
    )
    return [
        verdict(
            KEEPALIVED_DOWN,
            "keepalived not active on a redundant router",
            evidence,
            remediation,
            severity,
            action="restart-service:keepalived",
        )
    ]


KEEPALIVED_DOWN = Rule(
    id="keepalived-not-active",
    category="vrrp",
    severity="critical",
    summary="A redundant router whose keepalived is not active (checkrouter reports FAULT).",
    remedy="Check keepalived.conf exists, restart keepalived; restart the network with cleanup if it will not stay up.",
    reads=("api", "facts:vrrp", "facts:processes"),
    thresholds=(),
    check=_keepalived,
)

RULES = (DEFUNCT, HAPROXY_DOWN, KEEPALIVED_DOWN)
