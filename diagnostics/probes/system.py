"""Load, uptime, CPU count and memory of the router from /proc.

Memory use is computed as (MemTotal − MemAvailable) / MemTotal, what `free` reports as
used on the Debian 11/12 templates; a short uptime says the router was just rebooted or
recreated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from diagnostics.probes.base import Facts, ParseError, parse_int, split_sections

COMMAND = (
    "echo '==> loadavg <=='; cat /proc/loadavg; echo '==> uptime <=='; cat /proc/uptime; "
    "echo '==> nproc <=='; nproc; echo '==> meminfo <=='; head -n 100 /proc/meminfo"
)


@dataclass(frozen=True)
class SystemFacts(Facts):
    """Load averages, uptime in seconds, CPU count and memory in kB."""

    load1: float
    load5: float
    load15: float
    running_processes: int
    total_processes: int
    uptime_seconds: float
    cpus: int
    mem_total_kb: int
    mem_free_kb: int
    mem_available_kb: int
    buffers_kb: int
    cached_kb: int
    swap_total_kb: int
    swap_free_kb: int
    mem_used_percent: float


def _float(value: str, what: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ParseError(f"expected a number for {what}, got {value[:40]!r}") from None
    if not math.isfinite(number):
        raise ParseError(f"expected a finite number for {what}, got {value[:40]!r}")
    return number


def parse(text: str) -> SystemFacts:
    """The loadavg, uptime, nproc and meminfo sections."""
    sections = split_sections(text, expected=("loadavg", "uptime", "nproc", "meminfo"))
    load = sections["loadavg"].text.split()
    if len(load) < 4 or "/" not in load[3]:
        raise ParseError("expected /proc/loadavg as 'l1 l5 l15 running/total lastpid'")
    running, _, total = load[3].partition("/")
    uptime = sections["uptime"].text.split()
    if not uptime:
        raise ParseError("expected /proc/uptime as 'seconds idle-seconds'")
    memory: dict[str, int] = {}
    for line in sections["meminfo"].lines:
        key, colon, rest = line.partition(":")
        words = rest.split()
        if not colon or not words:
            raise ParseError(f"expected 'Key:   value kB' in /proc/meminfo, got {line[:80]!r}")
        memory[key.strip()] = parse_int(words[0], f"meminfo {key.strip()}")
    if "MemTotal" not in memory:
        raise ParseError("expected MemTotal in /proc/meminfo")
    total_kb = memory["MemTotal"]
    available_kb = memory.get("MemAvailable", memory.get("MemFree", 0))
    return SystemFacts(
        load1=_float(load[0], "load1"),
        load5=_float(load[1], "load5"),
        load15=_float(load[2], "load15"),
        running_processes=parse_int(running, "running processes"),
        total_processes=parse_int(total, "total processes"),
        uptime_seconds=_float(uptime[0], "uptime"),
        cpus=parse_int(sections["nproc"].text, "nproc"),
        mem_total_kb=total_kb,
        mem_free_kb=memory.get("MemFree", 0),
        mem_available_kb=available_kb,
        buffers_kb=memory.get("Buffers", 0),
        cached_kb=memory.get("Cached", 0),
        swap_total_kb=memory.get("SwapTotal", 0),
        swap_free_kb=memory.get("SwapFree", 0),
        mem_used_percent=round(100.0 * (total_kb - available_kb) / total_kb, 2) if total_kb else 0.0,
    )
