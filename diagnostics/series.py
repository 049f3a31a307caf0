"""The history series: every number a collection leaves for charts, exports and retention.

One catalogue read by the models (the rollup table's columns), the sampler, the downsampling
queries, the chart builders, the exports and /metrics, so a series is named once. Fixed
series are columns of `HealthSample`; the per-NIC and per-CPU ones vary in number per router
and live in one JSON object per sample, keyed by interface or CPU name, each value a list in
the order of NIC_FIELDS / CPU_FIELDS. Pure: no Django.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Series:
    """One fixed series: its column, what it is, its unit, and whether its values are whole numbers."""

    name: str
    label: str
    unit: str
    integer: bool = False


METRICS: tuple[Series, ...] = (
    Series("conntrack_count", "conntrack entries", "entries", integer=True),
    Series("conntrack_max", "nf_conntrack_max", "entries", integer=True),
    Series("conntrack_percent", "conntrack fill", "%"),
    Series("cpu_percent", "CPU busy", "%"),
    Series("softirq_percent", "softirq share of all CPU time", "%"),
    Series("load1", "load average (1 min)", ""),
    Series("memory_percent", "memory used", "%"),
    Series("disk_root_percent", "disk use of /", "%"),
    Series("disk_log_percent", "disk use of /var/log", "%"),
    Series("inode_root_percent", "inode use of /", "%"),
    Series("inode_log_percent", "inode use of /var/log", "%"),
    Series("dhcp_leases", "DHCP leases", "leases", integer=True),
    Series("dhcp_range_size", "DHCP range size", "addresses", integer=True),
    Series("filter_rules", "iptables filter rules", "rules", integer=True),
    Series("nat_rules", "iptables nat rules", "rules", integer=True),
    Series("mangle_rules", "iptables mangle rules", "rules", integer=True),
    Series("softnet_drops_ps", "softnet backlog drops (all CPUs)", "/s"),
)
METRIC_NAMES: tuple[str, ...] = tuple(series.name for series in METRICS)
METRICS_BY_NAME: dict[str, Series] = {series.name: series for series in METRICS}

# Per network interface: bit rates and error/drop rates, from the counters of two collections.
NIC_FIELDS: tuple[str, ...] = ("rx_bps", "tx_bps", "rx_errors_ps", "tx_errors_ps", "rx_drops_ps", "tx_drops_ps")
# Per CPU: softirq share of that CPU's time, and softnet backlog drops per second.
CPU_FIELDS: tuple[str, ...] = ("softirq_percent", "softnet_drops_ps")
# The JSON columns holding them, and the fields of each.
KEYED_GROUPS: dict[str, tuple[str, ...]] = {"per_nic": NIC_FIELDS, "per_cpu": CPU_FIELDS}

# A rollup keeps, per fixed series, these four columns (`<name>_min` ...); per keyed field the
# same four values, flattened in this order into the key's list.
ROLLUP_STATS: tuple[str, ...] = ("min", "max", "sum", "n")

# At most this many interfaces and CPUs are kept per sample: a router with hundreds of
# interfaces (or a parser fed garbage) must not make one row huge.
MAX_KEYS = 64
