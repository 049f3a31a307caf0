"""CPU time split from two /proc/stat samples one second apart, for the whole VR and per CPU.

The health check's `cpu_usage_check.py` only sees 100 − idle; the split into softirq, irq,
steal and iowait tells a packet-processing bottleneck (softirq on one CPU) from a noisy
hypervisor neighbour (steal) or a slow disk (iowait).
"""

from __future__ import annotations

from dataclasses import dataclass

from diagnostics.probes.base import Facts, ParseError, Section, parse_int, split_sections

COMMAND = (
    "echo '==> first <=='; grep '^cpu' /proc/stat | head -n 1025; sleep 1; "
    "echo '==> second <=='; grep '^cpu' /proc/stat | head -n 1025"
)

# /proc/stat column order after the cpu name; guest time is already included in user.
_COLUMNS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


@dataclass(frozen=True)
class CpuSplit(Facts):
    """Percent of the interval spent in each state; `user` includes nice."""

    cpu: str
    user: float
    system: float
    irq: float
    softirq: float
    iowait: float
    steal: float
    idle: float
    interval_ticks: int

    @property
    def busy(self) -> float:
        """Everything but idle and iowait."""
        return round(100.0 - self.idle - self.iowait, 2)


@dataclass(frozen=True)
class CpuFacts(Facts):
    """The all-CPU split and one split per CPU."""

    total: CpuSplit
    per_cpu: tuple[CpuSplit, ...]


def _sample(section: Section) -> dict[str, tuple[int, ...]]:
    sample: dict[str, tuple[int, ...]] = {}
    for line in section.lines:
        words = line.split()
        if not words:
            continue
        if not words[0].startswith("cpu") or len(words) < 5:
            raise ParseError(f"expected 'cpuN user nice system idle ...' in /proc/stat, got {line[:80]!r}")
        values = [parse_int(v, f"/proc/stat {words[0]}") for v in words[1 : 1 + len(_COLUMNS)]]
        sample[words[0]] = tuple(values + [0] * (len(_COLUMNS) - len(values)))
    if "cpu" not in sample:
        raise ParseError(f"expected the aggregate 'cpu' line in the {section.name} /proc/stat sample")
    return sample


def split(cpu: str, first: tuple[int, ...], second: tuple[int, ...]) -> CpuSplit:
    """The percent split between two samples of one cpu line (counters that went back count as 0)."""
    delta = dict(zip(_COLUMNS, (max(b - a, 0) for a, b in zip(first, second, strict=True)), strict=True))
    ticks = sum(delta.values())

    def percent(*names: str) -> float:
        return round(100.0 * sum(delta[n] for n in names) / ticks, 2) if ticks else 0.0

    return CpuSplit(
        cpu=cpu,
        user=percent("user", "nice"),
        system=percent("system"),
        irq=percent("irq"),
        softirq=percent("softirq"),
        iowait=percent("iowait"),
        steal=percent("steal"),
        idle=percent("idle"),
        interval_ticks=ticks,
    )


def parse(text: str) -> CpuFacts:
    """Two samples in `first` and `second` sections; CPUs only in one sample are skipped."""
    sections = split_sections(text, expected=("first", "second"))
    first, second = _sample(sections["first"]), _sample(sections["second"])
    per_cpu = tuple(split(name, first[name], second[name]) for name in first if name != "cpu" and name in second)
    return CpuFacts(total=split("cpu", first["cpu"], second["cpu"]), per_cpu=per_cpu)
