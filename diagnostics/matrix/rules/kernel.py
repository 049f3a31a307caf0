"""Rules on what the VR's kernel logged: OOM kills, NIC links going down, martian-source storms.

The template's rsyslog sends `kern.*` to /var/log/kern.log and kernel info/notice/warn to
/var/log/messages as well, so the same line can sit in both files: it is counted once.
An OOM kill (err level) is only in kern.log.
"""

from __future__ import annotations

from diagnostics.matrix.base import RouterContext, Rule, Verdict
from diagnostics.matrix.evidence import facts_of, quoted, recent_lines, verdict
from diagnostics.probes import logs as log_kinds
from diagnostics.probes.logs import LogLine

KERNEL_FILES = (log_kinds.KERN_LOG, log_kinds.MESSAGES)


def kernel_lines(ctx: RouterContext, kind: str) -> list[LogLine]:
    """The recent kernel lines of one kind from kern.log and messages, each line once."""
    logs = facts_of(ctx, "logs")
    if logs is None:
        return []
    seen: dict[str, LogLine] = {}
    window = ctx.threshold("config_error_window_hours")
    for path in KERNEL_FILES:
        tail = logs.file(path)
        if tail is None:
            continue
        for line in recent_lines(tail.lines, ctx, window):
            if line.kind == kind:
                seen.setdefault(line.text, line)
    return list(seen.values())


def _oom(ctx: RouterContext) -> list[Verdict]:
    lines = [line.text for line in kernel_lines(ctx, log_kinds.OOM_KILL)]
    if not lines:
        return []
    killed = [text for text in lines if "Killed process" in text or "Kill process" in text]
    evidence = [f"{len(killed) or len(lines)} OOM kill(s) in kern.log", *quoted(lines[-6:], 6)]
    remediation = (
        "The router ran out of memory and the kernel killed a process (often haproxy, dnsmasq or conntrackd): "
        "that service is gone until restarted, and the VR sets vm.panic_on_oom = 1 in sysctl.conf, so the next "
        "OOM can reboot it. Check `free -m` and the biggest processes; give the router a larger service "
        "offering (change service offering, then reboot the router)."
    )
    return [verdict(OOM_KILL, "kernel killed a process: out of memory", evidence, remediation)]


OOM_KILL = Rule(
    id="kernel-oom-kill",
    category="memory",
    severity="critical",
    summary="The kernel logged an OOM kill (kern.log) in the recent window.",
    remedy="Find what used the memory; move the router to a larger service offering.",
    reads=("facts:logs",),
    thresholds=("config_error_window_hours",),
    check=_oom,
)


def _link_down(ctx: RouterContext) -> list[Verdict]:
    lines = [line.text for line in kernel_lines(ctx, log_kinds.LINK_DOWN)]
    if not lines:
        return []
    evidence = [f"{len(lines)} 'Link is Down' line(s) in kern.log/messages", *quoted(lines[-6:], 6)]
    remediation = (
        "A router NIC lost its link: traffic on it stopped for that time (and a redundant pair may have changed "
        "PRIMARY). Check the hypervisor side: the VM's vNIC, the bridge or port group and the uplink of the host "
        "it runs on; several flaps point to the host's physical NIC or switch port."
    )
    title = "a NIC link went down" if len(lines) == 1 else f"NIC links went down {len(lines)} times"
    return [verdict(LINK_DOWN, title, evidence, remediation)]


LINK_DOWN = Rule(
    id="nic-link-down-logged",
    category="interfaces",
    severity="warning",
    summary="The kernel logged a NIC 'Link is Down' in the recent window (a flap or an unplugged vNIC).",
    remedy="Check the vNIC, bridge/port group and host uplink of the router's hypervisor.",
    reads=("facts:logs",),
    thresholds=("config_error_window_hours",),
    check=_link_down,
)


def _martians(ctx: RouterContext) -> list[Verdict]:
    lines = [line.text for line in kernel_lines(ctx, log_kinds.MARTIAN_SOURCE)]
    if len(lines) < ctx.threshold("martian_storm_lines"):
        return []
    evidence = [f"{len(lines)} 'martian source' line(s) in kern.log/messages", *quoted(lines[-5:], 5)]
    remediation = (
        "Packets arrive with source addresses that cannot be on the interface they came in on: a VM spoofing or "
        "misconfigured with another subnet's address, or a route/VLAN mix-up on the host. The lines name the "
        "source address and device; find that VM (listVirtualMachines keyword=<ip>) or check the VLAN of the NIC."
    )
    return [verdict(MARTIANS, f"{len(lines)} martian-source packets logged", evidence, remediation)]


MARTIANS = Rule(
    id="martian-source-storm",
    category="interfaces",
    severity="warning",
    summary="The kernel logged at least martian_storm_lines 'martian source' packets in the recent window.",
    remedy="Find the VM or VLAN sending addresses that do not belong on that interface.",
    reads=("facts:logs",),
    thresholds=("config_error_window_hours", "martian_storm_lines"),
    check=_martians,
)

RULES = (OOM_KILL, LINK_DOWN, MARTIANS)
