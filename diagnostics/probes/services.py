"""The password server and the userdata web server: their units, sockets, token and vhosts.

The password server is `cloud-password-server@<ip>` (`/opt/cloud/bin/passwd_server_ip.py`,
TCP 8080): on a router that is not redundant its instance is the guest address; on a
redundant PRIMARY it is `<gateway VIP>,<guest address>` and it listens on the VIP; a BACKUP
or FAULT member stops it (CsRedundant). It keeps a token in /tmp/passwdsrvrtoken that the
password save path must present: the probe says whether the file is there and how big it
is, never what it holds. apache2 serves userdata and metadata with one
`/etc/apache2/sites-enabled/vhost-<guest ip>.conf` per guest address on ports 80 and 443,
and keeps running on a BACKUP.

`systemctl` answers only while it can talk to systemd; when it cannot (its own words:
"Failed to connect to bus", "System has not been booted with systemd"), the unit states are
unknown, never "inactive": `systemd_answered` says which.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from diagnostics.probes.base import Facts, Section, small_count, split_sections

TOKEN_FILE = "/tmp/passwdsrvrtoken"  # noqa: S108 - the path CloudStack's password server uses.
SITES_ENABLED = "/etc/apache2/sites-enabled"
PASSWORD_PORT = 8080
SECTIONS = ("token", "listening", "vhosts", "apache2", "password_units")
COMMAND = (
    # Only the size and age of the token file: its content is a secret.
    f"echo '==> token <=='; stat -c '%s %Y' {TOKEN_FILE} 2>&1 | head -n 2; "
    "echo '==> listening <=='; ss -ltnH 2>&1 | head -n 1000; "
    f"echo '==> vhosts <=='; ls -1 {SITES_ENABLED} 2>&1 | head -n 500; "
    "echo '==> apache2 <=='; systemctl is-active apache2 2>&1 | head -n 3; "
    "echo '==> password_units <=='; systemctl list-units --all --no-legend --plain "
    "'cloud-password-server@*' 2>&1 | head -n 50; exit 0"
)

# What `systemctl is-active` can print for a unit systemd answered about.
UNIT_STATES = frozenset(
    {"active", "inactive", "failed", "activating", "deactivating", "reloading", "maintenance", "refreshing"}
)
_VHOST = re.compile(r"^vhost-(?P<ip>[0-9a-fA-F.:]+)\.conf$")
_UNIT = re.compile(
    r"^\W*cloud-password-server@(?P<instance>\S+)\.service\s+(?P<load>\S+)\s+(?P<active>\S+)\s+(?P<sub>\S+)"
)
_NOT_FOUND = re.compile(r"No such file or directory|cannot (?:statx?|access|open)")


@dataclass(frozen=True)
class ListeningSocket(Facts):
    """One TCP socket in LISTEN (`ss -ltnH`): its local address ("*" for any) and port."""

    address: str
    port: int


@dataclass(frozen=True)
class PasswordUnit(Facts):
    """One `cloud-password-server@<instance>` unit: the instance's addresses and its states."""

    instance: str
    addresses: tuple[str, ...]
    load: str
    active: str
    sub: str


@dataclass(frozen=True)
class ServicesFacts(Facts):
    """What the probe saw.

    token_present:     /tmp/passwdsrvrtoken exists (None when stat said something else)
    token_size:        its size in bytes (0 when absent)
    vhost_addresses:   the addresses of the vhost-<ip>.conf files in sites-enabled
    vhosts_readable:   sites-enabled could be listed
    apache2_state:     `systemctl is-active apache2`, "" when systemd did not answer
    systemd_answered:  systemctl could talk to systemd; when False, unit states are unknown
    systemd_error:     what systemctl said instead
    """

    token_present: bool | None
    token_size: int
    listening: tuple[ListeningSocket, ...]
    vhost_addresses: tuple[str, ...]
    vhosts_readable: bool
    apache2_state: str
    password_units: tuple[PasswordUnit, ...]
    systemd_answered: bool
    systemd_error: str

    def listens(self, address: str, port: int) -> bool:
        """A socket listens on `address:port`, or on every address at that port."""
        return any(s.port == port and s.address in (address, "*", "0.0.0.0", "::") for s in self.listening)


def _lines(section: Section) -> list[str]:
    return [line.strip() for line in section.lines if line.strip()]


def _token(section: Section) -> tuple[bool | None, int]:
    lines = _lines(section)
    if not lines:
        return None, 0
    if _NOT_FOUND.search(lines[0]):
        return False, 0
    words = lines[0].split()
    size = small_count(words[0]) if words else None
    return (True, size) if size is not None else (None, 0)


def _split_address(local: str) -> tuple[str, int] | None:
    host, _, port = local.rpartition(":")
    number = small_count(port)
    if not host or number is None:
        return None
    host = host.strip("[]").split("%", 1)[0]
    return host, number


def _listening(section: Section) -> list[ListeningSocket]:
    sockets = []
    for line in _lines(section):
        words = line.split()
        # State Recv-Q Send-Q Local Peer, the state column is there with -l as "LISTEN".
        local = words[3] if len(words) >= 5 and words[0] == "LISTEN" else words[2] if len(words) >= 4 else ""
        parsed = _split_address(local) if local else None
        if parsed:
            sockets.append(ListeningSocket(*parsed))
    return sockets


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _systemd_error(lines: list[str]) -> str:
    """What systemctl said when it was not a unit state (it could not talk to systemd)."""
    for line in lines:
        if line not in UNIT_STATES and not _UNIT.match(line):
            return line[:300]
    return ""


def parse(text: str) -> ServicesFacts:
    """The five sections; a listing that cannot be read leaves its part empty, never fails the probe."""
    sections = split_sections(text, expected=SECTIONS)
    token_present, token_size = _token(sections["token"])
    vhost_lines = _lines(sections["vhosts"])
    vhosts_readable = not (vhost_lines and _NOT_FOUND.search(vhost_lines[0]))
    vhosts = [m["ip"] for m in (_VHOST.match(line) for line in vhost_lines) if m and _is_ip(m["ip"])]
    apache_lines = _lines(sections["apache2"])
    unit_lines = _lines(sections["password_units"])
    error = _systemd_error(apache_lines) or _systemd_error(unit_lines)
    units = []
    for line in unit_lines:
        match = _UNIT.match(line)
        if match:
            addresses = tuple(a for a in match["instance"].split(",") if _is_ip(a))
            units.append(PasswordUnit(match["instance"], addresses, match["load"], match["active"], match["sub"]))
    apache_state = apache_lines[0] if apache_lines and apache_lines[0] in UNIT_STATES else ""
    return ServicesFacts(
        token_present=token_present,
        token_size=token_size,
        listening=tuple(_listening(sections["listening"])),
        vhost_addresses=tuple(vhosts),
        vhosts_readable=vhosts_readable,
        apache2_state=apache_state,
        password_units=tuple(units),
        systemd_answered=not error,
        systemd_error=error,
    )
