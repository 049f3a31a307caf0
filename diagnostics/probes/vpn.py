"""IPsec VPNs as the VR configures them and as strongSwan reports them: site-to-site tunnels and remote access.

Site-to-site (CsSite2SiteVpn in configure.py): each connection is `conn vpn-<peer>` in
/etc/ipsec.d/ipsec.vpn-<peer>.conf (split connections add `vpn-<peer>-<n>`), with the
pre-shared key in a .secrets file beside it and the intent in the `site2sitevpn` databag
(/etc/cloudstack/site2sitevpn.json). CloudStack's checks2svpn.sh calls a connection up when
`ipsec status vpn-<peer>` shows it ESTABLISHED; the probe reads `ipsec statusall` once for
every connection: its IKE SAs (`name[n]: STATE`) and CHILD SAs (`name{n}: STATE`).

Remote access (CsRemoteAccessVpn): the `remoteaccessvpn` databag says per public address
whether it is enabled (`create`); the VR then writes /etc/ipsec.d/l2tp.conf (`conn
L2TP-PSK`), /etc/xl2tpd/xl2tpd.conf and runs xl2tpd next to charon.

No secret is read: the .secrets files are never opened, and the databags are reduced to
addresses and flags by a fixed Python one-liner before they leave the router. charon's own
lines from /var/log/daemon.log give the reason for a failure where it was logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from diagnostics.probes.base import Facts, ParseError, Section, split_sections

_DATABAGS = (
    "import json\n"
    "for name, kind in (('site2sitevpn', 's2s'), ('remoteaccessvpn', 'ra')):\n"
    "    try:\n"
    "        bag = json.load(open('/etc/cloudstack/%s.json' % name))\n"
    "    except FileNotFoundError:\n"
    "        print(kind, 'absent'); continue\n"
    "    except Exception as e:\n"
    "        print(kind, 'unreadable', type(e).__name__); continue\n"
    "    for key, item in bag.items():\n"
    "        if not isinstance(item, dict): continue\n"
    "        if kind == 's2s': print(kind, 'entry', item.get('peer_gateway_ip'), item.get('local_public_ip'),"
    " str(item.get('peer_guest_cidr_list', '')).replace(' ', ''))\n"
    "        else: print(kind, 'entry', key, bool(item.get('create')), item.get('public_interface'))\n"
)
COMMAND = (
    "echo '==> s2s_conf <=='; cat /etc/ipsec.d/ipsec.vpn-*.conf 2>&1 | head -n 400; "
    f"echo '==> databags <=='; python3 -c \"{_DATABAGS}\" 2>&1 | head -n 100; "
    "echo '==> l2tp_conf <=='; grep -E '^[[:space:]]*(conn|left|right|auto)' /etc/ipsec.d/l2tp.conf 2>&1 | head -n 20; "
    "echo '==> pids <=='; for p in charon xl2tpd; do echo \"$p $(pidof $p)\"; done; "
    "echo '==> statusall <=='; timeout 10 ipsec statusall 2>&1 | head -n 600; "
    "echo '==> charon_log <=='; tail -n 5000 /var/log/daemon.log 2>/dev/null | grep -h ' charon: ' | tail -n 60 "
    "| sed 's/^/|/'; exit 0"
)

_CONN = re.compile(r"^conn\s+(?P<name>\S+)")
_KEYVAL = re.compile(r"^\s+(?P<key>[a-z_]+)=(?P<value>\S*)")
_LOADED = re.compile(r"^\s*(?P<name>[^\s\[\]{}:]+):\s{2}\S+\.\.\.\S+\s+IKEv")
# strongSwan's IKE_SA and CHILD_SA state names (ike_sa.h, child_sa.h).
_IKE_SA = re.compile(
    r"^\s*(?P<name>[^\s\[\]{}:]+)\[(?P<id>\d+)\]: "
    r"(?P<state>CREATED|CONNECTING|ESTABLISHED|PASSIVE|REKEYING|REKEYED|DELETING|DESTROYING)\b(?P<rest>.*)$"
)
_CHILD_SA = re.compile(
    r"^\s*(?P<name>[^\s\[\]{}:]+)\{(?P<id>\d+)\}:\s+"
    r"(?P<state>CREATED|ROUTED|INSTALLING|INSTALLED|UPDATING|REKEYING|REKEYED|RETRYING|DELETING|DELETED|DESTROYING),"
    r"(?P<rest>.*)$"
)
_SECTION = re.compile(r"^(Connections|Routed Connections|Security Associations|Shunted Connections)\b")
# What charon logs when a negotiation fails, as the reason to quote.
_FAILURE = re.compile(
    r"AUTHENTICATION_FAILED|NO_PROPOSAL_CHOSEN|TS_UNACCEPTABLE|INVALID_KE_PAYLOAD|giving up after|"
    r"retransmit \d+ of request|failed|unable to|no shared key|no matching peer config|peer not responding",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class SiteToSite(Facts):
    """One `conn` of an ipsec.vpn-<peer>.conf file: its name, ends and subnets."""

    name: str
    left: str
    right: str
    left_subnet: str
    right_subnet: str
    auto: str


@dataclass(frozen=True)
class SecurityAssociation(Facts):
    """One SA line of `ipsec statusall`: IKE (`name[n]`) or CHILD (`name{n}`), its state and the rest."""

    kind: str  # "ike", "child" (Security Associations) or "routed" (Routed Connections)
    name: str
    id: int
    state: str
    detail: str


@dataclass(frozen=True)
class VpnFacts(Facts):
    """What the probe saw.

    connections:         the site-to-site `conn`s of /etc/ipsec.d/ipsec.vpn-*.conf
    s2s_peers:           peer_gateway_ip of each site2sitevpn databag entry (None: no databag)
    remote_access:       public addresses whose remoteaccessvpn entry has `create` true (None: no databag)
    l2tp_left:           `left=` of /etc/ipsec.d/l2tp.conf ("" when absent)
    charon_running, xl2tpd_running: the processes live (pidof)
    statusall_answered:  `ipsec statusall` printed charon's status; False when charon did not answer
    loaded:              connection names statusall lists under Connections
    sas:                 its SA lines (Security Associations and Routed Connections)
    charon_log:          charon's last lines in daemon.log that say why something failed
    """

    connections: tuple[SiteToSite, ...]
    s2s_peers: tuple[str, ...] | None
    remote_access: tuple[str, ...] | None
    l2tp_left: str
    charon_running: bool
    xl2tpd_running: bool
    statusall_answered: bool
    loaded: tuple[str, ...]
    sas: tuple[SecurityAssociation, ...]
    charon_log: tuple[str, ...]

    def sas_of(self, name: str) -> tuple[SecurityAssociation, ...]:
        """The SA lines of one connection."""
        return tuple(sa for sa in self.sas if sa.name == name)

    def is_up(self, name: str) -> bool:
        """checks2svpn.sh's test: an ESTABLISHED IKE SA, plus (as statusall shows) an INSTALLED CHILD SA."""
        sas = self.sas_of(name)
        return any(sa.kind == "ike" and sa.state == "ESTABLISHED" for sa in sas) and any(
            sa.kind == "child" and sa.state == "INSTALLED" for sa in sas
        )


def _connections(section: Section) -> tuple[SiteToSite, ...]:
    if section.missing:
        return ()
    found: list[dict[str, str]] = []
    for line in section.lines:
        if match := _CONN.match(line):
            found.append({"name": match["name"][:120]})
        elif found and (match := _KEYVAL.match(line)):
            found[-1].setdefault(match["key"], match["value"][:200])
    return tuple(
        SiteToSite(
            name=item["name"],
            left=item.get("left", ""),
            right=item.get("right", ""),
            left_subnet=item.get("leftsubnet", ""),
            right_subnet=item.get("rightsubnet", ""),
            auto=item.get("auto", ""),
        )
        for item in found
        if item["name"] != "%default"
    )


def _databags(section: Section) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    bags: dict[str, list[str] | None] = {"s2s": [], "ra": []}
    for line in section.lines:
        words = line.split()
        if len(words) < 2 or words[0] not in bags:
            continue
        kind, what = words[0], words[1]
        if what in ("absent", "unreadable"):
            bags[kind] = None
        elif what == "entry" and len(words) >= 4:
            current = bags[kind]
            if current is None:
                continue
            if kind == "s2s" and words[2] != "None":
                current.append(words[2][:100])
            elif kind == "ra" and words[3] == "True":
                current.append(words[2][:100])
    s2s, ra = bags["s2s"], bags["ra"]
    return (None if s2s is None else tuple(s2s)), (None if ra is None else tuple(ra))


def _l2tp_left(section: Section) -> str:
    for line in section.lines:
        match = _KEYVAL.match(line)
        if match and match["key"] == "left":
            return match["value"][:100]
    return ""


def _pids(section: Section) -> dict[str, bool]:
    running = {}
    for line in section.lines:
        words = line.split()
        if words and words[0] in ("charon", "xl2tpd"):
            running[words[0]] = len(words) > 1
    if set(running) != {"charon", "xl2tpd"}:
        raise ParseError("expected a pid line for charon and xl2tpd")
    return running


def _statusall(section: Section) -> tuple[bool, tuple[str, ...], tuple[SecurityAssociation, ...]]:
    answered = any(line.startswith("Status of IKE charon daemon") for line in section.lines)
    loaded: list[str] = []
    sas: list[SecurityAssociation] = []
    part = ""
    for line in section.lines:
        if match := _SECTION.match(line):
            part = match.group(1)
            continue
        if part == "Connections" and (match := _LOADED.match(line)):
            if match["name"] not in loaded:
                loaded.append(match["name"][:120])
        elif part in ("Security Associations", "Routed Connections"):
            if match := _IKE_SA.match(line):
                kind = "ike"
            elif match := _CHILD_SA.match(line):
                kind = "child" if part == "Security Associations" else "routed"
            else:
                continue
            sas.append(
                SecurityAssociation(
                    kind, match["name"][:120], int(match["id"][:9]), match["state"][:40], match["rest"].strip()[:300]
                )
            )
    return answered, tuple(loaded), tuple(sas)


def parse(text: str) -> VpnFacts:
    """The six sections into facts; a section's tool complaining of a missing file gives empty facts."""
    sections = split_sections(text, expected=("s2s_conf", "databags", "l2tp_conf", "pids", "statusall", "charon_log"))
    s2s_peers, remote_access = _databags(sections["databags"])
    running = _pids(sections["pids"])
    answered, loaded, sas = _statusall(sections["statusall"])
    log = [line[1:] for line in sections["charon_log"].lines if line.startswith("|")]
    return VpnFacts(
        connections=_connections(sections["s2s_conf"]),
        s2s_peers=s2s_peers,
        remote_access=remote_access,
        l2tp_left=_l2tp_left(sections["l2tp_conf"]),
        charon_running=running["charon"],
        xl2tpd_running=running["xl2tpd"],
        statusall_answered=answered,
        loaded=loaded,
        sas=sas,
        charon_log=tuple(line for line in log if _FAILURE.search(line))[-20:],
    )
