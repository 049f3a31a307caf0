"""The numbers the matrix's rules compare facts with, and how operators override them.

Every threshold has a name, a default, a unit and a sentence saying what it bounds; the
/matrix/ page lists them. Operators tune them with `MATRIX_THRESHOLDS` (a JSON object of
numbers read in vrconsole/settings.py); a name that is not here is refused at start-up,
because a misspelt override that silently does nothing is worse than no override.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS: dict[str, tuple[float, str, str]] = {
    "stuck_transition_minutes": (10, "min", "a router in Starting/Stopping/Migrating/... longer than this is stuck"),
    "config_error_window_hours": (24, "h", "cloud.log apply failures and tracebacks younger than this are reported"),
    "delete_rule_storm_count": (50, "lines", "more `Delete rule` lines than this in the window is a rule storm"),
    "dhcp_lease_warning_pct": (90, "%", "leases at or above this share of dhcp-lease-max"),
    "conntrack_warning_pct": (75, "%", "conntrack table fill at or above this is a warning"),
    "conntrack_critical_pct": (90, "%", "conntrack table fill at or above this is critical"),
    "cpu_busy_warning_pct": (70, "%", "CPU busy at or above this in two samples is sustained load"),
    "softirq_warning_pct": (30, "%", "softirq share of all CPU time at or above this"),
    "softirq_cpu_warning_pct": (50, "%", "softirq share of one CPU at or above this"),
    "softirq_concentration_pct": (90, "%", "share of NET_RX softirqs on one CPU at or above this (RPS off)"),
    "softirq_min_net_rx": (100000, "events", "NET_RX softirqs needed before their spread is judged"),
    "softnet_squeeze_increase": (1000, "events", "time_squeezed rise between collections worth reporting"),
    "memory_warning_pct": (90, "%", "memory used (MemTotal - MemAvailable) at or above this"),
    "memory_critical_pct": (97, "%", "memory used at or above this (the VR panics on OOM)"),
    "disk_warning_pct": (85, "%", "filesystem use at or above this is a warning"),
    "disk_critical_pct": (95, "%", "filesystem use at or above this is critical"),
    "inode_warning_pct": (85, "%", "inode use at or above this is a warning"),
    "inode_critical_pct": (95, "%", "inode use at or above this is critical"),
    "log_unrotated_mb": (
        10,
        "MB",
        "a live log above this with no rotated sibling is not rotating (logrotate maxsize 10M)",
    ),
    "deleted_open_mb": (50, "MB", "deleted files still held open above this hold disk space"),
    "martian_storm_lines": (
        20,
        "lines",
        "this many 'martian source' kernel lines or more in the window is a storm (one or two are noise)",
    ),
    "conntrackd_peer_busy_connections": (
        100,
        "connections",
        "a peer tracking at least this many connections while this member's conntrackd external cache is empty",
    ),
}


def thresholds(overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """The defaults with settings.MATRIX_THRESHOLDS (or `overrides`) merged over them; unknown names are refused."""
    values = {name: float(default) for name, (default, _, _) in DEFAULTS.items()}
    # The console's own "stuck" setting is the natural default for the matrix's.
    values["stuck_transition_minutes"] = float(
        getattr(settings, "STUCK_TRANSITION_MINUTES", values["stuck_transition_minutes"])
    )
    given = dict(getattr(settings, "MATRIX_THRESHOLDS", {}) if overrides is None else overrides)
    unknown = sorted(name for name in given if name not in DEFAULTS)
    if unknown:
        raise ImproperlyConfigured(
            f"MATRIX_THRESHOLDS: unknown threshold name(s) {', '.join(unknown)}; known names: {', '.join(sorted(DEFAULTS))}"
        )
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ImproperlyConfigured(f"MATRIX_THRESHOLDS: {name} must be a number, got {value!r}")
        values[name] = float(value)
    return values
