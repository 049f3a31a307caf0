"""What `checkrouter.sh` would answer for a redundant router, from the same inputs it reads.

checkrouter.sh (CLOUDSTACK.md §3.8) prints `Status: PRIMARY|BACKUP|FAULT|UNKNOWN`: a VPC
router without guest NICs in ips.json is UNKNOWN; keepalived not active is FAULT; an
isolated router is PRIMARY when eth0 carries two IPv4 addresses (its own and the VIP);
any other type is PRIMARY when eth1 is UP and BACKUP when it is DOWN. The probe collects
those inputs (never the router password in cmdline.json) plus the keepalived heartbeat log
of /ramdisk/rrouter, and `decide` reproduces the script so the answer can be explained.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from diagnostics.probes.base import Facts, Section, small_count, split_sections

_GUEST_NICS = (
    "import json; d = json.load(open('/etc/cloudstack/ips.json')); "
    "print(sum(1 for v in d.values() if isinstance(v, list) for o in v "
    "if isinstance(o, dict) and o.get('nw_type') == 'guest' and o.get('add')))"
)
COMMAND = (
    "echo '==> cmdline <=='; grep -E '\"(type|redundant_router|redundant_state)\":' "
    "/etc/cloudstack/cmdline.json 2>&1 | head -n 10; "
    f"echo '==> guest_nics <=='; python3 -c \"{_GUEST_NICS}\" 2>&1 | tail -n 1; "
    "echo '==> keepalived <=='; systemctl is-active keepalived 2>&1 | head -n 3; "
    "echo '==> eth0 <=='; ip -4 addr show dev eth0 2>&1 | head -n 40; "
    "echo '==> eth1 <=='; ip -4 addr show dev eth1 2>&1 | head -n 40; "
    # A router that is not redundant has no heartbeat log: tail's complaint is the answer, not
    # a failed probe, so the command ends with status 0 whenever it printed its sections.
    "echo '==> keepalived_log <=='; tail -n 50 /ramdisk/rrouter/keepalived.log 2>&1; exit 0"
)

_CMDLINE_ITEM = re.compile(r'"(?P<key>type|redundant_router|redundant_state)":\s*"(?P<value>[^"]*)"')
_LINK_STATE = re.compile(r"\bstate (?P<state>\S+)")


@dataclass(frozen=True)
class VrrpFacts(Facts):
    """checkrouter.sh's inputs and its answer.

    redundant:        cmdline `redundant_router` (None when cmdline.json could not be read)
    recorded_state:   cmdline `redundant_state`, what the VR last wrote on a transition
    guest_nics:       guest entries with `add` in ips.json (None when unreadable)
    eth0_inet_count:  `inet` lines of `ip -4 addr show dev eth0`
    eth1_state:       the word after `state` for eth1 (`UP`, `DOWN`, ...; "" if absent)
    state, reason:    the decision and why
    systemd_answered: systemctl printed a unit state; False when it could not reach systemd
                      (then keepalived_active is unknown, not False)
    """

    router_type: str
    redundant: bool | None
    recorded_state: str
    guest_nics: int | None
    keepalived_active: bool
    keepalived_status: str
    eth0_inet_count: int
    eth1_state: str
    state: str
    reason: str
    keepalived_log: tuple[str, ...]
    systemd_answered: bool = True


# What `systemctl is-active` prints for a unit systemd answered about; anything else is
# systemctl failing to reach systemd, and says nothing about keepalived.
UNIT_STATES = frozenset(
    {"active", "inactive", "failed", "activating", "deactivating", "reloading", "maintenance", "refreshing"}
)


def decide(
    router_type: str,
    guest_nics: int | None,
    keepalived_active: bool,
    eth0_inet_count: int,
    eth1_state: str,
    systemd_answered: bool = True,
) -> tuple[str, str]:
    """checkrouter.sh's decision and a sentence saying which input made it."""
    if router_type == "vpcrouter" and not guest_nics:
        return "UNKNOWN", "VPC router with no guest NIC in ips.json"
    if not systemd_answered:
        # checkrouter.sh would print FAULT here, but only because systemctl failed: unknown, not a fact.
        return "UNKNOWN", "systemctl could not talk to systemd, so keepalived's state is unknown"
    if not keepalived_active:
        return "FAULT", "keepalived is not active"
    if router_type == "router":
        if eth0_inet_count == 2:
            return "PRIMARY", "eth0 carries its own address and the guest gateway VIP"
        return "BACKUP", f"eth0 carries {eth0_inet_count} IPv4 address(es), not 2 (no VIP)"
    if eth1_state == "UP":
        return "PRIMARY", "eth1 (public) is UP"
    if eth1_state == "DOWN":
        return "BACKUP", "eth1 (public) is DOWN"
    return "UNKNOWN", f"eth1 state is {eth1_state or 'not shown'}"


def _guest_nics(section: Section) -> int | None:
    last = section.lines[-1].strip() if section.lines else ""
    return small_count(last)


def parse(text: str) -> VrrpFacts:
    """The six sections; unreadable files give None/empty inputs, as they would to the script."""
    sections = split_sections(text, expected=("cmdline", "guest_nics", "keepalived", "eth0", "eth1", "keepalived_log"))
    cmdline = {m["key"]: m["value"] for line in sections["cmdline"].lines for m in _CMDLINE_ITEM.finditer(line)}
    status_lines = [line.strip() for line in sections["keepalived"].lines if line.strip()]
    keepalived_status = status_lines[0][:200] if status_lines else ""
    eth0_inet = sum(1 for line in sections["eth0"].lines if line.strip().startswith("inet "))
    eth1_state = ""
    for line in sections["eth1"].lines:
        match = _LINK_STATE.search(line)
        if match and not line.startswith(" "):
            eth1_state = match["state"]
            break
    router_type = cmdline.get("type", "")
    guest_nics = _guest_nics(sections["guest_nics"])
    active = keepalived_status == "active"
    answered = not keepalived_status or keepalived_status in UNIT_STATES
    state, reason = decide(router_type, guest_nics, active, eth0_inet, eth1_state, answered)
    redundant = cmdline.get("redundant_router")
    log = sections["keepalived_log"]
    return VrrpFacts(
        router_type=router_type,
        redundant=None if redundant is None else redundant.lower() == "true",
        recorded_state=cmdline.get("redundant_state", ""),
        guest_nics=guest_nics,
        keepalived_active=active,
        keepalived_status=keepalived_status,
        eth0_inet_count=eth0_inet,
        eth1_state=eth1_state,
        state=state,
        reason=reason,
        keepalived_log=() if log.missing else tuple(line for line in log.lines if line.strip()),
        systemd_answered=answered,
    )
