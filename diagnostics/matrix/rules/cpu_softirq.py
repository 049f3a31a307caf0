"""Rules on CPU: sustained load, softirq share and its spread over CPUs, softnet drops between collections.

One /proc/stat sample is one second: a spike is not load. CPU is "sustained" only when
two samples (this collection and the previous one) agree; the load average is shown, not
trusted (it counts tasks waiting on disk too). Packet processing lands on one CPU without RPS (§3.10,
§5.21); softnet drops mean packets were lost because a CPU's backlog was full.
"""

from __future__ import annotations

from diagnostics.matrix.base import RouterContext, Rule, Verdict
from diagnostics.matrix.evidence import facts_of, number, previous_facts_of, verdict

_SCALE = (
    "scale the router's service offering: scaleSystemVm id=<router uuid> serviceofferingid=<bigger offering> "
    "(live where the hypervisor allows it), otherwise stopRouter, changeServiceForSystemVm, startRouter "
    "(on a redundant pair the peer serves meanwhile)"
)


def _cpu_high(ctx: RouterContext) -> list[Verdict]:
    cpu = facts_of(ctx, "cpu")
    if cpu is None:
        return []
    limit = ctx.threshold("cpu_busy_warning_pct")
    busy = cpu.total.busy
    if busy < limit:
        return []
    evidence = [
        f"CPU busy {busy:.1f} % now (user {cpu.total.user:.1f}, system {cpu.total.system:.1f}, softirq {cpu.total.softirq:.1f}, steal {cpu.total.steal:.1f})"
    ]
    before = previous_facts_of(ctx, "cpu")
    # One second of /proc/stat is a spike, not load: the previous collection must agree.
    if before is None or before.total.busy < limit:
        return []
    evidence.append(f"CPU busy {before.total.busy:.1f} % at the previous collection")
    system = facts_of(ctx, "system")
    if system is not None and system.cpus:
        evidence.append(
            f"load average 1/5/15 min {system.load1:.2f}/{system.load5:.2f}/{system.load15:.2f} on {system.cpus} CPU(s)"
        )
    remediation = (
        "The router is CPU-bound: latency and drops for every VM behind it. 1. Check the softirq verdicts: packet "
        "processing on one CPU is fixed by RPS, not by more CPUs. 2. If steal is high the host is overcommitted: "
        f"migrate the router. 3. Otherwise {_SCALE}."
    )
    return [verdict(CPU_HIGH, f"CPU busy {busy:.0f} % (sustained)", evidence, remediation)]


CPU_HIGH = Rule(
    id="cpu-sustained-high",
    category="cpu",
    severity="warning",
    summary="CPU busy above the threshold at this and the previous collection.",
    remedy="Rule out softirq concentration and steal; then scale the service offering (scaleSystemVm / changeServiceForSystemVm).",
    reads=("facts:cpu", "facts:system", "history"),
    thresholds=("cpu_busy_warning_pct",),
    check=_cpu_high,
)


def _softirq_high(ctx: RouterContext) -> list[Verdict]:
    cpu = facts_of(ctx, "cpu")
    if cpu is None:
        return []
    total_limit, one_limit = ctx.threshold("softirq_warning_pct"), ctx.threshold("softirq_cpu_warning_pct")
    hot = [c for c in cpu.per_cpu if c.softirq >= one_limit]
    if cpu.total.softirq < total_limit and not hot:
        return []
    evidence = [f"softirq {cpu.total.softirq:.1f} % of all CPU time"]
    evidence += [f"{c.cpu}: softirq {c.softirq:.1f} %, idle {c.idle:.1f} %" for c in cpu.per_cpu]
    remediation = (
        "The router spends its CPU receiving packets. If one CPU carries it, enable RPS so other CPUs share the "
        "work: `echo <all-cpu mask> > /sys/class/net/<dev>/queues/rx-0/rps_cpus` on the guest and public NICs "
        "(the template does this when /etc/rpsrfsenable exists, §3.10). Otherwise the traffic exceeds the router: "
        f"{_SCALE}."
    )
    return [verdict(SOFTIRQ_HIGH, f"softirq load high ({cpu.total.softirq:.0f} % overall)", evidence, remediation)]


SOFTIRQ_HIGH = Rule(
    id="softirq-high",
    category="softirq",
    severity="warning",
    summary="softirq takes a high share of all CPU time, or of one CPU.",
    remedy="Spread it with RPS when one CPU carries it; otherwise scale the offering.",
    reads=("facts:cpu",),
    thresholds=("softirq_warning_pct", "softirq_cpu_warning_pct"),
    check=_softirq_high,
)


def _concentrated(ctx: RouterContext) -> list[Verdict]:
    now, before = facts_of(ctx, "softirq"), previous_facts_of(ctx, "softirq")
    if now is None:
        return []
    row = now.row("NET_RX")
    if row is None or len(row.per_cpu) < 2:
        return []
    counts = list(row.per_cpu)
    earlier = before.row("NET_RX") if before is not None else None
    if (
        earlier is not None
        and len(earlier.per_cpu) == len(counts)
        and all(b >= a for a, b in zip(earlier.per_cpu, counts, strict=True))
    ):
        counts = [b - a for a, b in zip(earlier.per_cpu, counts, strict=True)]
        scope = "since the previous collection"
    else:
        scope = "since boot"
    total = sum(counts)
    if total < ctx.threshold("softirq_min_net_rx"):
        return []
    top = max(range(len(counts)), key=lambda i: counts[i])
    share = 100.0 * counts[top] / total
    if share < ctx.threshold("softirq_concentration_pct"):
        return []
    evidence = [
        f"NET_RX {scope}: {', '.join(f'{now.cpus[i]} {number(c)}' for i, c in enumerate(counts))}",
        f"{now.cpus[top]} handles {share:.1f} % of receive softirqs",
    ]
    remediation = (
        "Receive processing is on one CPU (RPS off): more vCPUs will not raise throughput (§5.21). Enable RPS on the "
        "router's NICs: `echo <all-cpu mask> > /sys/class/net/<dev>/queues/rx-0/rps_cpus` and rps_flow_cnt, or check "
        "why /etc/rpsrfsenable did not apply at boot."
    )
    return [verdict(CONCENTRATED, f"receive softirqs concentrated on {now.cpus[top]}", evidence, remediation)]


CONCENTRATED = Rule(
    id="softirq-concentrated-on-one-cpu",
    category="softirq",
    severity="info",
    summary="Nearly all NET_RX softirqs run on one CPU: RPS is off, so extra vCPUs do not help.",
    remedy="Enable RPS/RFS on the router's NICs.",
    reads=("facts:softirq", "history"),
    thresholds=("softirq_concentration_pct", "softirq_min_net_rx"),
    check=_concentrated,
)


def _softnet_rising(ctx: RouterContext) -> list[Verdict]:
    now, before = facts_of(ctx, "softnet"), previous_facts_of(ctx, "softnet")
    if now is None or before is None:
        return []
    dropped = now.dropped - before.dropped
    squeezed = now.time_squeezed - before.time_squeezed
    if dropped < 0 or squeezed < 0:
        # Counters went back: the router rebooted between the collections.
        return []
    squeeze_limit = ctx.threshold("softnet_squeeze_increase")
    if dropped <= 0 and squeezed < squeeze_limit:
        return []
    evidence = [
        f"softnet dropped {number(before.dropped)} -> {number(now.dropped)} (+{number(dropped)})",
        f"softnet time_squeezed {number(before.time_squeezed)} -> {number(now.time_squeezed)} (+{number(squeezed)})",
    ]
    evidence += [f"cpu{c.cpu}: dropped {number(c.dropped)}, time_squeezed {number(c.time_squeezed)}" for c in now.cpus]
    remediation = (
        "Packets are lost (dropped) or receive work is cut short (time_squeezed) because a CPU cannot keep up. "
        "Raise `net.core.netdev_max_backlog` and `net.core.netdev_budget` on the router, enable RPS if one CPU "
        f"carries the load, and if all CPUs are busy {_SCALE}."
    )
    return [
        verdict(
            SOFTNET_RISING,
            "softnet backlog drops rising" if dropped > 0 else "softnet budget squeezes rising",
            evidence,
            remediation,
            severity="warning" if dropped > 0 else "info",
        )
    ]


SOFTNET_RISING = Rule(
    id="softnet-drops-rising",
    category="softirq",
    severity="warning",
    summary="softnet_stat dropped (or many time_squeezed) rose between the previous and the current collection.",
    remedy="Raise netdev_max_backlog/netdev_budget, enable RPS, or scale the offering.",
    reads=("facts:softnet", "history"),
    thresholds=("softnet_squeeze_increase",),
    check=_softnet_rising,
)

RULES = (CPU_HIGH, SOFTIRQ_HIGH, CONCENTRATED, SOFTNET_RISING)
