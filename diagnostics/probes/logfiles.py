"""Sizes and modification times of the files under /var/log, and deleted files still held open.

A full disk on a VR is usually logs: rotation too slow under churn, or a rotated file that
rsyslog still holds open after deletion (CLOUDSTACK.md §5.4, found there with lsof). The
VR has no lsof, so the probe reads the /proc/<pid>/fd links itself and sizes each
`(deleted)` target through the link.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from diagnostics.probes.base import Facts, ParseError, parse_int, split_sections

COMMAND = (
    "echo '==> files <=='; find /var/log -maxdepth 2 -type f -printf '%s %T@ %p\\n' 2>/dev/null | head -n 2000; "
    # find reads every fd link itself; the loop forks only for the few deleted ones (a readlink
    # per fd costs seconds on a busy machine).
    "echo '==> deleted <=='; find /proc/[0-9]*/fd -maxdepth 1 -lname '* (deleted)' 2>/dev/null | head -n 500 | "
    'while read -r fd; do t=$(readlink "$fd") || continue; '
    'echo "$(stat -L -c %s "$fd" 2>/dev/null || echo -1) $fd $t"; done'
)

_FILE = re.compile(r"^(?P<size>\d+) (?P<mtime>\d+)(?:\.\d+)? (?P<path>/.+)$")
_DELETED = re.compile(r"^(?P<size>-?\d+) /proc/(?P<pid>\d+)/fd/(?P<fd>\d+) (?P<path>.+) \(deleted\)$")
_ROTATION = re.compile(r"(?:\.\d+)?(?:\.gz|\.xz|\.bz2|\.zst)?$|-\d{8,10}(?:\.gz)?$")


@dataclass(frozen=True)
class LogFile(Facts):
    """One file: bytes, mtime (epoch seconds) and the log it belongs to (`cloud.log.3.gz` → `cloud.log`)."""

    path: str
    size: int
    mtime: int
    base: str
    rotated: bool


@dataclass(frozen=True)
class LogFamily(Facts):
    """A log with its rotated siblings."""

    base: str
    files: int
    bytes: int


@dataclass(frozen=True)
class DeletedOpenFile(Facts):
    """A file deleted from its directory but still open; size −1 when it could not be read."""

    pid: int
    fd: int
    path: str
    size: int


@dataclass(frozen=True)
class LogfilesFacts(Facts):
    """Files under /var/log, their families by size, and deleted files held open."""

    files: tuple[LogFile, ...]
    families: tuple[LogFamily, ...]
    deleted_open: tuple[DeletedOpenFile, ...]
    deleted_open_bytes: int

    def family(self, base: str) -> LogFamily | None:
        """One log's family, by the path of the live file."""
        return next((f for f in self.families if f.base == base), None)


def base_of(path: str) -> str:
    """The live log a rotated file belongs to: strips `.N`, `.N.gz`, `.gz` and `-YYYYMMDD` suffixes."""
    return _ROTATION.sub("", path, count=1) or path


def parse(text: str) -> LogfilesFacts:
    """The files and deleted sections."""
    sections = split_sections(text, expected=("files", "deleted"))
    files = []
    for line in sections["files"].lines:
        if not line.strip():
            continue
        match = _FILE.match(line)
        if not match:
            raise ParseError(f"expected 'size mtime path' from find, got {line[:80]!r}")
        base = base_of(match["path"])
        size, mtime = parse_int(match["size"], "file size"), parse_int(match["mtime"], "file mtime")
        files.append(LogFile(match["path"], size, mtime, base, base != match["path"]))
    deleted = []
    for line in sections["deleted"].lines:
        if not line.strip():
            continue
        match = _DELETED.match(line)
        if not match:
            raise ParseError(f"expected 'size /proc/pid/fd/n path (deleted)', got {line[:80]!r}")
        # memfd and shared-memory segments are anonymous memory, not disk space.
        if match["path"].startswith(("/memfd:", "/dev/shm/", "/SYSV")):
            continue
        deleted.append(
            DeletedOpenFile(
                parse_int(match["pid"], "pid"),
                parse_int(match["fd"], "fd"),
                match["path"],
                parse_int(match["size"], "size"),
            )
        )
    sizes: dict[str, list[int]] = defaultdict(list)
    for item in files:
        sizes[item.base].append(item.size)
    families = sorted((LogFamily(base, len(s), sum(s)) for base, s in sizes.items()), key=lambda f: (-f.bytes, f.base))
    return LogfilesFacts(
        files=tuple(files),
        families=tuple(families),
        deleted_open=tuple(deleted),
        deleted_open_bytes=sum(max(d.size, 0) for d in deleted),
    )
