"""Rules on reaching the router: Running in CloudStack, yet the console's collection could not get in.

The access path is the one CloudStack itself uses (KVM: the host, then the link-local
address on cloud0, port 3922; XenServer: dom0, then the link-local address, port 3922, as
router_proxy.sh on dom0 does; VMware: the control address directly), so the reason the
collection failed says where the path breaks, and each reason has its own remedy.
"""

from __future__ import annotations

from diagnostics.matrix.base import RouterContext, Rule, Severity, Verdict
from diagnostics.matrix.evidence import verdict

# reason -> (severity, title, remediation)
_REASONS: dict[str, tuple[Severity, str, str]] = {
    "host_unreachable": (
        "warning",
        "its {kind} host {host} cannot be reached",
        "The console could not open SSH to the host ({host}). Check the host is Up in listHosts and reachable from "
        "the console (routing, firewall on port 22). If CloudStack also lost the host, every router on it is "
        "unmanaged: fix the host or its agent (systemctl status cloudstack-agent) first.",
    ),
    "host_auth_refused": (
        "warning",
        "its {kind} host {host} refused the console's key",
        "The console's host key or user is not accepted on {host}: fix the console's HOST_SSH_USER / key "
        "(authorized_keys on the host). The router itself may be fine.",
    ),
    "host_key_changed": (
        "warning",
        "the SSH host key of {host} changed",
        "The host presented another key than the one pinned. If the host was reinstalled, re-pin it in the console; "
        "if not, treat it as a security incident before connecting again.",
    ),
    "router_unreachable": (
        "critical",
        "its control address does not answer (link-local path down)",
        "The host is reachable but the router's control address {address} is not: the same path the management "
        "server uses (router_proxy.sh), so CloudStack cannot program this router either. 1. On the host: "
        "`ip addr show cloud0` (169.254.0.1 present, UP), `virsh domiflist {name}` (the control vnet on cloud0), "
        "`virsh domstate {name}`. 2. Open the console (virsh console) and check eth-control is up and sshd runs. "
        "3. rebootRouter; if it persists, {restart}.",
    ),
    "auth_refused": (
        "critical",
        "it refused the system VM key",
        "The router rejected /root/.ssh/id_rsa.cloud: its authorized_keys were not patched at boot (a failed "
        "cloud-early-config) or the key on the host changed. CloudStack uses the same key, so it cannot program the "
        "router either. Reboot the router (rebootRouter) so it is re-patched; if it persists, {restart}.",
    ),
    "timeout": (
        "warning",
        "the SSH session timed out",
        "The router (or its host) accepted the connection but did not answer in time: an overloaded router (see "
        "CPU and softirq verdicts), a full disk, or a hung sshd. Collect again; if it keeps timing out, open the "
        "console (virsh console) and check load and disk, then rebootRouter.",
    ),
    "protocol_error": (
        "warning",
        "the SSH session broke",
        "The SSH exchange failed part way: collect again; if it persists check sshd on the router (MaxStartups) "
        "and the host's forwarding.",
    ),
    "no_address": (
        "warning",
        "CloudStack gives no usable address for it",
        "listRouters returned no link-local/control address or no host address: CloudStack itself may have lost the "
        "router's NICs. Sync again; if it stays empty, {restart}.",
    ),
    "key_missing": (
        "info",
        "the console's SSH key file is missing",
        "The key named in the console's settings cannot be read: fix the deployment (the key path and permissions).",
    ),
}


# On XenServer dom0 has no virsh and no cloud0: the management server runs router_proxy.sh there
# (CitrixResourceBase), which pings the link-local address before it SSHes to port 3922.
_XEN_ROUTER_UNREACHABLE = (
    "The XenServer host (dom0) is reachable but the router's link-local address {address} is not: the same path "
    "the management server uses (router_proxy.sh on dom0, which pings the address first), so CloudStack cannot "
    "program this router either. 1. On dom0: `ping -c 2 {address}`, `xe vm-list name-label={name} "
    "params=power-state`. 2. Open the router's console (`xe console vm={name}`) and check the control NIC is up "
    "and sshd runs. 3. rebootRouter; if it persists, {restart}."
)
XEN_HYPERVISORS = ("xenserver", "xcp-ng")


def _host_kind(hypervisor: str) -> str:
    name = hypervisor.strip().lower()
    if name in XEN_HYPERVISORS:
        return "XenServer"
    return "KVM" if name == "kvm" else hypervisor.strip() or "hypervisor"


def _unmanageable(ctx: RouterContext) -> list[Verdict]:
    router, collection = ctx.router, ctx.collection
    if router.state != "Running" or collection is None or collection.status != "failed":
        return []
    entry = _REASONS.get(collection.reason)
    if entry is None:
        return []
    severity, title, remediation = entry
    if collection.reason == "router_unreachable" and router.hypervisor.strip().lower() in XEN_HYPERVISORS:
        remediation = _XEN_ROUTER_UNREACHABLE
    if router.router_type == "vpc":
        restart = "restartVPC id=<vpc uuid> cleanup=true"
    else:
        restart = "restartNetwork id=<network uuid> cleanup=true"
    values = {
        "host": router.host_ip or router.host_name or "the host",
        "address": router.link_local_ip or "?",
        "name": router.name,
        "restart": restart,
        "kind": _host_kind(router.hypervisor),
    }
    evidence = [
        "listRouters state: Running",
        f"collection failed ({collection.reason}) via {collection.access_path or '?'}: {collection.error}",
    ]
    if collection.finished is not None:
        evidence.append(f"at {collection.finished.isoformat()}")
    return [
        verdict(
            UNMANAGEABLE,
            f"{router.name} is Running but unmanageable: {title.format(**values)}",
            evidence,
            remediation.format(**values),
            severity,
            action="reboot" if collection.reason in ("router_unreachable", "auth_refused", "timeout") else "",
        )
    ]


UNMANAGEABLE = Rule(
    id="router-unmanageable",
    category="access",
    severity="critical",
    summary=(
        "CloudStack says Running but the router cannot be reached: host unreachable, link-local path down, "
        "key refused, host key changed or timeout, each with its own remedy."
    ),
    remedy="Follow the path the reason names: the host, cloud0 and the control tap, the system VM key, the router's load.",
    reads=("api", "history"),
    thresholds=(),
    check=_unmanageable,
)

RULES = (UNMANAGEABLE,)
