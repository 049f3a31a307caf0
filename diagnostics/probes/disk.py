"""Space and inode use of the filesystems holding /, /var, /var/log and /ramdisk (`df -P`, `df -Pi`).

A full root from rotated-but-open haproxy logs and inode exhaustion from
`/var/cache/cloud/processed` are both recurring VR failures (CLOUDSTACK.md §5.4–5.6);
older templates have a separate small /var. /ramdisk is the tmpfs a redundant router keeps
keepalived's heartbeat scripts and state in (CsRedundant): missing or full, the heartbeat fails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from diagnostics.probes.base import Facts, ParseError, parse_int, split_sections

PATHS = ("/", "/var", "/var/log", "/ramdisk")
COMMAND = (
    'for p in / /var /var/log /ramdisk; do echo "==> $p <=="; '
    'df -P "$p" 2>/dev/null | tail -n +2; df -Pi "$p" 2>/dev/null | tail -n +2; done'
)

_DF_LINE = re.compile(
    r"^(?P<fs>.+?)\s+(?P<total>\d+|-)\s+(?P<used>\d+|-)\s+(?P<free>\d+|-)\s+(?P<percent>\d+%|-)\s+(?P<mount>/.*)$"
)


@dataclass(frozen=True)
class Filesystem(Facts):
    """The filesystem holding `path`: sizes in 1024-byte blocks, inode counts, percents as df rounds them.

    df prints `-` for inode figures of filesystems without inodes; those are 0 here.
    """

    path: str
    filesystem: str
    mount: str
    size_kb: int
    used_kb: int
    available_kb: int
    used_percent: int
    inodes: int
    inodes_used: int
    inodes_free: int
    inodes_used_percent: int


@dataclass(frozen=True)
class DiskFacts(Facts):
    """One entry per path that exists; `missing` lists paths df could not stat."""

    filesystems: tuple[Filesystem, ...]
    missing: tuple[str, ...]

    def for_path(self, path: str) -> Filesystem | None:
        """The filesystem holding one of PATHS."""
        return next((f for f in self.filesystems if f.path == path), None)


def _number(value: str) -> int:
    return 0 if value == "-" else parse_int(value.rstrip("%"), "df figure")


def parse(text: str) -> DiskFacts:
    """Per path: the df -P line then the df -Pi line."""
    sections = split_sections(text, expected=PATHS)
    filesystems, missing = [], []
    for path in PATHS:
        lines = [line for line in sections[path].lines if line.strip()]
        if not lines:
            missing.append(path)
            continue
        if len(lines) != 2:
            raise ParseError(f"expected a df -P and a df -Pi line for {path}, got {len(lines)} lines")
        space, inodes = _DF_LINE.match(lines[0]), _DF_LINE.match(lines[1])
        if not space or not inodes:
            raise ParseError(f"expected 'fs total used free percent mount' from df for {path}")
        filesystems.append(
            Filesystem(
                path=path,
                filesystem=space["fs"],
                mount=space["mount"],
                size_kb=_number(space["total"]),
                used_kb=_number(space["used"]),
                available_kb=_number(space["free"]),
                used_percent=_number(space["percent"]),
                inodes=_number(inodes["total"]),
                inodes_used=_number(inodes["used"]),
                inodes_free=_number(inodes["free"]),
                inodes_used_percent=_number(inodes["percent"]),
            )
        )
    return DiskFacts(filesystems=tuple(filesystems), missing=tuple(missing))
