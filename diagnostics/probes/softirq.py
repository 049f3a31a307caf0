"""Soft interrupts per CPU and type from /proc/softirqs.

Without RPS all receive softirq work of a NIC lands on one CPU; NET_RX concentrated on a
single column is the signature of the VPC throughput plateau (CLOUDSTACK.md §5.21).
"""

from __future__ import annotations

from dataclasses import dataclass

from diagnostics.probes.base import Facts, ParseError, clean_lines, parse_int

COMMAND = "head -n 64 /proc/softirqs"


@dataclass(frozen=True)
class SoftirqRow(Facts):
    """One softirq type's counts, one per CPU column."""

    name: str
    per_cpu: tuple[int, ...]

    @property
    def total(self) -> int:
        """The count over all CPUs."""
        return sum(self.per_cpu)


@dataclass(frozen=True)
class SoftirqFacts(Facts):
    """CPU column names and one row per softirq type."""

    cpus: tuple[str, ...]
    rows: tuple[SoftirqRow, ...]

    def row(self, name: str) -> SoftirqRow | None:
        """The row of one type (`NET_RX`, `NET_TX`, `TIMER`, ...)."""
        return next((r for r in self.rows if r.name == name), None)


def parse(text: str) -> SoftirqFacts:
    """The header of CPU names, then `NAME: n n n` rows."""
    lines = [line for line in clean_lines(text) if line.strip()]
    if not lines:
        raise ParseError("expected /proc/softirqs with a CPU header line")
    cpus = tuple(lines[0].split())
    if not cpus or not all(c.startswith("CPU") for c in cpus):
        raise ParseError("expected the /proc/softirqs header to list CPU0 CPU1 ...")
    rows = []
    for line in lines[1:]:
        name, colon, rest = line.partition(":")
        values = rest.split()
        if not colon or len(values) != len(cpus):
            raise ParseError(f"expected 'NAME: ' and {len(cpus)} counts in /proc/softirqs, got {line[:80]!r}")
        rows.append(SoftirqRow(name.strip(), tuple(parse_int(v, f"softirq {name.strip()}") for v in values)))
    return SoftirqFacts(cpus=cpus, rows=tuple(rows))
