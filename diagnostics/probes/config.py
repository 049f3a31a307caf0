"""Raw configuration files to snapshot and diff: dnsmasq.conf, cloud.conf, haproxy.cfg, keepalived.conf.

The text is normalised (line ends, trailing blanks, control characters) so that two
snapshots differ only when the configuration does, and secrets are redacted before
anything is stored: keepalived's `auth_pass` is the first characters of the router
password, haproxy may hold `stats auth` and userlist passwords. The sha256 is of the
redacted text. Each line is printed with a `|` in front so that no line can pass for a
section marker.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from diagnostics.probes.base import MAX_LINE_CHARS, Facts, ParseError, Section, split_sections

FILES = (
    "/etc/dnsmasq.conf",
    "/etc/dnsmasq.d/cloud.conf",
    "/etc/haproxy/haproxy.cfg",
    "/etc/keepalived/keepalived.conf",
)
MAX_BYTES_PER_FILE = 256 * 1024
COMMAND = (
    f'for f in {" ".join(FILES)}; do echo "==> $f <=="; head -c {MAX_BYTES_PER_FILE} "$f" 2>&1 | sed \'s/^/|/\'; done'
)
REDACTED = "<redacted>"
_SECRETS = (
    re.compile(r"^(?P<keep>\s*auth_pass\s+)\S.*$"),
    re.compile(r"^(?P<keep>\s*stats\s+auth\s+)\S.*$"),
    re.compile(r"^(?P<keep>\s*user\s+\S+\s+(?:insecure-)?password\s+)\S.*$"),
)


@dataclass(frozen=True)
class ConfigFile(Facts):
    """One file's normalised, redacted text and its hash; missing files have empty text and hash."""

    path: str
    missing: bool
    text: str
    sha256: str
    lines: int


@dataclass(frozen=True)
class ConfigFacts(Facts):
    """One entry per file in FILES."""

    files: tuple[ConfigFile, ...]

    def file(self, path: str) -> ConfigFile | None:
        """One of FILES."""
        return next((f for f in self.files if f.path == path), None)


def redact(line: str) -> str:
    """The line with a password value replaced by REDACTED."""
    for pattern in _SECRETS:
        match = pattern.match(line)
        if match:
            return match["keep"] + REDACTED
    return line


def redact_output(text: str) -> str:
    """The raw command output with every secret line redacted (lines keep their `|` prefix)."""
    return "\n".join("|" + redact(line[1:]) if line.startswith("|") else line for line in text.split("\n"))


def _file(section: Section) -> ConfigFile:
    lines = []
    for line in section.lines:
        if not line.startswith("|"):
            raise ParseError(f"expected every line of {section.name} to start with '|'")
        lines.append(line[1:])
    if Section(section.name, tuple(lines)).missing:
        return ConfigFile(section.name, True, "", "", 0)
    normalised = [redact(line.rstrip()) for line in lines]
    while normalised and not normalised[-1]:
        normalised.pop()
    text = "\n".join(normalised) + "\n" if normalised else ""
    return ConfigFile(section.name, False, text, hashlib.sha256(text.encode()).hexdigest(), len(normalised))


def parse(text: str) -> ConfigFacts:
    """One section per file of FILES."""
    # The `|` prefix is not part of the line, so the cap leaves room for it.
    sections = split_sections(text, expected=FILES, line_limit=MAX_LINE_CHARS + 1)
    return ConfigFacts(files=tuple(_file(sections[path]) for path in FILES))
