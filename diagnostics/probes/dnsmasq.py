"""dnsmasq's DHCP state and configuration: leases, static hosts, options, dnsmasq.conf and cloud.conf.

The failures this serves (CLOUDSTACK.md §5.7–5.9): a stale lease holding a VM's address
under another MAC ("not using configured address ... leased to"), ranges in cloud.conf
without their `dhcp-option` tags, and `dhcp-lease-max` reached.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass

from diagnostics.probes.base import Facts, Section, small_count, split_sections

LEASES = "/var/lib/misc/dnsmasq.leases"
DHCPHOSTS = "/etc/dhcphosts.txt"
DHCPOPTS = "/etc/dhcpopts.txt"
DNSMASQ_CONF = "/etc/dnsmasq.conf"
CLOUD_CONF = "/etc/dnsmasq.d/cloud.conf"
FILES = (LEASES, DHCPHOSTS, DHCPOPTS, DNSMASQ_CONF, CLOUD_CONF)
COMMAND = f'for f in {" ".join(FILES)}; do echo "==> $f <=="; head -n 5000 "$f" 2>&1; done'


@dataclass(frozen=True)
class Lease(Facts):
    """A dnsmasq.leases line; expiry 0 means infinite (how CloudStack pre-seeds leases)."""

    expiry: int
    mac: str
    ip: str
    hostname: str
    client_id: str


@dataclass(frozen=True)
class DhcpHost(Facts):
    """A dhcphosts.txt line `mac[,set:tag],ip,hostname,lease`."""

    mac: str
    tag: str
    ip: str
    hostname: str
    lease_time: str


@dataclass(frozen=True)
class DhcpOption(Facts):
    """A `tag,option[,value]` entry of dhcpopts.txt or a `dhcp-option=` of cloud.conf."""

    tag: str
    option: str
    value: str


@dataclass(frozen=True)
class DhcpRange(Facts):
    """A `dhcp-range=set:<tag>,<start>[,<end>],<mode>` of cloud.conf."""

    tag: str
    start: str
    end: str
    mode: str


@dataclass(frozen=True)
class ConfOption(Facts):
    """A `key[=value]` line of dnsmasq.conf or cloud.conf."""

    key: str
    value: str


@dataclass(frozen=True)
class StaleLease(Facts):
    """A lease for an address that dhcphosts.txt gives to another MAC."""

    ip: str
    lease_mac: str
    host_mac: str
    hostname: str


@dataclass(frozen=True)
class DnsmasqFacts(Facts):
    """What the five files say; `missing` names the files that do not exist."""

    leases: tuple[Lease, ...]
    hosts: tuple[DhcpHost, ...]
    options: tuple[DhcpOption, ...]
    conf: tuple[ConfOption, ...]
    cloud_conf: tuple[ConfOption, ...]
    ranges: tuple[DhcpRange, ...]
    range_options: tuple[DhcpOption, ...]
    dhcp_lease_max: int | None
    stale_leases: tuple[StaleLease, ...]
    duplicate_host_ips: tuple[str, ...]
    unparsed_lines: int
    missing: tuple[str, ...]


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _content(section: Section) -> list[str]:
    if section.missing:
        return []
    return [line.strip() for line in section.lines if line.strip() and not line.strip().startswith("#")]


def _leases(lines: list[str]) -> tuple[list[Lease], int]:
    leases, bad = [], 0
    for line in lines:
        words = line.split()
        expiry = small_count(words[0]) if words else None
        if len(words) < 4 or expiry is None or not _is_ip(words[2]):
            bad += 1
            continue
        leases.append(Lease(expiry, words[1].lower(), words[2], words[3], words[4] if len(words) > 4 else ""))
    return leases, bad


def _hosts(lines: list[str]) -> tuple[list[DhcpHost], int]:
    hosts, bad = [], 0
    for line in lines:
        parts = [p.strip() for p in line.split(",")]
        tag = next((p[4:] for p in parts if p.startswith("set:")), "")
        ip_index = next((i for i, p in enumerate(parts) if _is_ip(p)), None)
        if ip_index is None or ip_index == 0:
            bad += 1
            continue
        rest = parts[ip_index + 1 :]
        hostname = rest[0] if rest and rest[0] != "infinite" else ""
        lease = rest[-1] if rest and (rest[-1] == "infinite" or small_count(rest[-1].rstrip("hms")) is not None) else ""
        hosts.append(DhcpHost(parts[0].lower(), tag, parts[ip_index], hostname, lease))
    return hosts, bad


def _option(value: str, tag_prefix: str) -> DhcpOption | None:
    parts = value.split(",", 2)
    if len(parts) < 2:
        return None
    tag = parts[0].removeprefix(tag_prefix)
    return DhcpOption(tag, parts[1].strip(), parts[2].strip() if len(parts) > 2 else "")


def _conf(lines: list[str]) -> list[ConfOption]:
    options = []
    for line in lines:
        key, _, value = line.partition("=")
        options.append(ConfOption(key.strip(), value.strip()))
    return options


def _range(value: str) -> DhcpRange | None:
    parts = [p.strip() for p in value.split(",")]
    tag = parts.pop(0)[4:] if parts and parts[0].startswith("set:") else ""
    if not parts or not _is_ip(parts[0]):
        return None
    end = parts[1] if len(parts) > 1 and _is_ip(parts[1]) else ""
    mode = parts[-1] if len(parts) > 1 and not _is_ip(parts[-1]) else ""
    return DhcpRange(tag, parts[0], end, mode)


def _stale(leases: list[Lease], hosts: list[DhcpHost]) -> tuple[StaleLease, ...]:
    by_ip = {h.ip: h for h in hosts}
    return tuple(
        StaleLease(lease.ip, lease.mac, by_ip[lease.ip].mac, by_ip[lease.ip].hostname)
        for lease in leases
        if lease.ip in by_ip and by_ip[lease.ip].mac != lease.mac
    )


def parse(text: str) -> DnsmasqFacts:
    """The five file sections; unparseable lines are counted, not fatal (the files are hand-editable)."""
    sections = split_sections(text, expected=FILES)
    leases, bad_leases = _leases(_content(sections[LEASES]))
    hosts, bad_hosts = _hosts(_content(sections[DHCPHOSTS]))
    options = [o for o in (_option(line, "") for line in _content(sections[DHCPOPTS])) if o]
    bad_options = len(_content(sections[DHCPOPTS])) - len(options)
    conf = _conf(_content(sections[DNSMASQ_CONF]))
    cloud_conf = _conf(_content(sections[CLOUD_CONF]))
    ranges = [r for r in (_range(o.value) for o in cloud_conf if o.key == "dhcp-range") if r]
    range_options = [o for o in (_option(c.value, "tag:") for c in cloud_conf if c.key == "dhcp-option") if o]
    lease_max_values = [o.value for o in conf + cloud_conf if o.key == "dhcp-lease-max"]
    # dnsmasq uses the last value given; a non-number there would stop dnsmasq, so report none.
    lease_max = small_count(lease_max_values[-1]) if lease_max_values else None
    host_ip_counts = Counter(h.ip for h in hosts)
    return DnsmasqFacts(
        leases=tuple(leases),
        hosts=tuple(hosts),
        options=tuple(options),
        conf=tuple(conf),
        cloud_conf=tuple(cloud_conf),
        ranges=tuple(ranges),
        range_options=tuple(range_options),
        dhcp_lease_max=lease_max,
        stale_leases=_stale(leases, hosts),
        duplicate_host_ips=tuple(sorted(ip for ip, n in host_ip_counts.items() if n > 1)),
        unparsed_lines=bad_leases + bad_hosts + bad_options,
        missing=tuple(name for name in FILES if sections[name].missing),
    )
