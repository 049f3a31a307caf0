"""Per-CPU packet backlog counters from /proc/net/softnet_stat.

`dropped` counts packets lost because a CPU's backlog was full and `time_squeezed` the
times the softirq ran out of budget with work left: both point at receive processing
that one CPU cannot keep up with.
"""

from __future__ import annotations

from dataclasses import dataclass

from diagnostics.probes.base import Facts, ParseError, clean_lines, parse_int

COMMAND = "head -n 1024 /proc/net/softnet_stat"


@dataclass(frozen=True)
class SoftnetCpu(Facts):
    """One CPU's row (hex columns 0, 1, 2 and 9; column 12 is the CPU id on kernels since 5.10)."""

    cpu: int
    processed: int
    dropped: int
    time_squeezed: int
    received_rps: int


@dataclass(frozen=True)
class SoftnetFacts(Facts):
    """One row per online CPU."""

    cpus: tuple[SoftnetCpu, ...]

    @property
    def dropped(self) -> int:
        """Backlog drops over all CPUs."""
        return sum(c.dropped for c in self.cpus)

    @property
    def time_squeezed(self) -> int:
        """Budget exhaustions over all CPUs."""
        return sum(c.time_squeezed for c in self.cpus)


def parse(text: str) -> SoftnetFacts:
    """Rows of at least 11 hex columns."""
    cpus = []
    for index, line in enumerate(line for line in clean_lines(text) if line.strip()):
        words = line.split()
        if len(words) < 11:
            raise ParseError(f"expected at least 11 hex columns per line of softnet_stat, got {len(words)}")
        values = [parse_int(w, "softnet_stat column", 16) for w in words]
        cpu = values[12] if len(values) > 12 else index
        cpus.append(SoftnetCpu(cpu, values[0], values[1], values[2], values[9]))
    if not cpus:
        raise ParseError("expected at least one CPU row in /proc/net/softnet_stat")
    return SoftnetFacts(cpus=tuple(cpus))
