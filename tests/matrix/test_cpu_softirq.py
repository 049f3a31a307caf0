"""The CPU rules: sustained load, softirq share and spread, softnet drops between collections."""

from __future__ import annotations

from diagnostics.matrix.rules import cpu_softirq
from tests.matrix.builders import changed, context, parsed


def _busy_cpu(idle: float, softirq: float = 0.0) -> object:
    cpu = parsed("cpu", "captured")
    total = changed(cpu.total, idle=idle, iowait=0.0, user=100 - idle - softirq, softirq=softirq)
    per_cpu = tuple(changed(c, idle=idle, iowait=0.0, softirq=softirq) for c in cpu.per_cpu)
    return changed(cpu, total=total, per_cpu=per_cpu)


def test_it_reports_cpu_busy_in_two_collections() -> None:
    [verdict] = cpu_softirq.CPU_HIGH.check(context(facts={"cpu": _busy_cpu(10)}, previous={"cpu": _busy_cpu(15)}))
    assert "scaleSystemVm" in verdict.remediation
    assert verdict.evidence[1] == "CPU busy 85.0 % at the previous collection"


def test_it_ignores_a_single_busy_sample() -> None:
    assert cpu_softirq.CPU_HIGH.check(context(facts={"cpu": _busy_cpu(10)})) == []


def test_it_does_not_take_the_load_average_as_a_second_witness() -> None:
    system = changed(parsed("system", "captured"), load5=1.9, cpus=2)
    assert cpu_softirq.CPU_HIGH.check(context(facts={"cpu": _busy_cpu(10), "system": system})) == []


def test_it_says_nothing_of_a_quiet_cpu() -> None:
    assert (
        cpu_softirq.CPU_HIGH.check(
            context(facts={"cpu": parsed("cpu", "captured")}, previous={"cpu": parsed("cpu", "captured")})
        )
        == []
    )


def test_it_reports_a_high_softirq_share() -> None:
    [verdict] = cpu_softirq.SOFTIRQ_HIGH.check(context(facts={"cpu": _busy_cpu(40, softirq=45)}))
    assert verdict.evidence[0] == "softirq 45.0 % of all CPU time"


def test_it_says_nothing_of_a_low_softirq_share() -> None:
    assert cpu_softirq.SOFTIRQ_HIGH.check(context(facts={"cpu": parsed("cpu", "captured")})) == []


def _net_rx(per_cpu: tuple[int, ...]) -> object:
    softirq = parsed("softirq", "captured")
    rows = tuple(changed(r, per_cpu=per_cpu) if r.name == "NET_RX" else r for r in softirq.rows)
    return changed(softirq, rows=rows)


def test_it_reports_receive_softirqs_on_one_cpu() -> None:
    ctx = context(facts={"softirq": _net_rx((5_000_000, 1_000))}, previous={"softirq": _net_rx((1_000_000, 900))})
    [verdict] = cpu_softirq.CONCENTRATED.check(ctx)
    assert verdict.evidence == (
        "NET_RX since the previous collection: CPU0 4,000,000, CPU1 100",
        "CPU0 handles 100.0 % of receive softirqs",
    )


def test_it_says_nothing_of_spread_receive_softirqs() -> None:
    ctx = context(
        facts={"softirq": _net_rx((5_000_000, 4_000_000))}, previous={"softirq": _net_rx((1_000_000, 900_000))}
    )
    assert cpu_softirq.CONCENTRATED.check(ctx) == []


def test_it_says_nothing_of_an_idle_router_softirq_spread() -> None:
    assert cpu_softirq.CONCENTRATED.check(context(facts={"softirq": parsed("softirq", "captured")})) == []


def _softnet(dropped: int, squeezed: int) -> object:
    softnet = parsed("softnet", "captured")
    return changed(softnet, cpus=(changed(softnet.cpus[0], dropped=dropped, time_squeezed=squeezed), *softnet.cpus[1:]))


def test_it_reports_softnet_drops_rising() -> None:
    [verdict] = cpu_softirq.SOFTNET_RISING.check(
        context(facts={"softnet": _softnet(120, 0)}, previous={"softnet": _softnet(20, 0)})
    )
    assert verdict.severity == "warning"
    assert verdict.evidence[0] == "softnet dropped 20 -> 120 (+100)"


def test_it_ignores_softnet_counters_that_went_back_after_a_reboot() -> None:
    assert (
        cpu_softirq.SOFTNET_RISING.check(
            context(facts={"softnet": _softnet(0, 0)}, previous={"softnet": _softnet(500, 0)})
        )
        == []
    )


def test_it_says_nothing_of_steady_softnet_counters() -> None:
    assert (
        cpu_softirq.SOFTNET_RISING.check(
            context(facts={"softnet": _softnet(5, 5)}, previous={"softnet": _softnet(5, 5)})
        )
        == []
    )
