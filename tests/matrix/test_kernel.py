"""The kernel-log rules and the conntrack rule on kern.log/messages in rsyslog's format."""

from __future__ import annotations

from diagnostics.matrix.rules import conntrack, kernel
from tests.matrix.builders import context, parsed

WIDE = {"config_error_window_hours": 1_000_000}


def _ctx() -> object:
    return context(facts={"logs": parsed("logs", "kernel_and_syslog_problems")}, thresholds=WIDE)


def test_it_reports_an_oom_kill_from_kern_log() -> None:
    [verdict] = kernel.OOM_KILL.check(_ctx())
    assert (verdict.category, verdict.severity) == ("memory", "critical")
    assert verdict.evidence[0] == "1 OOM kill(s) in kern.log"


def test_it_reports_a_nic_link_going_down() -> None:
    [verdict] = kernel.LINK_DOWN.check(_ctx())
    assert verdict.title == "a NIC link went down"


def test_it_waits_for_a_storm_before_reporting_martian_sources() -> None:
    assert kernel.MARTIANS.check(_ctx()) == []


def test_it_takes_the_martian_storm_size_from_the_thresholds() -> None:
    ctx = context(
        facts={"logs": parsed("logs", "kernel_and_syslog_problems")}, thresholds={**WIDE, "martian_storm_lines": 1}
    )
    [verdict] = kernel.MARTIANS.check(ctx)
    assert verdict.title == "1 martian-source packets logged"
    assert "martian_storm_lines" in kernel.MARTIANS.thresholds


def test_it_sees_conntrack_table_full_in_kern_log_once_though_messages_has_it_too() -> None:
    [verdict] = conntrack.TABLE_FULL_LOGGED.check(_ctx())
    assert verdict.evidence[0] == "1 'nf_conntrack: table full' line(s)"


def test_it_finds_no_kernel_trouble_in_healthy_logs() -> None:
    ctx = context(facts={"logs": parsed("logs", "benign_errors_only")}, thresholds=WIDE)
    assert [r.check(ctx) for r in kernel.RULES] == [[], [], []]
