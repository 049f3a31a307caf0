"""Connection tracking: table fill (count against max) and the kernel's per-CPU counters summed.

The VR sets `nf_conntrack_max` to 1000000 and flushes the table after every aggregated
config push; a table near full drops new flows (`nf_conntrack: table full, dropping
packet`), visible here as a rising `drop`/`early_drop`/`insert_failed`.
"""

from __future__ import annotations

from dataclasses import dataclass

from diagnostics.probes.base import Facts, ParseError, Section, parse_int, split_sections

COMMAND = (
    "for f in nf_conntrack_count nf_conntrack_max nf_conntrack_buckets; do "
    'echo "==> $f <=="; cat /proc/sys/net/netfilter/$f 2>&1; done; '
    "echo '==> stat <=='; head -n 1025 /proc/net/stat/nf_conntrack 2>&1"
)


@dataclass(frozen=True)
class ConntrackFacts(Facts):
    """Table fill and the kernel's conntrack counters, summed over CPUs.

    `loaded` is false when the nf_conntrack files do not exist (module not loaded);
    `counters` has every column of /proc/net/stat/nf_conntrack (names vary by kernel), the
    named fields are the ones the matrix reads and are 0 on kernels without them.
    """

    loaded: bool
    count: int
    max: int
    buckets: int
    used_percent: float
    found: int
    invalid: int
    insert: int
    insert_failed: int
    drop: int
    early_drop: int
    icmp_error: int
    search_restart: int
    counters: dict[str, int]


def _single_int(section: Section) -> int | None:
    if section.missing:
        return None
    values = [line for line in section.lines if line.strip()]
    if len(values) != 1:
        raise ParseError(f"expected one integer in {section.name}, got {len(values)} lines")
    return parse_int(values[0], section.name)


def _counters(section: Section) -> dict[str, int]:
    if section.missing:
        return {}
    rows = [line.split() for line in section.lines if line.strip()]
    if not rows:
        return {}
    header = rows[0]
    if not header or header[0] != "entries":
        raise ParseError("expected /proc/net/stat/nf_conntrack to start with an 'entries' header")
    totals = dict.fromkeys(header, 0)
    for row in rows[1:]:
        if len(row) != len(header):
            raise ParseError(f"expected {len(header)} hex columns per CPU in /proc/net/stat/nf_conntrack")
        for name, value in zip(header, row, strict=True):
            number = parse_int(value, f"nf_conntrack {name}", 16)
            # `entries` is the global table size repeated on every CPU row, not a per-CPU count.
            totals[name] = number if name == "entries" else totals[name] + number
    return totals


def parse(text: str) -> ConntrackFacts:
    """The four sections: count, max, buckets, stat."""
    sections = split_sections(text, expected=("nf_conntrack_count", "nf_conntrack_max", "nf_conntrack_buckets", "stat"))
    count = _single_int(sections["nf_conntrack_count"])
    maximum = _single_int(sections["nf_conntrack_max"])
    buckets = _single_int(sections["nf_conntrack_buckets"])
    counters = _counters(sections["stat"])
    loaded = count is not None and maximum is not None
    count, maximum = count or 0, maximum or 0
    return ConntrackFacts(
        loaded=loaded,
        count=count,
        max=maximum,
        buckets=buckets or 0,
        used_percent=round(100.0 * count / maximum, 2) if maximum else 0.0,
        found=counters.get("found", 0),
        invalid=counters.get("invalid", 0),
        insert=counters.get("insert", 0),
        insert_failed=counters.get("insert_failed", 0),
        drop=counters.get("drop", 0),
        early_drop=counters.get("early_drop", 0),
        icmp_error=counters.get("icmp_error", 0),
        search_restart=counters.get("search_restart", 0),
        counters=counters,
    )
