"""Rules on memory, disk space, inodes and logs: the resources whose exhaustion freezes a router.

A VR that cannot write freezes in odd ways: configuration applies fail, logs stop, dnsmasq
cannot write leases (§5.4–5.6). The usual causes are logs that rotate too slowly, a
rotated log still held open by rsyslog after deletion, and inode exhaustion from
/var/cache/cloud/processed. The VR panics on OOM (`vm.panic_on_oom = 1`), so memory near
full is a reboot waiting to happen.
"""

from __future__ import annotations

import re

from diagnostics.matrix.base import RouterContext, Rule, Severity, Verdict
from diagnostics.matrix.evidence import facts_of, number, quoted, size, verdict
from diagnostics.matrix.layout import is_redundant
from diagnostics.matrix.rules.api_state import restart_action


def _memory(ctx: RouterContext) -> list[Verdict]:
    system = facts_of(ctx, "system")
    if system is None or not system.mem_total_kb:
        return []
    percent = system.mem_used_percent
    warning, critical = ctx.threshold("memory_warning_pct"), ctx.threshold("memory_critical_pct")
    if percent < warning:
        return []
    evidence = [
        f"MemTotal {number(system.mem_total_kb)} kB, MemAvailable {number(system.mem_available_kb)} kB ({percent:.1f} % used)",
    ]
    remediation = (
        "The VR panics and reboots on OOM (vm.panic_on_oom=1). 1. `ps aux --sort=-rss | head` on the router: a "
        "runaway haproxy, conntrackd or charon? restart that service. 2. If the router is simply too small for its "
        "load, scale its offering (scaleSystemVm / changeServiceForSystemVm)."
    )
    severity: Severity = "critical" if percent >= critical else "warning"
    return [verdict(MEMORY_HIGH, f"memory {percent:.0f} % used", evidence, remediation, severity)]


MEMORY_HIGH = Rule(
    id="memory-high",
    category="memory",
    severity="critical",
    summary="Memory used (MemTotal - MemAvailable) above the warning/critical threshold; the VR panics on OOM.",
    remedy="Restart a runaway service; scale the offering if the router is too small.",
    reads=("facts:system",),
    thresholds=("memory_warning_pct", "memory_critical_pct"),
    check=_memory,
)


def _distinct_filesystems(disk: object) -> list:
    seen, result = set(), []
    for fs in disk.filesystems:  # type: ignore[attr-defined]
        key = (fs.filesystem, fs.mount)
        if key not in seen:
            seen.add(key)
            result.append(fs)
    return result


def _space(ctx: RouterContext) -> list[Verdict]:
    disk = facts_of(ctx, "disk")
    if disk is None:
        return []
    warning, critical = ctx.threshold("disk_warning_pct"), ctx.threshold("disk_critical_pct")
    verdicts = []
    for fs in _distinct_filesystems(disk):
        if fs.used_percent < warning or not fs.size_kb:
            continue
        evidence = [
            f"df {fs.mount} ({fs.filesystem}): {fs.used_percent} % used, {number(fs.available_kb)} kB free of {number(fs.size_kb)} kB"
        ]
        logfiles = facts_of(ctx, "logfiles")
        if logfiles is not None:
            evidence += [
                f"{family.base}: {size(family.bytes)} in {family.files} file(s)" for family in logfiles.families[:3]
            ]
            if logfiles.deleted_open_bytes:
                evidence.append(f"deleted but still open: {size(logfiles.deleted_open_bytes)}")
        remediation = (
            f"A router that cannot write {fs.mount} freezes: configuration applies and DHCP leases fail. 1. Find "
            "what fills it: `du -xsh /var/log/* /var/cache/cloud/* | sort -h`. 2. Old rotated logs can go "
            "(`rm /var/log/*.gz /var/log/*.[2-9]`); deleted-but-open logs need `systemctl restart rsyslog`. "
            "3. /var/cache/cloud/processed is cleaned by `/root/cleanup_processed.sh 5`."
        )
        if fs.mount == RAMDISK:
            remediation = (
                "/ramdisk holds keepalived's heartbeat script, its timestamp and strike files: full, the heartbeat "
                "cannot be written, check_heartbeat.sh counts strikes and puts the router in FAULT. See what fills "
                "it (`du -sh /ramdisk/*`, usually /ramdisk/rrouter/keepalived.log) and empty that file."
            )
        severity: Severity = "critical" if fs.used_percent >= critical else "warning"
        verdicts.append(verdict(SPACE, f"{fs.mount} {fs.used_percent} % full", evidence, remediation, severity))
    return verdicts


SPACE = Rule(
    id="filesystem-near-full",
    category="disk",
    severity="critical",
    summary="/, /var, /var/log or /ramdisk above the warning/critical use threshold.",
    remedy="Find what fills it (logs, processed files); delete rotated logs, restart rsyslog for deleted-open files.",
    reads=("facts:disk", "facts:logfiles"),
    thresholds=("disk_warning_pct", "disk_critical_pct"),
    check=_space,
)


def _inodes(ctx: RouterContext) -> list[Verdict]:
    disk = facts_of(ctx, "disk")
    if disk is None:
        return []
    warning, critical = ctx.threshold("inode_warning_pct"), ctx.threshold("inode_critical_pct")
    verdicts = []
    for fs in _distinct_filesystems(disk):
        if not fs.inodes or fs.inodes_used_percent < warning:
            continue
        evidence = [
            f"df -i {fs.mount} ({fs.filesystem}): {number(fs.inodes_used)} of {number(fs.inodes)} inodes used ({fs.inodes_used_percent} %), {number(fs.inodes_free)} free"
        ]
        remediation = (
            "Out of inodes the router cannot create files although space is left (apache/cloudstack#3757: 110,343 "
            "files in /var/cache/cloud/processed). Count them: `ls /var/cache/cloud/processed | wc -l`; clean with "
            "`/root/cleanup_processed.sh 5` (or `find /var/cache/cloud/processed -mtime +5 -delete`) and check "
            "/etc/cron.daily/clean_cloud_processed_files runs."
        )
        severity: Severity = "critical" if fs.inodes_used_percent >= critical else "warning"
        verdicts.append(
            verdict(INODES, f"{fs.mount} inodes {fs.inodes_used_percent} % used", evidence, remediation, severity)
        )
    return verdicts


INODES = Rule(
    id="inodes-near-exhausted",
    category="disk",
    severity="critical",
    summary="Inode use of /, /var or /var/log above the threshold (usually /var/cache/cloud/processed).",
    remedy="Clean /var/cache/cloud/processed (cleanup_processed.sh) and check its daily cron.",
    reads=("facts:disk",),
    thresholds=("inode_warning_pct", "inode_critical_pct"),
    check=_inodes,
)


# Binary or sparse records (lastlog's size is its sparse extent) and journald's own files are not logrotate's.
_NOT_ROTATED_TEXT = re.compile(r"/(?:lastlog|wtmp|btmp|faillog)$|\.journal~?$|/journal/")


def _not_rotating(ctx: RouterContext) -> list[Verdict]:
    logfiles = facts_of(ctx, "logfiles")
    if logfiles is None:
        return []
    limit = ctx.threshold("log_unrotated_mb") * 1024 * 1024
    verdicts = []
    for item in logfiles.files:
        if item.rotated or item.size <= limit or _NOT_ROTATED_TEXT.search(item.path):
            continue
        family = logfiles.family(item.base)
        if family is not None and family.files > 1:
            continue
        evidence = [f"{item.path}: {size(item.size)}, no rotated sibling ({item.base}.1, .gz ...)"]
        remediation = (
            "logrotate is not rotating this log (the VR's rule is hourly with maxsize 10M, copytruncate). Check "
            "`systemctl status logrotate.timer`, /etc/logrotate.d/ for a rule covering it, and run "
            "`logrotate -f /etc/logrotate.conf` once; a log with no rule needs one."
        )
        verdicts.append(
            verdict(NOT_ROTATING, f"{item.path} is {size(item.size)} and never rotated", evidence, remediation)
        )
    return verdicts


NOT_ROTATING = Rule(
    id="log-not-rotating",
    category="logs",
    severity="warning",
    summary="A live log under /var/log is larger than logrotate's maxsize and has no rotated sibling.",
    remedy="Check logrotate.timer and the rule for that log; force one rotation.",
    reads=("facts:logfiles",),
    thresholds=("log_unrotated_mb",),
    check=_not_rotating,
)


def _deleted_open(ctx: RouterContext) -> list[Verdict]:
    logfiles = facts_of(ctx, "logfiles")
    if logfiles is None or logfiles.deleted_open_bytes < ctx.threshold("deleted_open_mb") * 1024 * 1024:
        return []
    evidence = [f"{len(logfiles.deleted_open)} deleted file(s) still open, holding {size(logfiles.deleted_open_bytes)}"]
    evidence += quoted(
        f"pid {d.pid} fd {d.fd}: {d.path} (deleted), {size(d.size) if d.size >= 0 else 'size unknown'}"
        for d in sorted(logfiles.deleted_open, key=lambda d: -d.size)
    )
    remediation = (
        "A process still writes to a log that was deleted, so df counts space no file shows (apache/cloudstack#7576: "
        "3 GB haproxy.log.1 held by rsyslogd). Restart the holder: `systemctl restart rsyslog` (or the pid's "
        "service); the space returns at once."
    )
    return [
        verdict(DELETED_OPEN, f"{size(logfiles.deleted_open_bytes)} held by deleted open files", evidence, remediation)
    ]


DELETED_OPEN = Rule(
    id="deleted-log-held-open",
    category="disk",
    severity="warning",
    summary="Deleted files still held open (typically a rotated log kept by rsyslog) hold more than the threshold.",
    remedy="Restart the process holding them (systemctl restart rsyslog).",
    reads=("facts:logfiles",),
    thresholds=("deleted_open_mb",),
    check=_deleted_open,
)

RAMDISK = "/ramdisk"


def _ramdisk(ctx: RouterContext) -> list[Verdict]:
    disk = facts_of(ctx, "disk")
    if disk is None or not is_redundant(ctx):
        return []
    fs = disk.for_path(RAMDISK)
    if fs is not None and fs.mount == RAMDISK:
        return []
    seen = "does not exist" if fs is None else f"is a directory on {fs.mount} ({fs.filesystem}), not its own tmpfs"
    evidence = [f"df {RAMDISK}: {seen}"]
    remediation = (
        "A redundant router keeps keepalived's heartbeat script and state on the /ramdisk tmpfs (CsRedundant "
        "mounts it when the router is set up): without it the heartbeat fails and the router goes FAULT, or the "
        "state does not survive as designed. Restart the network with cleanup so the router is set up again: "
        f"{restart_action(ctx.router)}."
    )
    return [verdict(RAMDISK_MISSING, f"{RAMDISK} is not mounted on a redundant router", evidence, remediation)]


RAMDISK_MISSING = Rule(
    id="ramdisk-not-mounted",
    category="vrrp",
    severity="critical",
    summary="A redundant router has no /ramdisk tmpfs, where keepalived's heartbeat and state live.",
    remedy="Restart the network with cleanup so the router's redundancy is set up again.",
    reads=("facts:disk", "facts:vrrp", "api"),
    thresholds=(),
    check=_ramdisk,
)

RULES = (MEMORY_HIGH, SPACE, INODES, NOT_ROTATING, DELETED_OPEN, RAMDISK_MISSING)
