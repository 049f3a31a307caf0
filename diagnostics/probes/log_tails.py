"""The last lines of every log a virtual router keeps: the evidence taken before a destructive action.

Restarting a network with cleanup (or destroying a router) wipes the router's disk, and with
it the only copy of its logs (apache/cloudstack#10164). Before such an action the console
runs this probe once, besides the usual ones, and keeps its raw output beyond retention:
the last TAIL_LINES of each VR log named in CLOUDSTACK.md §0.9 and §3.3, plus the syslog and
kernel logs, each bounded in bytes. It is not part of the periodic sweep. The parser only
says, per file, whether it was there and how many lines were taken; the raw output is the
evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

from diagnostics.probes.base import Facts, split_sections

FILES = (
    "/var/log/cloud.log",
    "/var/log/routerServiceMonitor.log",
    "/var/log/monitor.log",
    "/var/log/dnsmasq.log",
    "/var/log/haproxy.log",
    "/var/log/daemon.log",
    "/var/log/messages",
    "/var/log/syslog",
    "/var/log/kern.log",
    "/var/log/auth.log",
    "/ramdisk/rrouter/keepalived.log",
)
TAIL_LINES = 1000
MAX_BYTES_PER_FILE = 192 * 1024
COMMAND = (
    f'for f in {" ".join(FILES)}; do echo "==> $f <=="; '
    f"tail -n {TAIL_LINES} \"$f\" 2>&1 | tail -c {MAX_BYTES_PER_FILE} | sed 's/^/|/'; done"
)


@dataclass(frozen=True)
class LogTail(Facts):
    """One log's tail: missing when the file is not on the router; `lines` taken (at most TAIL_LINES)."""

    path: str
    missing: bool
    lines: int


@dataclass(frozen=True)
class LogTailsFacts(Facts):
    """Which logs were there and how much of each was kept (the lines are in the raw output)."""

    files: tuple[LogTail, ...]

    @property
    def lines(self) -> int:
        return sum(tail.lines for tail in self.files)


def parse(text: str) -> LogTailsFacts:
    """One section per file, its lines prefixed with `|` so none can forge a marker."""
    sections = split_sections(text, expected=FILES)
    files = []
    for path in FILES:
        section = sections[path]
        lines = [line[1:] if line.startswith("|") else line for line in section.lines]
        missing = len(lines) <= 2 and bool(lines) and all("No such file or directory" in line for line in lines)
        files.append(LogTail(path=path, missing=missing, lines=0 if missing else len(lines)))
    return LogTailsFacts(files=tuple(files))
