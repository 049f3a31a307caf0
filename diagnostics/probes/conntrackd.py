"""conntrackd on a redundant router: its sync link as configured, whether it runs, and two stats samples.

CsRedundant writes /etc/conntrackd/conntrackd.conf on both members of a redundant pair
(FTFW sync over multicast 225.0.0.50, group 3780, on the guest interface) and keeps
conntrackd running on the PRIMARY and on the BACKUP; only the heartbeat watchdog stops it,
with keepalived, when the router goes FAULT. The probe reads the `Multicast { ... }` block
of the configuration (the package's own file has none, so a router CsRedundant never set up, or
set down again, has no sync configured), `pidof conntrackd`, and `conntrackd -s` twice, three seconds apart,
when it runs: an FTFW peer answers with alive messages every second or so, so received
packets that do not grow while sent ones do mean the peer's messages do not arrive, and
error counters that grow mean the sync link itself fails. A router without the file runs
no conntrackd and is not probed further (no sleep).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from diagnostics.probes.base import Facts, ParseError, Section, small_count, split_sections

CONF = "/etc/conntrackd/conntrackd.conf"
SAMPLE_SECONDS = 3
_STATS = f"timeout 5 conntrackd -C {CONF} -s 2>&1 | head -n 60"
COMMAND = (
    f"echo '==> conf <=='; if [ -e {CONF} ]; then "
    f"sed -n '/^[[:space:]]*Multicast/,/}}/p' {CONF} 2>&1 | head -n 40; else echo 'absent'; fi; "
    "echo '==> pids <=='; pidof conntrackd 2>&1 | head -n 1; "
    f"if [ -e {CONF} ] && pidof conntrackd >/dev/null 2>&1; then "
    f"echo '==> stats <=='; {_STATS}; sleep {SAMPLE_SECONDS}; "
    f"echo '==> stats_later <=='; {_STATS}; fi; exit 0"
)

_SETTING = re.compile(r"^\s*(?P<key>IPv4_address|Group|IPv4_interface|Interface)\s+(?P<value>\S+)")
_ACTIVE = re.compile(r"^current active connections:\s+(?P<n>\d+)")
_DEVICE = re.compile(r"^multicast traffic \(active device=(?P<device>[^)]*)\):")
_PAIR = re.compile(
    r"^\s*(?P<a>\d+) (?P<what_a>Bytes sent|Pckts sent|Error send)\s+(?P<b>\d+) (?P<what_b>Bytes recv|Pckts recv|Error recv)"
)


@dataclass(frozen=True)
class SyncStats(Facts):
    """One `conntrackd -s` sample: the caches' active entries and the multicast counters."""

    internal_active: int
    external_active: int
    device: str
    bytes_sent: int
    bytes_recv: int
    packets_sent: int
    packets_recv: int
    errors_send: int
    errors_recv: int


@dataclass(frozen=True)
class ConntrackdFacts(Facts):
    """What the probe saw.

    configured:      /etc/conntrackd/conntrackd.conf has a Multicast block (CsRedundant set the router up for sync)
    multicast_*:     the Multicast block: group address, port group, interface and its address
    running:         a conntrackd process lives in the router
    first, later:    the two stats samples (None when conntrackd did not run or did not answer)
    stats_error:     what `conntrackd -s` printed instead of its stats
    """

    configured: bool
    multicast_address: str
    multicast_group: str
    multicast_interface: str
    multicast_interface_ip: str
    running: bool
    first: SyncStats | None
    later: SyncStats | None
    stats_error: str = ""
    sample_seconds: int = SAMPLE_SECONDS


def _stats(section: Section | None) -> tuple[SyncStats | None, str]:
    if section is None:
        return None, ""
    actives: list[int] = []
    device = ""
    pairs: dict[str, int] = {}
    for line in section.lines:
        if match := _ACTIVE.match(line):
            actives.append(int(match["n"]))
        elif match := _DEVICE.match(line):
            device = match["device"]
        elif match := _PAIR.match(line):
            pairs[match["what_a"]] = int(match["a"])
            pairs[match["what_b"]] = int(match["b"])
    if len(actives) < 2 or len(pairs) < 6:
        text = " ".join(line.strip() for line in section.lines if line.strip())
        return None, text[:300] or "no output"
    return (
        SyncStats(
            internal_active=actives[0],
            external_active=actives[1],
            device=device,
            bytes_sent=pairs["Bytes sent"],
            bytes_recv=pairs["Bytes recv"],
            packets_sent=pairs["Pckts sent"],
            packets_recv=pairs["Pckts recv"],
            errors_send=pairs["Error send"],
            errors_recv=pairs["Error recv"],
        ),
        "",
    )


def parse(text: str) -> ConntrackdFacts:
    """The conf block, the pid line and up to two stats samples."""
    sections = split_sections(text, expected=("conf", "pids"))
    conf = [line.strip() for line in sections["conf"].lines if line.strip()]
    settings: dict[str, str] = {}
    for line in conf:
        if (match := _SETTING.match(line)) and match["key"] not in settings:
            settings[match["key"]] = match["value"][:100]
    # Debian's packaged conntrackd.conf has no Multicast block: only CsRedundant's file configures sync.
    configured = conf != ["absent"] and not sections["conf"].missing and "IPv4_address" in settings
    pid_words = " ".join(sections["pids"].lines).split()
    if any(small_count(word) is None for word in pid_words):
        raise ParseError("expected pids from pidof conntrackd")
    first, first_error = _stats(sections.get("stats"))
    later, later_error = _stats(sections.get("stats_later"))
    return ConntrackdFacts(
        configured=configured,
        multicast_address=settings.get("IPv4_address", ""),
        multicast_group=settings.get("Group", ""),
        multicast_interface=settings.get("Interface", ""),
        multicast_interface_ip=settings.get("IPv4_interface", ""),
        running=bool(pid_words),
        first=first,
        later=later,
        stats_error=first_error or later_error,
    )
