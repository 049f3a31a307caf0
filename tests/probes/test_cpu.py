"""CPU split from two /proc/stat samples."""

from __future__ import annotations

import pytest

from diagnostics.probes import cpu
from diagnostics.probes.base import ParseError


def _two_samples(first: str, second: str) -> str:
    return f"==> first <==\n{first}\n==> second <==\n{second}\n"


def test_it_computes_percentages_from_the_deltas() -> None:
    # deltas: user 10, nice 10, system 10, idle 50, iowait 5, irq 5, softirq 5, steal 5 = 100 ticks
    facts = cpu.parse(
        _two_samples(
            "cpu  100 100 100 1000 100 100 100 100 0 0\ncpu0 100 100 100 1000 100 100 100 100 0 0",
            "cpu  110 110 110 1050 105 105 105 105 0 0\ncpu0 110 110 110 1050 105 105 105 105 0 0",
        )
    )
    total = facts.total
    assert (total.user, total.system, total.idle, total.iowait, total.irq, total.softirq, total.steal) == (
        20.0,
        10.0,
        50.0,
        5.0,
        5.0,
        5.0,
        5.0,
    )
    assert total.interval_ticks == 100 and total.busy == 45.0


def test_it_splits_each_cpu_separately() -> None:
    facts = cpu.parse(
        _two_samples(
            "cpu  0 0 0 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0\ncpu1 0 0 0 0 0 0 0 0",
            "cpu  0 0 0 100 0 0 100 0\ncpu0 0 0 0 0 0 0 100 0\ncpu1 0 0 0 100 0 0 0 0",
        )
    )
    assert [(c.cpu, c.softirq, c.idle) for c in facts.per_cpu] == [("cpu0", 100.0, 0.0), ("cpu1", 0.0, 100.0)]


def test_it_gives_zeros_when_no_time_passed() -> None:
    same = "cpu  5 5 5 5 5 5 5 5"
    assert cpu.parse(_two_samples(same, same)).total.interval_ticks == 0


def test_it_treats_a_counter_that_went_back_as_zero() -> None:
    facts = cpu.parse(_two_samples("cpu  50 0 0 100 0 0 0 0", "cpu  40 0 0 200 0 0 0 0"))
    assert (facts.total.user, facts.total.idle) == (0.0, 100.0)


def test_it_refuses_output_without_the_aggregate_line() -> None:
    with pytest.raises(ParseError, match="aggregate 'cpu' line"):
        cpu.parse(_two_samples("cpu0 1 2 3 4", "cpu0 1 2 3 4"))
