"""The IPv6 side of a guest network: the router's nftables IPv6 tables and radvd (its config and process).

On a network with IPv6, the VR filters IPv6 with nftables, not ip6tables: an isolated
network's router keeps table `ip6 ip6_firewall` (guest chains `fw_chain_ingress` and
`fw_chain_egress`), a VPC router table `ip6 ip6_acl` (per tier `<dev>_ingress_policy` and
`<dev>_egress_policy`), each with base chains hooked on input and forward; radvd advertises
the guest prefix from `/etc/radvd.conf` (`radvd.conf.tmpl`: one `interface` block with
`AdvSendAdvert on` and the network's `prefix`). The probe prints `nft -j list ruleset ip6`
with its exit status (a failed `nft` is unknown, never "no table"), radvd.conf with a `|`
in front of every line, and `pidof radvd` with its exit status.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any

from diagnostics.probes.base import (
    MAX_JSON_CHARS,
    MAX_LINE_CHARS,
    Facts,
    ParseError,
    Section,
    clean_line,
    small_count,
    split_sections,
)

RADVD_CONF = "/etc/radvd.conf"
COMMAND = (
    f"echo '==> nft <=='; out=$(nft -j list ruleset ip6 2>&1); status=$?; printf '%s\\n' \"$out\" | head -c {MAX_JSON_CHARS}; "
    "echo; echo '==> nft-status <=='; echo \"$status\"; "
    f"echo '==> {RADVD_CONF} <=='; head -c 65536 {RADVD_CONF} 2>&1 | sed 's/^/|/'; "
    "echo '==> radvd <=='; pids=$(pidof radvd); echo \"status $? pids $pids\""
)
SECTIONS = ("nft", "nft-status", RADVD_CONF, "radvd")
_PIDOF = re.compile(r"^status (?P<status>\d+) pids(?P<pids>( \d+)*)\s*$")
_TOKENS = re.compile(r"[{};]|[^\s{};]+")


@dataclass(frozen=True)
class NftChain(Facts):
    """One chain of an IPv6 table: a base chain has its hook and policy, a regular chain neither."""

    name: str
    hook: str
    policy: str
    rules: int


@dataclass(frozen=True)
class NftTable(Facts):
    """One nftables table of the ip6 family."""

    name: str
    chains: tuple[NftChain, ...]

    def chain(self, name: str) -> NftChain | None:
        """The chain of this name, if the table has it."""
        return next((c for c in self.chains if c.name == name), None)


@dataclass(frozen=True)
class RadvdInterface(Facts):
    """One `interface` block of radvd.conf: whether it advertises, and its prefixes."""

    name: str
    send_advert: bool
    prefixes: tuple[str, ...]


@dataclass(frozen=True)
class Ipv6Facts(Facts):
    """IPv6 tables (None when nft failed, with why), radvd.conf (None when absent) and radvd's process.

    radvd_running is None when `pidof` itself could not run.
    """

    tables: tuple[NftTable, ...] | None
    nft_error: str
    radvd_interfaces: tuple[RadvdInterface, ...] | None
    radvd_running: bool | None
    radvd_pids: tuple[int, ...]

    def table(self, name: str) -> NftTable | None:
        """The ip6 table of this name, if nft listed it."""
        return next((t for t in self.tables or () if t.name == name), None)

    def advertised_prefixes(self, interface: str) -> tuple[str, ...]:
        """The prefixes radvd.conf advertises on an interface (AdvSendAdvert on), canonical."""
        return tuple(
            prefix
            for block in self.radvd_interfaces or ()
            if block.name == interface and block.send_advert
            for prefix in block.prefixes
        )


def _nft(section: Section, status: str) -> tuple[tuple[NftTable, ...] | None, str]:
    if status != "0":
        return None, clean_line(" ".join(section.lines).strip(), 300) or f"nft exited {status or '?'}"
    text = section.text.strip()
    try:
        data = json.loads(text) if text else {"nftables": []}
    except (ValueError, RecursionError):
        raise ParseError("expected JSON from nft -j list ruleset ip6") from None
    items = data.get("nftables") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ParseError("expected an object with an 'nftables' list from nft -j")
    order: list[str] = []
    chains: dict[str, dict[str, dict[str, Any]]] = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        for kind in ("table", "chain", "rule"):
            body = item.get(kind)
            if not isinstance(body, dict) or body.get("family") != "ip6":
                continue
            table = clean_line(str(body.get("name" if kind == "table" else "table", "")), 200)
            if table not in chains:
                order.append(table)
                chains[table] = {}
            if kind == "chain":
                name = clean_line(str(body.get("name", "")), 200)
                chains[table].setdefault(name, {"rules": 0})
                chains[table][name].update(
                    hook=clean_line(str(body.get("hook", "")), 40), policy=clean_line(str(body.get("policy", "")), 40)
                )
            elif kind == "rule":
                name = clean_line(str(body.get("chain", "")), 200)
                chains[table].setdefault(name, {"rules": 0})["rules"] += 1
    tables = tuple(
        NftTable(
            name=table,
            chains=tuple(
                NftChain(name, str(info.get("hook", "")), str(info.get("policy", "")), int(info["rules"]))
                for name, info in chains[table].items()
            ),
        )
        for table in order
    )
    return tables, ""


def _canonical_prefix(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        return clean_line(value, 100)


def _radvd(section: Section) -> tuple[RadvdInterface, ...] | None:
    lines = []
    for line in section.lines:
        if not line.startswith("|"):
            raise ParseError(f"expected every line of {RADVD_CONF} to start with '|'")
        lines.append(line[1:].split("#", 1)[0])
    if Section(section.name, tuple(lines)).missing:
        return None
    tokens = _TOKENS.findall("\n".join(lines))
    blocks: list[RadvdInterface] = []
    depth = 0
    current: dict[str, Any] | None = None
    index = 0
    while index < len(tokens):
        token = tokens[index]
        following = tokens[index + 1] if index + 1 < len(tokens) else ""
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
            if depth == 0 and current is not None:
                blocks.append(RadvdInterface(current["name"], current["send"], tuple(current["prefixes"])))
                current = None
        elif depth == 0 and token == "interface" and following not in ("{", "}", ";", ""):
            current = {"name": clean_line(following, 40), "send": False, "prefixes": []}
            index += 1
        elif current is not None and depth == 1 and token == "AdvSendAdvert":
            current["send"] = following.lower() == "on"
            index += 1
        elif current is not None and depth == 1 and token == "prefix" and following not in ("{", "}", ";", ""):
            current["prefixes"].append(_canonical_prefix(following))
            index += 1
        index += 1
    return tuple(blocks)


def _pidof(section: Section) -> tuple[bool | None, tuple[int, ...]]:
    match = _PIDOF.match(section.text.strip())
    if match is None:
        raise ParseError("expected 'status N pids ...' after pidof radvd")
    pids = tuple(pid for pid in (small_count(word) for word in match["pids"].split()) if pid is not None)
    if match["status"] == "0":
        return True, pids
    # pidof exits 1 when no process has the name; anything else (127: no pidof) tells nothing.
    return (False, ()) if match["status"] == "1" else (None, ())


def parse(text: str) -> Ipv6Facts:
    """The four sections: nft's JSON and exit status, radvd.conf, and radvd's pids."""
    sections = split_sections(text, expected=SECTIONS, line_limit=max(MAX_JSON_CHARS, MAX_LINE_CHARS + 1))
    tables, error = _nft(sections["nft"], sections["nft-status"].text.strip())
    running, pids = _pidof(sections["radvd"])
    return Ipv6Facts(
        tables=tables,
        nft_error=error,
        radvd_interfaces=_radvd(sections[RADVD_CONF]),
        radvd_running=running,
        radvd_pids=pids,
    )
