"""BGP on routed networks (CloudStack 4.20): the peers FRR is configured with and the state bgpd reports.

CsBgpPeers writes `/etc/frr/frr.conf` from the bgp_peers databag (`router bgp <AS>`, one
`neighbor <ip> remote-as <AS>` per peer) and restarts frr. Routers without routed BGP have
no such section, and then the probe prints only `==> absent <==`: there is nothing to judge.
Otherwise it prints the configured neighbors (only their remote-as lines: the password
lines stay on the router), whether a bgpd process runs, and `vtysh -c 'show bgp summary
json'` with its exit status (a vtysh that cannot answer is unknown, not "peer down").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from diagnostics.probes.base import Facts, ParseError, Section, clean_line, int_field, split_sections, text_field

FRR_CONF = "/etc/frr/frr.conf"
MAX_SUMMARY_BYTES = 1024 * 1024
COMMAND = (
    f"if grep -qs '^router bgp' {FRR_CONF}; then "
    f"echo '==> neighbors <=='; grep -E '^ *neighbor [^ ]+ remote-as ' {FRR_CONF} | head -n 500; "
    "echo '==> bgpd <=='; pids=$(pidof bgpd); echo \"status $? pids $pids\"; "
    "echo '==> summary <=='; out=$(vtysh -c 'show bgp summary json' 2>&1); status=$?; "
    f"printf '%s\\n' \"$out\" | head -c {MAX_SUMMARY_BYTES}; echo; echo '==> summary-status <=='; echo \"$status\"; "
    "else echo '==> absent <=='; fi"
)
_NEIGHBOR = re.compile(r"^\s*neighbor (?P<peer>\S+) remote-as (?P<remote_as>\S+)\s*$")
_PIDOF = re.compile(r"^status (?P<status>\d+) pids(?P<pids>( \d+)*)\s*$")


@dataclass(frozen=True)
class ConfiguredPeer(Facts):
    """A `neighbor ... remote-as ...` line of frr.conf."""

    address: str
    remote_as: str


@dataclass(frozen=True)
class PeerState(Facts):
    """One peer of `show bgp summary json` in one address family."""

    address: str
    address_family: str
    remote_as: int
    state: str
    uptime: str
    connections_dropped: int


@dataclass(frozen=True)
class FrrFacts(Facts):
    """BGP as configured and as bgpd reports it; configured False: this router runs no BGP.

    bgpd_running is None when `pidof` could not run; peers is None when vtysh did not answer
    (summary_error says what it printed).
    """

    configured: bool
    neighbors: tuple[ConfiguredPeer, ...]
    bgpd_running: bool | None
    peers: tuple[PeerState, ...] | None
    summary_error: str

    def states_of(self, address: str) -> tuple[PeerState, ...]:
        """What bgpd reports for one configured neighbor, in every address family it is in."""
        return tuple(p for p in self.peers or () if p.address == address)


def _pidof(section: Section) -> bool | None:
    match = _PIDOF.match(section.text.strip())
    if match is None:
        raise ParseError("expected 'status N pids ...' after pidof bgpd")
    return {"0": True, "1": False}.get(match["status"])


def _summary(section: Section, status: str) -> tuple[tuple[PeerState, ...] | None, str]:
    if status != "0":
        return None, clean_line(" ".join(section.lines).strip(), 300) or f"vtysh exited {status or '?'}"
    text = section.text.strip()
    try:
        data = json.loads(text) if text else {}
    except (ValueError, RecursionError):
        raise ParseError("expected JSON from vtysh -c 'show bgp summary json'") from None
    if not isinstance(data, dict):
        raise ParseError("expected a JSON object from show bgp summary json")
    peers = []
    for family, body in data.items():
        table: Any = body.get("peers") if isinstance(body, dict) else None
        if not isinstance(table, dict):
            continue
        for address, peer in table.items():
            if not isinstance(peer, dict):
                continue
            peers.append(
                PeerState(
                    address=clean_line(str(address), 100),
                    address_family=clean_line(str(family), 40),
                    remote_as=int_field(peer, "remoteAs"),
                    state=text_field(peer, "state"),
                    uptime=text_field(peer, "peerUptime"),
                    connections_dropped=int_field(peer, "connectionsDropped"),
                )
            )
    return tuple(peers), ""


def parse(text: str) -> FrrFacts:
    """Either the single `absent` section, or neighbors, bgpd, summary and its exit status."""
    sections = split_sections(text)
    if "absent" in sections:
        if len(sections) != 1:
            raise ParseError("expected nothing beside the 'absent' section")
        return FrrFacts(configured=False, neighbors=(), bgpd_running=None, peers=None, summary_error="")
    sections = split_sections(
        text, expected=("neighbors", "bgpd", "summary", "summary-status"), line_limit=MAX_SUMMARY_BYTES
    )
    neighbors = []
    for line in sections["neighbors"].lines:
        match = _NEIGHBOR.match(line)
        if match is None:
            raise ParseError(f"expected 'neighbor <peer> remote-as <as>', got {line[:80]!r}")
        neighbors.append(ConfiguredPeer(clean_line(match["peer"], 100), clean_line(match["remote_as"], 40)))
    peers, error = _summary(sections["summary"], sections["summary-status"].text.strip())
    return FrrFacts(
        configured=True,
        neighbors=tuple(neighbors),
        bgpd_running=_pidof(sections["bgpd"]),
        peers=peers,
        summary_error=error,
    )
