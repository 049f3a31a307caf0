"""Interfaces of the router: `ip -j addr` and `ip -j -s link` as one typed list.

The facts answer "is ethN up, with which addresses, MTU and error counters": the control
NIC, the public NIC that a BACKUP brings down, guest gateways and VIPs, MTU mismatches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diagnostics.probes.base import (
    MAX_JSON_CHARS,
    Facts,
    ParseError,
    int_field,
    parse_json_objects,
    split_sections,
    text_field,
)

COMMAND = (
    "echo '==> addr <=='; ip -j addr show | head -c 4194304; echo; "
    "echo '==> link <=='; ip -j -s link show | head -c 4194304; echo"
)


@dataclass(frozen=True)
class Address(Facts):
    """One address on an interface."""

    family: str
    address: str
    prefixlen: int
    scope: str
    secondary: bool


@dataclass(frozen=True)
class Interface(Facts):
    """One interface with its state, addresses and counters."""

    name: str
    mtu: int
    operstate: str
    admin_up: bool
    carrier: bool
    mac: str
    master: str
    addresses: tuple[Address, ...]
    rx_bytes: int
    rx_packets: int
    rx_errors: int
    rx_dropped: int
    tx_bytes: int
    tx_packets: int
    tx_errors: int
    tx_dropped: int

    @property
    def ipv4(self) -> tuple[Address, ...]:
        """The IPv4 addresses only."""
        return tuple(a for a in self.addresses if a.family == "inet")


@dataclass(frozen=True)
class InterfacesFacts(Facts):
    """All interfaces, in kernel index order."""

    interfaces: tuple[Interface, ...]

    def get(self, name: str) -> Interface | None:
        """The interface called `name`, if present."""
        return next((i for i in self.interfaces if i.name == name), None)


def _addresses(entry: dict[str, Any]) -> tuple[Address, ...]:
    infos = entry.get("addr_info", [])
    if not isinstance(infos, list):
        raise ParseError("expected addr_info to be a list in ip -j addr output")
    return tuple(
        Address(
            family=text_field(info, "family"),
            address=text_field(info, "local"),
            prefixlen=int_field(info, "prefixlen"),
            scope=text_field(info, "scope"),
            secondary=info.get("secondary") is True,
        )
        for info in infos
        if isinstance(info, dict) and "local" in info
    )


def _stats(entry: dict[str, Any], direction: str) -> dict[str, int]:
    stats = entry.get("stats64") or entry.get("stats") or {}
    counters = stats.get(direction, {}) if isinstance(stats, dict) else {}
    if not isinstance(counters, dict):
        counters = {}
    return {key: int_field(counters, key) for key in ("bytes", "packets", "errors", "dropped")}


def parse(text: str) -> InterfacesFacts:
    """Interfaces from the addr and link JSON; the link section adds the counters."""
    sections = split_sections(text, expected=("addr", "link"), line_limit=MAX_JSON_CHARS)
    addr = parse_json_objects(sections["addr"].text, "ip -j addr show")
    link = {text_field(e, "ifname"): e for e in parse_json_objects(sections["link"].text, "ip -j -s link show")}
    interfaces = []
    for entry in addr:
        name = text_field(entry, "ifname")
        if not name:
            raise ParseError("expected every ip -j addr entry to have an ifname")
        flags = entry.get("flags", [])
        flags = flags if isinstance(flags, list) else []
        rx = _stats(link.get(name, {}), "rx")
        tx = _stats(link.get(name, {}), "tx")
        interfaces.append(
            Interface(
                name=name,
                mtu=int_field(entry, "mtu"),
                operstate=text_field(entry, "operstate", "UNKNOWN"),
                admin_up="UP" in flags,
                carrier="LOWER_UP" in flags,
                mac=text_field(entry, "address"),
                master=text_field(entry, "master"),
                addresses=_addresses(entry),
                rx_bytes=rx["bytes"],
                rx_packets=rx["packets"],
                rx_errors=rx["errors"],
                rx_dropped=rx["dropped"],
                tx_bytes=tx["bytes"],
                tx_packets=tx["packets"],
                tx_errors=tx["errors"],
                tx_dropped=tx["dropped"],
            )
        )
    return InterfacesFacts(interfaces=tuple(interfaces))
