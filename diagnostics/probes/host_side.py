"""Probes run on the KVM host a router lives on: the cloud0 bridge, the router's tap on it, its libvirt state, its qemu log,
and which of the host's logs about the router exist (for live tails).

On KVM the router's control address is link-local and exists only on the host's `cloud0`
bridge (CLOUDSTACK.md §2), so "cannot reach the router" is first a host question: is
cloud0 up with 169.254.0.1, does the route to the link-local address leave through it, is
the domain's tap attached and up, is the domain running at all. These commands name the
router, so they are built by `host_command` from a validated instance name and address,
each passed through shlex.quote.

The private bridge is `cloud0` by default but the agent's `private.bridge.name`
(/etc/cloudstack/agent/agent.properties) can name another: the commands read it on the host,
accept only a plain interface name (letters, digits, `.`, `_`, `-`; anything else falls back
to cloud0) and say which bridge they looked at in a `bridge_name` section.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from diagnostics.probes.base import (
    MAX_JSON_CHARS,
    Facts,
    ParseError,
    Section,
    clean_line,
    int_field,
    parse_json_objects,
    split_sections,
    text_field,
    validate_instance_name,
    validate_ip,
)

BRIDGE = "cloud0"
QEMU_LOG_LINES = 200
QEMU_LOG_MAX_BYTES = 128 * 1024
# The CloudStack agent's log on a KVM host (cloudstack-agent's log4j configuration).
AGENT_LOG = "/var/log/cloudstack/agent/agent.log"


def qemu_log_path(instance_name: str) -> str:
    """libvirt's log of the router's domain on the host; refuses anything but an instance name."""
    return f"/var/log/libvirt/qemu/{validate_instance_name(instance_name)}.log"


AGENT_PROPERTIES = "/etc/cloudstack/agent/agent.properties"
# Fixed shell text: sets $b to the agent's private bridge (cloud0 unless agent.properties names
# a plain interface name) and prints it as the bridge_name section.
_BRIDGE_NAME = (
    "b=$(sed -n 's/^[[:space:]]*private[.]bridge[.]name[[:space:]]*=[[:space:]]*//p' "
    f"{AGENT_PROPERTIES} 2>/dev/null | tail -n 1 | tr -d '[:space:]'); "
    f'case "$b" in ""|*[!A-Za-z0-9_.-]*) b={BRIDGE};; esac; '
    "echo '==> bridge_name <=='; echo \"$b\"; "
)


def cloud0_command(instance_name: str, link_local_ip: str) -> str:
    """The private bridge's addresses and the route the host would take to the router's control address."""
    validate_instance_name(instance_name)
    address = shlex.quote(validate_ip(link_local_ip))
    return (
        f"{_BRIDGE_NAME}echo '==> bridge <=='; ip -j addr show dev \"$b\" 2>&1; "
        f"echo '==> route <=='; ip -j route get {address} 2>&1"
    )


def tap_command(instance_name: str, link_local_ip: str) -> str:
    """The domain's interfaces as libvirt knows them and the ports enslaved to the private bridge."""
    name = shlex.quote(validate_instance_name(instance_name))
    validate_ip(link_local_ip)
    return (
        f"{_BRIDGE_NAME}echo '==> domiflist <=='; virsh domiflist {name} 2>&1 | head -n 50; "
        "echo '==> ports <=='; ip -j link show master \"$b\" 2>&1"
    )


_BRIDGE_NAME_VALUE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")


def _bridge_name(section: Section) -> str:
    lines = [line.strip() for line in section.lines if line.strip()]
    return lines[0] if lines and _BRIDGE_NAME_VALUE.match(lines[0]) else BRIDGE


def domstate_command(instance_name: str, link_local_ip: str) -> str:
    """libvirt's state of the domain, with the reason."""
    name = shlex.quote(validate_instance_name(instance_name))
    validate_ip(link_local_ip)
    return f"virsh domstate --reason {name} 2>&1 | head -n 5"


def qemu_log_command(instance_name: str, link_local_ip: str) -> str:
    """The bounded tail of the domain's qemu log, each line prefixed with `|`."""
    path = shlex.quote(qemu_log_path(instance_name))
    validate_ip(link_local_ip)
    return f"tail -n {QEMU_LOG_LINES} {path} 2>&1 | head -c {QEMU_LOG_MAX_BYTES} | sed 's/^/|/'"


def logfiles_command(instance_name: str, link_local_ip: str) -> str:
    """Size and mtime of the agent log and the domain's qemu log, in the `logfiles` probe's format.

    A missing file is simply not listed (find's complaint goes to /dev/null); the last echo
    makes the exit status 0 whatever find found.
    """
    path = shlex.quote(qemu_log_path(instance_name))
    validate_ip(link_local_ip)
    return (
        f"echo '==> files <=='; find {AGENT_LOG} {path} -maxdepth 0 -type f -printf '%s %T@ %p\\n' 2>/dev/null; "
        "echo '==> deleted <=='"
    )


@dataclass(frozen=True)
class Cloud0Facts(Facts):
    """The bridge (present or not, its state, MTU, IPv4 addresses) and the device the route to the router uses."""

    present: bool
    operstate: str
    admin_up: bool
    mtu: int
    addresses: tuple[str, ...]
    route_device: str
    route_error: str
    bridge: str = BRIDGE  # the private bridge looked at (private.bridge.name, cloud0 by default)


@dataclass(frozen=True)
class DomainInterface(Facts):
    """A row of `virsh domiflist`."""

    interface: str
    type: str
    source: str
    model: str
    mac: str


@dataclass(frozen=True)
class BridgePort(Facts):
    """A port enslaved to cloud0."""

    name: str
    operstate: str
    admin_up: bool
    mtu: int
    mac: str


@dataclass(frozen=True)
class TapFacts(Facts):
    """The domain's NICs, cloud0's ports, and the domain's control tap among them (empty if none)."""

    domain_error: str
    interfaces: tuple[DomainInterface, ...]
    ports: tuple[BridgePort, ...]
    control_tap: str
    control_tap_attached: bool
    control_tap_up: bool
    bridge: str = BRIDGE


@dataclass(frozen=True)
class DomstateFacts(Facts):
    """`virsh domstate --reason`: state (`running`, `shut off`, `paused`, ...) and reason; error if virsh refused."""

    state: str
    reason: str
    error: str


@dataclass(frozen=True)
class QemuLogFacts(Facts):
    """The tail's line count, whether the log exists, and the lines that report errors."""

    missing: bool
    lines: int
    error_lines: tuple[str, ...]


def _ipv4(entry: dict[str, object]) -> tuple[str, ...]:
    infos = entry.get("addr_info", [])
    if not isinstance(infos, list):
        return ()
    return tuple(
        f"{text_field(i, 'local')}/{int_field(i, 'prefixlen')}"
        for i in infos
        if isinstance(i, dict) and i.get("family") == "inet"
    )


def _json_or_error(section: Section, what: str) -> tuple[list[dict[str, object]], str]:
    text = section.text.strip()
    if text.startswith(("[", "{")) or not text:
        return parse_json_objects(text, what), ""
    return [], clean_line(section.lines[0].strip(), 300)


def parse_cloud0(text: str) -> Cloud0Facts:
    """The bridge and route sections; ip's complaints ("Device does not exist") become facts, not errors."""
    sections = split_sections(text, expected=("bridge_name", "bridge", "route"), line_limit=MAX_JSON_CHARS)
    name = _bridge_name(sections["bridge_name"])
    bridges, _ = _json_or_error(sections["bridge"], f"ip -j addr show dev {name}")
    routes, route_error = _json_or_error(sections["route"], "ip -j route get")
    bridge = bridges[0] if bridges else {}
    flags = bridge.get("flags", [])
    return Cloud0Facts(
        present=bool(bridges),
        operstate=text_field(bridge, "operstate"),
        admin_up=isinstance(flags, list) and "UP" in flags,
        mtu=int_field(bridge, "mtu"),
        addresses=_ipv4(bridge),
        route_device=text_field(routes[0], "dev") if routes else "",
        route_error=route_error,
        bridge=name,
    )


_DOMIFLIST_ROW = re.compile(
    r"^\s*(?P<iface>\S+)\s+(?P<type>\S+)\s+(?P<source>\S+)\s+(?P<model>\S+)\s+(?P<mac>[0-9a-fA-F:]{17})\s*$"
)


def parse_tap(text: str) -> TapFacts:
    """The domiflist table (header, dashes, rows) and the ports JSON."""
    sections = split_sections(text, expected=("bridge_name", "domiflist", "ports"), line_limit=MAX_JSON_CHARS)
    name = _bridge_name(sections["bridge_name"])
    interfaces, domain_error = [], ""
    for line in sections["domiflist"].lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("Interface") or set(stripped) == {"-"}:
            continue
        if stripped.startswith("error:"):
            domain_error = domain_error or stripped[:300]
            continue
        row = _DOMIFLIST_ROW.match(line)
        if not row:
            raise ParseError(
                f"expected 'Interface Type Source Model MAC' rows from virsh domiflist, got {stripped[:80]!r}"
            )
        interfaces.append(DomainInterface(row["iface"], row["type"], row["source"], row["model"], row["mac"].lower()))
    port_entries, _ = _json_or_error(sections["ports"], f"ip -j link show master {name}")
    ports = []
    for entry in port_entries:
        flags = entry.get("flags", [])
        ports.append(
            BridgePort(
                name=text_field(entry, "ifname"),
                operstate=text_field(entry, "operstate"),
                admin_up=isinstance(flags, list) and "UP" in flags,
                mtu=int_field(entry, "mtu"),
                mac=text_field(entry, "address"),
            )
        )
    control = next((i for i in interfaces if i.source == name), None)
    port = next((p for p in ports if control and p.name == control.interface), None)
    return TapFacts(
        domain_error=domain_error,
        interfaces=tuple(interfaces),
        ports=tuple(ports),
        control_tap=control.interface if control else "",
        control_tap_attached=port is not None,
        control_tap_up=bool(port and port.admin_up and port.operstate in ("UP", "UNKNOWN")),
        bridge=name,
    )


_DOMSTATE = re.compile(r"^(?P<state>[a-z][a-z ]*?)(?: \((?P<reason>[^)]*)\))?$")


def parse_domstate(text: str) -> DomstateFacts:
    """`running (booted)`, or virsh's `error: ...` lines."""
    lines = [clean_line(line).strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise ParseError("expected a state line from virsh domstate")
    if lines[0].startswith("error:"):
        return DomstateFacts("", "", " ".join(lines)[:300])
    match = _DOMSTATE.match(lines[0])
    if not match:
        raise ParseError(f"expected 'state (reason)' from virsh domstate, got {lines[0][:80]!r}")
    return DomstateFacts(match["state"], match["reason"] or "", "")


_QEMU_ERROR = re.compile(r"\berror\b|\bfailed\b|\bcannot\b|\bterminating on signal\b|\bshutting down\b", re.IGNORECASE)


def parse_qemu_log(text: str) -> QemuLogFacts:
    """Every line starts with `|`; a missing log is a fact."""
    lines = []
    for line in text.split("\n"):
        if not line:
            continue
        if not line.startswith("|"):
            raise ParseError("expected every qemu log line to start with '|'")
        lines.append(clean_line(line[1:]))
    if Section("qemu", tuple(lines)).missing:
        return QemuLogFacts(True, 0, ())
    return QemuLogFacts(False, len(lines), tuple(line for line in lines if _QEMU_ERROR.search(line)))
