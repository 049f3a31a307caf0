"""One netfilter table as `iptables-save -t <table>` prints it: chains, policies and rules.

A VR's filter, nat and mangle tables are three probes sharing this parser (the firewall of
isolated networks and the VPC egress ACL live in mangle, source NAT in nat). Rules keep
their full text for snapshots and diffs, plus the fields the matrix asks about (chain,
target, interfaces, addresses, SNAT/DNAT targets). The normalised text drops the
`# Generated`/`# Completed` comments and zeroes counters so two snapshots differ only when
the rules do.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from dataclasses import dataclass

from diagnostics.probes.base import Facts, ParseError, clean_lines, parse_int

TABLES = ("filter", "nat", "mangle")
MAX_OUTPUT_BYTES = 4 * 1024 * 1024


def command_for(table: str) -> str:
    """The constant command for one of TABLES, bounded in size."""
    if table not in TABLES:
        raise ValueError(f"not a table this console reads: {table!r}")
    return f"iptables-save -t {table} | head -c {MAX_OUTPUT_BYTES}"


@dataclass(frozen=True)
class Chain(Facts):
    """A chain header line `:NAME POLICY [packets:bytes]`; user chains have policy `-`."""

    name: str
    policy: str
    packets: int
    bytes: int


@dataclass(frozen=True)
class Rule(Facts):
    """One `-A` line; a leading `!` on an option is kept in the value (`!10.0.0.0/8`)."""

    chain: str
    target: str
    in_interface: str
    out_interface: str
    source: str
    destination: str
    protocol: str
    dport: str
    to_source: str
    to_destination: str
    text: str


@dataclass(frozen=True)
class TableFacts(Facts):
    """The table's chains and rules; `complete` is false when COMMIT never came (cut output)."""

    table: str
    chains: tuple[Chain, ...]
    rules: tuple[Rule, ...]
    complete: bool
    normalised: str
    sha256: str

    def rules_in(self, chain: str) -> tuple[Rule, ...]:
        """The rules appended to one chain, in order."""
        return tuple(r for r in self.rules if r.chain == chain)


_CHAIN = re.compile(r"^:(?P<name>\S+) (?P<policy>\S+)(?: \[(?P<packets>\d+):(?P<bytes>\d+)\])?$")
_COUNTERS = re.compile(r"\[\d+:\d+\]")
_OPTIONS = {
    "-i": "in_interface",
    "--in-interface": "in_interface",
    "-o": "out_interface",
    "--out-interface": "out_interface",
    "-s": "source",
    "--source": "source",
    "-d": "destination",
    "--destination": "destination",
    "-p": "protocol",
    "--protocol": "protocol",
    "--dport": "dport",
    "--destination-port": "dport",
    "-j": "target",
    "--jump": "target",
    "--to-source": "to_source",
    "--to-destination": "to_destination",
}


def _rule(line: str) -> Rule:
    try:
        words = shlex.split(line)
    except ValueError:
        words = line.split()
    if len(words) < 2:
        raise ParseError(f"expected '-A <chain> ...', got {line[:80]!r}")
    fields = dict.fromkeys(set(_OPTIONS.values()), "")
    negate = False
    index = 2
    while index < len(words):
        word = words[index]
        if word == "!":
            negate = True
        elif word in _OPTIONS and index + 1 < len(words):
            value = words[index + 1]
            fields[_OPTIONS[word]] = f"!{value}" if negate else value
            negate = False
            index += 1
        else:
            negate = False
        index += 1
    return Rule(chain=words[1], text=line, **fields)


def parse(text: str) -> TableFacts:
    """The single table in the output; anything but one `*table` block is refused."""
    table = ""
    chains: list[Chain] = []
    rules: list[Rule] = []
    kept: list[str] = []
    complete = False
    # Rules with long comments or ipset lists are legitimate; cut only absurd lines.
    for line in clean_lines(text, 16384):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("*"):
            if table:
                raise ParseError("expected one table in iptables-save -t output, found another '*' line")
            table = stripped[1:]
        elif not table:
            raise ParseError(f"expected '*<table>' before rules in iptables-save output, got {stripped[:80]!r}")
        elif complete:
            raise ParseError("expected nothing after COMMIT in iptables-save -t output")
        elif stripped == "COMMIT":
            complete = True
        elif stripped.startswith(":"):
            match = _CHAIN.match(stripped)
            if not match:
                raise ParseError(f"expected ':CHAIN POLICY [p:b]', got {stripped[:80]!r}")
            packets = parse_int(match["packets"] or "0", "chain packet counter")
            chains.append(
                Chain(match["name"], match["policy"], packets, parse_int(match["bytes"] or "0", "chain byte counter"))
            )
        elif stripped.startswith("-A ") or stripped.startswith("[") and " -A " in stripped:
            rule_text = _COUNTERS.sub("", stripped, count=1).strip()
            rules.append(_rule(rule_text))
        else:
            raise ParseError(f"expected a chain, rule or COMMIT line in iptables-save output, got {stripped[:80]!r}")
        kept.append(_COUNTERS.sub("[0:0]", stripped))
    if not table:
        raise ParseError("expected iptables-save output with a '*<table>' line")
    normalised = "\n".join(kept) + "\n"
    return TableFacts(
        table=table,
        chains=tuple(chains),
        rules=tuple(rules),
        complete=complete,
        normalised=normalised,
        sha256=hashlib.sha256(normalised.encode()).hexdigest(),
    )
