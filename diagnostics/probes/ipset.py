"""The kernel's IP sets (`ipset save`) and the firewall-rules databag they are built from.

On an isolated network's router, configure.py (CsAcl.AclIP) turns each egress firewall rule
into two `hash:net` sets, `sourceCidrIpset-<rule id>` and `destCidrIpset-<rule id>`, fills
them from the rule's `source_cidr_list` and `dest_cidr_list` (0.0.0.0/0 left out), and
matches them from FW_EGRESS_RULES with `-m set --match-set <set> src|dst`. The databag
`/etc/cloudstack/firewallrules.json` (merge.py, keyed by rule id) is what the sets must hold.
`ipset save` prints `create <set> <type> <options>` then one `add <set> <member>` per member;
its exit status is printed too, so a missing tool or a refused call reads as unknown, never
as "no sets". The databag is printed with a `|` in front of every line.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

from diagnostics.probes.base import MAX_LINE_CHARS, Facts, ParseError, Section, clean_line, split_sections

DATABAG = "/etc/cloudstack/firewallrules.json"
MAX_LINES = 20000
MAX_DATABAG_BYTES = 1024 * 1024
COMMAND = (
    f"echo '==> ipset <=='; out=$(ipset save 2>&1); status=$?; printf '%s\\n' \"$out\" | head -n {MAX_LINES}; "
    "echo '==> status <=='; echo \"$status\"; "
    f"echo '==> {DATABAG} <=='; head -c {MAX_DATABAG_BYTES} {DATABAG} 2>&1 | sed 's/^/|/'"
)
SECTIONS = ("ipset", "status", DATABAG)


@dataclass(frozen=True)
class IpSet(Facts):
    """One set: its name, type (`hash:net`, ...) and members as printed."""

    name: str
    kind: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class EgressIntent(Facts):
    """One egress rule of the databag: the CIDRs its source and destination sets must hold."""

    rule_id: str
    protocol: str
    source_cidrs: tuple[str, ...]
    dest_cidrs: tuple[str, ...]


@dataclass(frozen=True)
class IpsetFacts(Facts):
    """The sets (None when `ipset save` failed, with its output as the error) and the egress rules of the databag."""

    sets: tuple[IpSet, ...] | None
    error: str
    egress: tuple[EgressIntent, ...] | None
    databag_error: str

    def named(self, name: str) -> IpSet | None:
        """The set of this name, if the kernel has it."""
        return next((s for s in self.sets or () if s.name == name), None)


def normalise_member(member: str) -> str:
    """A set member or CIDR as one canonical network (`10.1.0.5` and `10.1.0.5/32` are one member)."""
    try:
        return str(ipaddress.ip_network(member, strict=False))
    except ValueError:
        return member


def _sets(section: Section, status: str) -> tuple[tuple[IpSet, ...] | None, str]:
    if status != "0":
        return None, clean_line(" ".join(section.lines).strip(), 300) or f"ipset save exited {status or '?'}"
    order: list[str] = []
    kinds: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    for line in section.lines:
        words = line.split()
        if not words:
            continue
        if words[0] == "create" and len(words) >= 3:
            order.append(words[1])
            kinds[words[1]] = words[2]
            members.setdefault(words[1], [])
        elif words[0] == "add" and len(words) >= 3 and words[1] in kinds:
            members[words[1]].append(words[2])
        else:
            raise ParseError(f"expected 'create' or 'add' lines from ipset save, got {line[:80]!r}")
    return tuple(IpSet(name, kinds[name], tuple(members[name])) for name in order), ""


def _cidrs(value: object) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else []
    return tuple(str(item).strip() for item in items if str(item).strip())


def _databag(section: Section) -> tuple[tuple[EgressIntent, ...] | None, str]:
    lines = []
    for line in section.lines:
        if not line.startswith("|"):
            raise ParseError(f"expected every line of {DATABAG} to start with '|'")
        lines.append(line[1:])
    if Section(section.name, tuple(lines)).missing:
        return None, f"{DATABAG}: No such file or directory"
    try:
        bag = json.loads("\n".join(lines))
    except (ValueError, RecursionError):
        return None, f"{DATABAG} is not JSON"
    if not isinstance(bag, dict):
        return None, f"{DATABAG} is not a JSON object"
    rules = []
    for key, rule in sorted(bag.items()):
        if key == "id" or not isinstance(rule, dict) or str(rule.get("traffic_type", "")).lower() != "egress":
            continue
        rules.append(
            EgressIntent(
                rule_id=clean_line(str(rule.get("id", key)), 40),
                protocol=clean_line(str(rule.get("protocol", "")), 20),
                source_cidrs=_cidrs(rule.get("source_cidr_list")),
                dest_cidrs=_cidrs(rule.get("dest_cidr_list")),
            )
        )
    return tuple(rules), ""


def parse(text: str) -> IpsetFacts:
    """The three sections: the sets, `ipset save`'s exit status, the databag."""
    sections = split_sections(text, expected=SECTIONS, line_limit=MAX_LINE_CHARS + 1)
    status = sections["status"].text.strip()
    sets, error = _sets(sections["ipset"], status)
    egress, databag_error = _databag(sections[DATABAG])
    return IpsetFacts(sets=sets, error=error, egress=egress, databag_error=databag_error)
