"""What CloudStack told the router about its VMs (the dhcpentry databag) and the router's /etc/hosts.

`vm_dhcp_entry.json` pushes land in `/etc/cloudstack/dhcpentry.json` (merge.py's databag,
pretty JSON keyed by the VM's IPv4 address: `mac_address`, `ipv4_address`, `host_name`,
`remove`, ...). CsDhcp turns it into /etc/dhcphosts.txt and /etc/hosts, so the databag is
the intent those files are checked against. Both files are printed with a `|` in front of
every line, so nothing inside them can pass for a section marker.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

from diagnostics.probes.base import MAX_LINE_CHARS, Facts, ParseError, Section, split_sections

DATABAG = "/etc/cloudstack/dhcpentry.json"
HOSTS = "/etc/hosts"
FILES = (DATABAG, HOSTS)
MAX_BYTES_PER_FILE = 1024 * 1024
COMMAND = (
    f'for f in {" ".join(FILES)}; do echo "==> $f <=="; head -c {MAX_BYTES_PER_FILE} "$f" 2>&1 | sed \'s/^/|/\'; done'
)


@dataclass(frozen=True)
class IntendedHost(Facts):
    """One databag entry: the VM CloudStack wants served (`remove` True: being taken out)."""

    mac: str
    ip: str
    hostname: str
    remove: bool


@dataclass(frozen=True)
class HostsEntry(Facts):
    """One /etc/hosts line: an address and its names."""

    ip: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class DhcpIntentFacts(Facts):
    """The databag (None when missing or unreadable, with why) and /etc/hosts."""

    intended: tuple[IntendedHost, ...] | None
    databag_error: str
    hosts: tuple[HostsEntry, ...]
    hosts_missing: bool

    def served(self) -> tuple[IntendedHost, ...]:
        """The entries CloudStack wants present (not being removed, with an IPv4 address)."""
        return tuple(h for h in self.intended or () if not h.remove and h.ip)


def _lines(section: Section) -> list[str]:
    lines = []
    for line in section.lines:
        if not line.startswith("|"):
            raise ParseError(f"expected every line of {section.name} to start with '|'")
        lines.append(line[1:])
    return lines


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _databag(section: Section) -> tuple[tuple[IntendedHost, ...] | None, str]:
    text = "\n".join(_lines(section))
    if Section(section.name, tuple(_lines(section))).missing:
        return None, f"{DATABAG}: No such file or directory"
    try:
        bag = json.loads(text)
    except ValueError as error:
        return None, f"{DATABAG} is not JSON: {error}"[:300]
    if not isinstance(bag, dict):
        return None, f"{DATABAG} is not a JSON object"
    hosts = []
    for key, entry in sorted(bag.items()):
        if key == "id" or not isinstance(entry, dict):
            continue
        ip = str(entry.get("ipv4_address") or "")
        hosts.append(
            IntendedHost(
                mac=str(entry.get("mac_address") or "").lower(),
                ip=ip if _is_ip(ip) else "",
                hostname=str(entry.get("host_name") or ""),
                remove=bool(entry.get("remove")),
            )
        )
    return tuple(hosts), ""


def _hosts(section: Section) -> tuple[tuple[HostsEntry, ...], bool]:
    lines = _lines(section)
    if Section(section.name, tuple(lines)).missing:
        return (), True
    entries = []
    for line in lines:
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and _is_ip(words[0]):
            entries.append(HostsEntry(words[0], tuple(words[1:])))
    return tuple(entries), False


def parse(text: str) -> DhcpIntentFacts:
    """The two file sections; a databag that is missing or not JSON is reported, not fatal."""
    sections = split_sections(text, expected=FILES, line_limit=MAX_LINE_CHARS + 1)
    intended, error = _databag(sections[DATABAG])
    hosts, hosts_missing = _hosts(sections[HOSTS])
    return DhcpIntentFacts(intended=intended, databag_error=error, hosts=hosts, hosts_missing=hosts_missing)
