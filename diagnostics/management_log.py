"""The management-server log lines that name a router, read over SSH: the exception behind a failure.

CloudStack's own advice for a router that failed is "check the Management Server logs for
the specific exception"; when operators configure MANAGEMENT_SERVERS (with an SSH user and
key like the KVM hosts'), the console brings those lines to them. On each server it runs one
fixed command: `grep -F` for the router's instance name and uuid (both validated first, so
nothing else can reach the shell) in MANAGEMENT_LOG_FILE, with a few lines of context for
the exception's stack, bounded in lines and bytes, through the one SSH seam
(diagnostics.ssh) with its timeouts and host-key pinning. The parser is pure: it groups each
log4j entry with its continuation lines (the exception and `at ...` frames) and keeps the
entries around the failure time, bounded; with none in that window it keeps the newest ones
and says so. A server that cannot be read is reported as unknown with the reason.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings

from diagnostics.access import check_allowed, management_endpoints
from diagnostics.hostkeys import PinnedHostKeys
from diagnostics.probes.base import clean_line, validate_instance_name
from diagnostics.ssh import AccessError, connect

# Lines of context after a match: the exception class line and the first stack frames.
CONTEXT_LINES = 12
# grep output kept before parsing: the newest matches, at most this many lines.
TAIL_LINES = 5000
LINE_CHARS = 1000
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# log4j's default CloudStack layout: `2025-03-06 14:21:10,953 ERROR [c.c.v.VirtualMachineManagerImpl] (...) ...`
_ENTRY = re.compile(r"^(?P<stamp>\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})[,.]\d{3}\s+(?P<level>[A-Z]+)\b")


def validate_uuid(value: str) -> str:
    """A CloudStack uuid; anything else is refused before it can reach a command line."""
    if not _UUID.match(value):
        raise ValueError(f"not a CloudStack uuid: {value!r}")
    return value


def grep_command(instance_name: str, uuid: str, path: str) -> str:
    """The one command run on a management server: validated name and uuid, quoted path, bounded output."""
    name = validate_instance_name(instance_name)
    ident = validate_uuid(uuid)
    return (
        f"grep -F -A {CONTEXT_LINES} -e {shlex.quote(name)} -e {shlex.quote(ident)} -- {shlex.quote(path)}"
        f" | tail -n {TAIL_LINES} | cut -c 1-{LINE_CHARS}"
    )


@dataclass(frozen=True)
class LogEntry:
    """One log4j entry (its first line) and its continuation lines (the exception and its stack)."""

    at: datetime | None
    level: str
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def parse_entries(text: str) -> list[LogEntry]:
    """grep's output as entries, in file order; `--` group separators end an entry, undated lines continue one."""
    entries: list[LogEntry] = []
    current: list[str] = []
    stamp: datetime | None = None
    level = ""

    def close() -> None:
        if current:
            entries.append(LogEntry(at=stamp, level=level, lines=tuple(current)))

    for raw in text.split("\n"):
        line = clean_line(raw, LINE_CHARS)
        if line == "--":
            close()
            current, stamp, level = [], None, ""
            continue
        match = _ENTRY.match(line)
        if match:
            close()
            current = [line]
            try:
                # The management server logs in its local time; CloudStack hosts are run in UTC as a rule.
                stamp = datetime.strptime(match["stamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            except ValueError:
                stamp = None
            level = match["level"]
        elif line.strip() and current:
            current.append(line)
    close()
    return entries


def select_entries(
    entries: list[LogEntry], around: datetime | None, before: timedelta, after: timedelta, limit: int
) -> tuple[list[LogEntry], bool]:
    """The entries in [around - before, around + after], newest `limit`; else the newest `limit` (False)."""
    if around is not None:
        window = [e for e in entries if e.at is not None and around - before <= e.at <= around + after]
        if window:
            return window[-limit:], True
    return entries[-limit:], False


def read_management_log(instance_name: str, uuid: str, around: datetime | None) -> dict[str, Any]:
    """The lines naming the router on every configured management server, as stored on FailureEvidence.

    `{"configured": bool, "file": path, "servers": [{"server", "status": "ok"|"unknown", "error",
    "in_window": bool, "entries": [{"at", "level", "lines"}]}]}`; never raises for a server
    that cannot be reached or read (that server is "unknown" with the reason).
    """
    path = settings.MANAGEMENT_LOG_FILE
    endpoints = management_endpoints()
    report: dict[str, Any] = {"configured": bool(endpoints), "file": path, "servers": []}
    if not endpoints:
        return report
    try:
        command = grep_command(instance_name, uuid, path)
    except ValueError as exc:
        report["servers"] = [
            {"server": e.label, "status": "unknown", "error": f"refused to build the command: {exc}"} for e in endpoints
        ]
        return report
    verifier = PinnedHostKeys()
    window_before = timedelta(minutes=settings.MANAGEMENT_LOG_WINDOW_MINUTES)
    window_after = timedelta(minutes=max(1, settings.MANAGEMENT_LOG_WINDOW_MINUTES // 3))
    for endpoint in endpoints:
        server: dict[str, Any] = {"server": endpoint.label, "status": "unknown", "error": "", "entries": []}
        try:
            check_allowed(endpoint)
            with connect(
                endpoint,
                verifier,
                connect_timeout=settings.SSH_CONNECT_TIMEOUT,
                max_output_bytes=settings.SSH_MAX_OUTPUT_BYTES,
            ) as session:
                result = session.run(command, timeout=settings.MANAGEMENT_LOG_TIMEOUT)
        except AccessError as exc:
            server["error"] = str(exc)
            report["servers"].append(server)
            continue
        complaint = clean_line(result.stderr.strip().splitlines()[0], 300) if result.stderr.strip() else ""
        if complaint:
            # grep names the file it cannot read: the log is elsewhere or not readable by this user.
            server["error"] = complaint
            report["servers"].append(server)
            continue
        entries, in_window = select_entries(
            parse_entries(result.stdout), around, window_before, window_after, settings.MANAGEMENT_LOG_MAX_ENTRIES
        )
        server.update(
            status="ok",
            in_window=in_window,
            truncated=result.truncated,
            entries=[
                {"at": e.at.isoformat() if e.at else None, "level": e.level, "lines": list(e.lines)} for e in entries
            ],
        )
        report["servers"].append(server)
    return report
