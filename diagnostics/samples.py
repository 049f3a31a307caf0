"""What a collection's facts give as numbers for the history: one HealthSample's fields.

Pure functions over the stored facts (JSON, keyed by probe name). Absolute numbers come from
one collection; rates (interface bits and errors per second, softnet drops per second) need
the counters of the previous successful collection and the seconds between the two: a
counter that went back (a reboot, a recreated router) or a first collection gives no rate,
never a made-up zero. A probe that failed leaves its numbers null.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from diagnostics.series import MAX_KEYS

# Rates over a longer gap than this say little about any moment: left out.
MAX_RATE_INTERVAL_S = 6 * 3600


def _number(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def lookup(facts: Mapping[str, Any], probe: str, *paths: str) -> float | None:
    """The first numeric value found at one of the dotted paths of a probe's facts."""
    data = facts.get(probe)
    for path in paths:
        value: Any = data
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if _number(value) is not None:
            return value
    return None


def _rule_count(facts: Mapping[str, Any], probe: str) -> int | None:
    rules = (facts.get(probe) or {}).get("rules")
    return len(rules) if isinstance(rules, list) else None


def _cpu_busy_percent(facts: Mapping[str, Any]) -> float | None:
    idle = lookup(facts, "cpu", "total.idle")
    # No ticks between the two samples means no measurement, not a fully busy CPU.
    if idle is None or not lookup(facts, "cpu", "total.interval_ticks"):
        return None
    return round(100.0 - idle, 2)


def _filesystems(facts: Mapping[str, Any]) -> list[dict[str, Any]]:
    filesystems = (facts.get("disk") or {}).get("filesystems")
    return [f for f in filesystems if isinstance(f, dict)] if isinstance(filesystems, list) else []


def _filesystem_value(facts: Mapping[str, Any], path: str, key: str) -> float | None:
    for filesystem in _filesystems(facts):
        if filesystem.get("path") == path:
            return _number(filesystem.get(key))
    return None


def _lease_count(facts: Mapping[str, Any]) -> int | None:
    leases = (facts.get("dnsmasq") or {}).get("leases")
    return len(leases) if isinstance(leases, list) else None


def _interface_networks(facts: Mapping[str, Any]) -> list[ipaddress.IPv4Network]:
    networks = []
    for interface in (facts.get("interfaces") or {}).get("interfaces") or []:
        for address in (interface.get("addresses") if isinstance(interface, dict) else None) or []:
            if not isinstance(address, dict) or address.get("family") != "inet":
                continue
            try:
                networks.append(ipaddress.IPv4Interface(f"{address['address']}/{address['prefixlen']}").network)
            except (KeyError, ValueError):
                continue
    return networks


def dhcp_range_size(facts: Mapping[str, Any]) -> int | None:
    """Addresses the DHCP ranges of cloud.conf can hand out.

    CloudStack writes `dhcp-range=set:<tag>,<gateway>,static` (CLOUDSTACK.md §3.6): the range
    is the whole guest subnet, so its size is the subnet's usable addresses less the
    router's own. A range with an end address counts start to end. None when dnsmasq or the
    interfaces were not read, or no range matches a subnet of the router.
    """
    dnsmasq = facts.get("dnsmasq")
    if not isinstance(dnsmasq, dict) or not isinstance(dnsmasq.get("ranges"), list):
        return None
    networks = _interface_networks(facts)
    total, counted = 0, set()
    for dhcp_range in dnsmasq["ranges"]:
        if not isinstance(dhcp_range, dict):
            continue
        try:
            start = ipaddress.IPv4Address(dhcp_range.get("start", ""))
            end = ipaddress.IPv4Address(dhcp_range["end"]) if dhcp_range.get("end") else None
        except ValueError:
            continue
        if end is not None:
            total += max(int(end) - int(start) + 1, 0)
            continue
        network = next((n for n in networks if start in n), None)
        if network is None or network in counted:
            continue
        counted.add(network)
        usable = network.num_addresses - 2 if network.prefixlen < 31 else network.num_addresses
        total += max(usable - 1, 0)
    return total if total or counted else None


def _per_cpu(facts: Mapping[str, Any], previous: Mapping[str, Any] | None, seconds: float | None) -> dict[str, list]:
    per_cpu: dict[str, list] = {}
    cpu = facts.get("cpu") or {}
    for split in cpu.get("per_cpu") or []:
        if isinstance(split, dict) and isinstance(split.get("cpu"), str) and _number(split.get("interval_ticks")):
            per_cpu[split["cpu"]] = [_number(split.get("softirq")), None]
    drops_now = _softnet_drops(facts)
    drops_before = _softnet_drops(previous) if previous is not None else {}
    for name, dropped in drops_now.items():
        rate = _rate(dropped, drops_before.get(name), seconds)
        per_cpu.setdefault(name, [None, None])[1] = rate
    return dict(sorted(per_cpu.items(), key=lambda item: _natural(item[0]))[:MAX_KEYS])


def _natural(name: str) -> tuple[str, int]:
    digits = "".join(ch for ch in name if ch.isdigit())
    return (name.rstrip("0123456789"), int(digits) if digits else -1)


def _softnet_drops(facts: Mapping[str, Any] | None) -> dict[str, int]:
    rows = ((facts or {}).get("softnet") or {}).get("cpus") or []
    return {
        f"cpu{row['cpu']}": row["dropped"]
        for row in rows
        if isinstance(row, dict) and isinstance(row.get("cpu"), int) and isinstance(row.get("dropped"), int)
    }


def _rate(now: float | None, before: float | None, seconds: float | None) -> float | None:
    if now is None or before is None or not seconds or seconds <= 0 or seconds > MAX_RATE_INTERVAL_S:
        return None
    if now < before:  # reset by a reboot or a recreated interface
        return None
    return round((now - before) / seconds, 3)


def _interface_counters(facts: Mapping[str, Any] | None) -> dict[str, dict[str, int]]:
    counters = {}
    for interface in ((facts or {}).get("interfaces") or {}).get("interfaces") or []:
        if isinstance(interface, dict) and isinstance(interface.get("name"), str) and interface["name"] != "lo":
            counters[interface["name"]] = interface
    return counters


def _per_nic(facts: Mapping[str, Any], previous: Mapping[str, Any] | None, seconds: float | None) -> dict[str, list]:
    now, before = _interface_counters(facts), _interface_counters(previous)
    per_nic: dict[str, list] = {}
    for name, counters in now.items():
        old = before.get(name, {})

        def rate(key: str, factor: float = 1.0, counters: dict = counters, old: dict = old) -> float | None:
            value = _rate(_number(counters.get(key)), _number(old.get(key)), seconds)
            return round(value * factor, 1) if value is not None else None

        per_nic[name] = [
            rate("rx_bytes", 8.0),
            rate("tx_bytes", 8.0),
            rate("rx_errors"),
            rate("tx_errors"),
            rate("rx_dropped"),
            rate("tx_dropped"),
        ]
    return dict(sorted(per_nic.items(), key=lambda item: _natural(item[0]))[:MAX_KEYS])


def health_numbers(
    facts: Mapping[str, Any], previous: Mapping[str, Any] | None = None, seconds: float | None = None
) -> dict[str, Any]:
    """HealthSample fields from the facts by probe name; rates against `previous` facts taken `seconds` earlier."""
    per_cpu = _per_cpu(facts, previous, seconds)
    softnet_rates = [values[1] for values in per_cpu.values() if values[1] is not None]
    return {
        "conntrack_count": lookup(facts, "conntrack", "count"),
        "conntrack_max": lookup(facts, "conntrack", "max"),
        "conntrack_percent": lookup(facts, "conntrack", "used_percent"),
        "softirq_percent": lookup(facts, "cpu", "total.softirq"),
        "cpu_percent": _cpu_busy_percent(facts),
        "memory_percent": lookup(facts, "system", "mem_used_percent"),
        "disk_root_percent": _filesystem_value(facts, "/", "used_percent"),
        "disk_log_percent": _filesystem_value(facts, "/var/log", "used_percent"),
        "inode_root_percent": _filesystem_value(facts, "/", "inodes_used_percent"),
        "inode_log_percent": _filesystem_value(facts, "/var/log", "inodes_used_percent"),
        "dhcp_leases": _lease_count(facts),
        "dhcp_range_size": dhcp_range_size(facts),
        "filter_rules": _rule_count(facts, "iptables_filter"),
        "nat_rules": _rule_count(facts, "iptables_nat"),
        "mangle_rules": _rule_count(facts, "iptables_mangle"),
        "load1": lookup(facts, "system", "load1"),
        "softnet_drops_ps": round(sum(softnet_rates), 3) if softnet_rates else None,
        "per_cpu": per_cpu,
        "per_nic": _per_nic(facts, previous, seconds),
    }
