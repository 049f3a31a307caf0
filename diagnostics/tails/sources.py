"""The logs a live tail may follow: a fixed allowlist, the fixed command for each, and which ones a router has.

The browser names a log of this list (`cloud`, `dnsmasq`, `agent`...), never a path. The
router's own logs are CloudStack's and the system VM's (CLOUDSTACK.md §0.9, §3.3; monitor.log
too, which §0.9 lists). On KVM the host holds two more about the router: libvirt's qemu log of
its domain and the CloudStack agent's log, of which only the lines naming the router (by
instance name or control address) are shown. Host commands are built from the validated
instance name and address only (probes.base.validate_instance_name, validate_ip), quoted.

Every command ends when its standard input closes: the tail runs in the background while the
shell waits on `read`, and both the end of input and the end of the tail kill the session's
process group, so closing the SSH channel leaves nothing running on the router or the host.
`tail -F` follows the file by name, so a rotation by rename and the VR's `copytruncate`
(CLOUDSTACK.md §3.3) are both followed; tail reports them on stderr, which the worker shows.

Which logs a router has comes from its last collection: the `logfiles` probe lists
/var/log, the `vrrp` probe says whether the router is redundant (the heartbeat log lives on
/ramdisk of redundant routers only), and the `host_logfiles` probe lists the host's two.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any, Literal

from diagnostics.models import Collection
from diagnostics.probes.base import validate_instance_name, validate_ip
from diagnostics.probes.host_side import AGENT_LOG, qemu_log_path
from vrconsole.models import Router

# Lines scanned in the agent log for the ones naming the router, on start.
AGENT_SCAN_LINES = 5000


@dataclass(frozen=True)
class LogSource:
    """One log a tail may follow.

    name:    what the browser sends and the channel-layer group carries
    label:   what the operator reads in the log menu
    path:    the file; for the qemu log, the pattern with <instance>
    scope:   "router" (read in the router's session) or "host" (in the KVM host's)
    """

    name: str
    label: str
    path: str
    scope: Literal["router", "host"] = "router"

    def path_for(self, instance_name: str) -> str:
        """The file for one router (the qemu log is named after its domain)."""
        if self.name == QEMU:
            return qemu_log_path(instance_name)
        return self.path


QEMU = "qemu"
AGENT = "agent"
KEEPALIVED = "keepalived"

SOURCES: tuple[LogSource, ...] = (
    LogSource("cloud", "cloud.log · configuration scripts", "/var/log/cloud.log"),
    LogSource("dnsmasq", "dnsmasq.log · DHCP and DNS", "/var/log/dnsmasq.log"),
    LogSource("daemon", "daemon.log · keepalived, conntrackd, charon", "/var/log/daemon.log"),
    LogSource("messages", "messages · syslog", "/var/log/messages"),
    LogSource("kern", "kern.log · kernel", "/var/log/kern.log"),
    LogSource("auth", "auth.log · logins", "/var/log/auth.log"),
    LogSource("haproxy", "haproxy.log · load balancer", "/var/log/haproxy.log"),
    LogSource("service-monitor", "routerServiceMonitor.log · service restarts", "/var/log/routerServiceMonitor.log"),
    LogSource("monitor", "monitor.log · health-check runs", "/var/log/monitor.log"),
    LogSource("apache2-error", "apache2/error.log · userdata server", "/var/log/apache2/error.log"),
    LogSource(KEEPALIVED, "keepalived.log · VRRP heartbeat", "/ramdisk/rrouter/keepalived.log"),
    LogSource(QEMU, "qemu log of the domain · on the KVM host", "/var/log/libvirt/qemu/<instance>.log", "host"),
    LogSource(AGENT, "agent.log lines naming this router · on the KVM host", AGENT_LOG, "host"),
)
SOURCES_BY_NAME: dict[str, LogSource] = {source.name: source for source in SOURCES}


def tail_command(source: LogSource, backfill: int, instance_name: str, link_local_ip: str) -> str:
    """The fixed command that follows `source` from its last `backfill` lines.

    Host logs need the router's instance name (and, for the agent log, its control address);
    both are validated and quoted, and a ValueError refuses anything else.
    """
    lines = max(0, int(backfill))
    if source.scope == "host":
        name = validate_instance_name(instance_name)
        if source.name == QEMU:
            follow = f"tail -n {lines} -F -- {shlex.quote(qemu_log_path(name))}"
        else:
            address = validate_ip(link_local_ip)
            # -w: `r-1-VM` must not match `r-11-VM`, nor 169.254.0.1 match 169.254.0.12.
            follow = (
                f"tail -n {AGENT_SCAN_LINES} -F -- {AGENT_LOG} | "
                f"grep --line-buffered -w -F -e {shlex.quote(name)} -e {shlex.quote(address)}"
            )
    else:
        follow = f"tail -n {lines} -F -- {source.path}"
    return f"{{ {follow}; kill 0; }} & read -r line; kill 0"


def _file_paths(logfiles: Any) -> set[str]:
    """Paths of the live (not rotated) files a logfiles-shaped facts dict lists."""
    if not isinstance(logfiles, dict) or not isinstance(logfiles.get("files"), list):
        return set()
    return {
        item["path"]
        for item in logfiles["files"]
        if isinstance(item, dict) and isinstance(item.get("path"), str) and not item.get("rotated")
    }


def available_sources(facts: dict[str, Any], instance_name: str) -> list[LogSource]:
    """The allowlisted logs a router has, from the facts of its last collection (pure)."""
    router_files = _file_paths(facts.get("logfiles"))
    host_files = _file_paths(facts.get("host_logfiles"))
    vrrp = facts.get("vrrp")
    redundant = isinstance(vrrp, dict) and vrrp.get("redundant") is True
    offered = []
    for source in SOURCES:
        if source.scope == "host":
            try:
                present = source.path_for(validate_instance_name(instance_name)) in host_files
            except ValueError:
                present = False
        elif source.name == KEEPALIVED:
            present = redundant
        else:
            present = source.path in router_files
        if present:
            offered.append(source)
    return offered


def offered_sources(router: Router) -> list[LogSource]:
    """The logs the router's latest collection that listed its files says it has (none before one did)."""
    row = (
        Collection.objects.filter(router=router, facts__has_key="logfiles")
        .order_by("-created", "-id")
        .values_list("facts__logfiles", "facts__host_logfiles", "facts__vrrp")
        .first()
    )
    if row is None:
        return []
    logfiles, host_logfiles, vrrp = row
    facts = {"logfiles": logfiles, "host_logfiles": host_logfiles, "vrrp": vrrp}
    return available_sources(facts, router.name)


def offered_source(router_id: int, log: str) -> tuple[Router, LogSource] | None:
    """The router and the log a tail socket names, when the router exists and has that log."""
    source = SOURCES_BY_NAME.get(log)
    router = Router.objects.filter(pk=router_id).first()
    if source is None or router is None or source not in offered_sources(router):
        return None
    return router, source
