"""Rules on the KVM host a router lives on: the cloud0 bridge, the router's control tap, its libvirt domain, its qemu log.

On KVM the link-local control address exists only on the host's cloud0 bridge (§2): a
cloud0 that is missing, down or without 169.254.0.1 leaves every router on that host
unmanageable, by CloudStack as much as by the console. These facts come from the host
probes, which run even when the router itself cannot be reached.
"""

from __future__ import annotations

import re

from diagnostics.matrix.base import RouterContext, Rule, Verdict
from diagnostics.matrix.evidence import facts_of, quoted, verdict
from diagnostics.matrix.rules.api_state import restart_action

CLOUD0_ADDRESS = "169.254.0.1"


def _cloud0(ctx: RouterContext) -> list[Verdict]:
    cloud0 = facts_of(ctx, "host_cloud0")
    if cloud0 is None:
        return []
    host = ctx.router.host_name or ctx.router.host_ip or "the host"
    bridge = cloud0.bridge  # private.bridge.name from the agent's properties, cloud0 by default
    problems = []
    if not cloud0.present:
        problems.append(f"{host}: ip addr show dev {bridge}: no such device")
    else:
        if not any(a.split("/")[0] == CLOUD0_ADDRESS for a in cloud0.addresses):
            problems.append(f"{host}: {bridge} addresses {', '.join(cloud0.addresses) or 'none'} (no {CLOUD0_ADDRESS})")
        if not cloud0.admin_up or cloud0.operstate == "DOWN":
            problems.append(
                f"{host}: {bridge} state {cloud0.operstate or '?'}, admin {'up' if cloud0.admin_up else 'down'}"
            )
    if cloud0.route_error:
        problems.append(f"{host}: ip route get {ctx.router.link_local_ip or '<link-local>'}: {cloud0.route_error}")
    elif cloud0.route_device and cloud0.route_device != bridge:
        problems.append(
            f"{host}: the route to {ctx.router.link_local_ip or 'the router'} leaves via {cloud0.route_device}, not {bridge}"
        )
    if not problems:
        return []
    remediation = (
        f"Every router on {host} is unreachable for CloudStack (router_proxy.sh) while this lasts. On the host: "
        f"`ip link set {bridge} up`; `ip addr add 169.254.0.1/16 dev {bridge}` if the address is missing; remove any "
        "route that captures 169.254.0.0/16 elsewhere (`ip route show 169.254.0.0/16`). Then restart the agent "
        f"(`systemctl restart cloudstack-agent`), which re-creates {bridge} from its configuration "
        "(private.bridge.name in /etc/cloudstack/agent/agent.properties)."
    )
    return [verdict(CLOUD0, f"{bridge} bridge broken on {host}", problems, remediation)]


CLOUD0 = Rule(
    id="cloud0-bridge-broken",
    category="access",
    severity="critical",
    summary="The KVM host's private bridge (cloud0, or the agent's private.bridge.name) is missing, down, without "
    "169.254.0.1, or not the route to the router.",
    remedy="Bring cloud0 up with 169.254.0.1/16 (or restart cloudstack-agent); every router on the host depends on it.",
    reads=("facts:host_cloud0",),
    thresholds=(),
    check=_cloud0,
)


def _tap(ctx: RouterContext) -> list[Verdict]:
    tap = facts_of(ctx, "host_tap")
    if tap is None or ctx.router.state != "Running":
        return []
    if tap.domain_error:
        # libvirt-domain-not-running reports a missing domain.
        return []
    bridge = tap.bridge
    problems = []
    if not tap.control_tap:
        problems.append(f"virsh domiflist {ctx.router.name}: no interface on {bridge}")
    elif not tap.control_tap_attached:
        problems.append(f"{tap.control_tap} (source {bridge} in the domain) is not a port of {bridge}")
    elif not tap.control_tap_up:
        port = next((p for p in tap.ports if p.name == tap.control_tap), None)
        problems.append(f"{tap.control_tap} on {bridge} is {port.operstate if port else 'down'}")
    if not problems:
        return []
    evidence = problems + [f"domiflist: {i.interface} {i.type} {i.source} {i.mac}" for i in tap.interfaces]
    remediation = (
        f"The router's control NIC is not connected to {bridge}, so nothing reaches its link-local address. On the "
        f"host: `ip link set {tap.control_tap or '<vnet>'} master {bridge} up`; if the tap is gone, reboot the router "
        f"(rebootRouter) so libvirt re-creates it; if it persists, {restart_action(ctx.router)}."
    )
    return [verdict(TAP, f"control tap of the router not on {bridge}", evidence, remediation)]


TAP = Rule(
    id="router-tap-missing",
    category="interfaces",
    severity="critical",
    summary="The router's control vnet/tap is missing, not enslaved to cloud0, or down on the KVM host.",
    remedy="Re-attach the tap to cloud0 and bring it up; reboot the router if it is gone.",
    reads=("api", "facts:host_tap"),
    thresholds=(),
    check=_tap,
)


_NO_DOMAIN = re.compile(r"failed to get domain|Domain not found|no domain with matching name", re.IGNORECASE)


def _domain(ctx: RouterContext) -> list[Verdict]:
    domstate = facts_of(ctx, "host_domstate")
    router = ctx.router
    if domstate is None or router.state not in ("Running", "Starting"):
        return []
    if domstate.error:
        # Only "this domain does not exist" is a fact about the router; any other virsh
        # complaint (no libvirtd, a refused connection) says nothing about it.
        if not _NO_DOMAIN.search(domstate.error) or router.name not in domstate.error:
            return []
        evidence = [f"virsh domstate {router.name}: {domstate.error}"]
        title = f"libvirt has no domain {router.name} on {router.host_name or 'its host'}"
    elif domstate.state in ("running", "blocked", "in shutdown") or router.state == "Starting":
        return []
    else:
        evidence = [f"virsh domstate --reason {router.name}: {domstate.state} ({domstate.reason or 'no reason'})"]
        title = f"libvirt domain {router.name} is {domstate.state}"
    evidence.append(f"listRouters state: {router.state}, host {router.host_name or '?'}")
    qemu = facts_of(ctx, "host_qemu_log")
    if qemu is not None:
        evidence += quoted(qemu.error_lines[-3:], 3)
    remediation = (
        "CloudStack believes the router runs, but the hypervisor does not run it: its network has no router. "
        "CloudStack's VM sync should notice within minutes; if it does not, stop and start it (stopRouter "
        f"forced=true, startRouter) or {restart_action(router)}. Read the qemu log for why it stopped (crash, OOM "
        "on the host)."
    )
    return [verdict(DOMAIN, title, evidence, remediation)]


DOMAIN = Rule(
    id="libvirt-domain-not-running",
    category="api-state",
    severity="critical",
    summary="CloudStack lists the router Running but libvirt on its host has it shut off, paused, crashed or not at all.",
    remedy="Stop/start the router (forced) or restart the network with cleanup; read the qemu log for the cause.",
    reads=("api", "facts:host_domstate", "facts:host_qemu_log"),
    thresholds=(),
    check=_domain,
)

# Lines a normal stop writes: not faults.
_ORDINARY_STOP = re.compile(r"terminating on signal|shutting down, reason=(?:shutdown|destroyed)", re.IGNORECASE)


def _qemu_errors(ctx: RouterContext) -> list[Verdict]:
    qemu = facts_of(ctx, "host_qemu_log")
    if qemu is None or qemu.missing:
        return []
    errors = [line for line in qemu.error_lines if not _ORDINARY_STOP.search(line)]
    if not errors:
        return []
    tap = any(re.search(r"\btap|netdev|vhost|vnet", line, re.IGNORECASE) for line in errors)
    evidence = [f"{len(errors)} error line(s) in /var/log/libvirt/qemu/{ctx.router.name}.log", *quoted(errors[-6:], 6)]
    remediation = (
        "qemu reported errors for this router's domain. "
        + (
            "Tap device failures mean a NIC could not be created or attached: check the bridges named in the "
            "domain XML exist on the host (`virsh domiflist`, `ip link show type bridge`) and that the host has "
            "free tap devices; then reboot the router (rebootRouter). "
            if tap
            else "Read the lines for the device or resource that failed; reboot the router once the host is fixed. "
        )
        + f"If it persists, {restart_action(ctx.router)}."
    )
    # The tail may hold errors of an earlier boot: with the domain running and its tap up they are history.
    domstate, tap_facts = facts_of(ctx, "host_domstate"), facts_of(ctx, "host_tap")
    settled = (
        domstate is not None and domstate.state == "running" and tap_facts is not None and tap_facts.control_tap_up
    )
    title = "qemu log reports errors" + (" (tap/network device)" if tap else "")
    return [verdict(QEMU, title, evidence, remediation, "info" if settled else "warning")]


QEMU = Rule(
    id="qemu-log-errors",
    category="interfaces",
    severity="warning",
    summary="The router's qemu log on the KVM host has error lines (tap device failures and the like), ordinary stops left out.",
    remedy="Fix the host-side device (bridge, tap) the lines name, then reboot the router.",
    reads=("facts:host_qemu_log",),
    thresholds=(),
    check=_qemu_errors,
)

RULES = (CLOUD0, TAP, DOMAIN, QEMU)
