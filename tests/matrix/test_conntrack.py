"""The conntrack rules: table fill, drop counters rising between collections, `table full` in the logs."""

from __future__ import annotations

from diagnostics.matrix.rules import conntrack
from tests.matrix.builders import changed, context, parsed


def test_it_reports_a_table_near_full_with_exact_numbers() -> None:
    facts = changed(parsed("conntrack", "healthy"), count=241000, max=262144)
    [verdict] = conntrack.NEAR_FULL.check(context(facts={"conntrack": facts}))
    assert verdict.evidence[0] == "nf_conntrack_count 241,000 of nf_conntrack_max 262,144 (91.9 %)"
    assert verdict.severity == "critical"


def test_it_warns_between_the_warning_and_critical_thresholds() -> None:
    facts = changed(parsed("conntrack", "healthy"), count=200000, max=262144)
    [verdict] = conntrack.NEAR_FULL.check(context(facts={"conntrack": facts}))
    assert verdict.severity == "warning"


def test_it_honours_a_tuned_threshold() -> None:
    facts = changed(parsed("conntrack", "healthy"), count=200000, max=262144)
    assert (
        conntrack.NEAR_FULL.check(context(facts={"conntrack": facts}, thresholds={"conntrack_warning_pct": 80})) == []
    )


def test_it_says_nothing_of_an_empty_table() -> None:
    assert conntrack.NEAR_FULL.check(context(facts={"conntrack": parsed("conntrack", "healthy")})) == []


def test_it_says_nothing_when_conntrack_is_not_loaded() -> None:
    assert conntrack.NEAR_FULL.check(context(facts={"conntrack": parsed("conntrack", "module_not_loaded")})) == []


def test_it_reports_drops_rising_since_the_previous_collection() -> None:
    now = parsed("conntrack", "near_full_with_drops")
    before = changed(now, drop=1500, early_drop=800, insert_failed=100)
    [verdict] = conntrack.DROPS_RISING.check(context(facts={"conntrack": now}, previous={"conntrack": before}))
    assert verdict.evidence[0] == "drop 1,500 -> 2,000 (+500)"


def test_it_ignores_drops_that_did_not_rise() -> None:
    now = parsed("conntrack", "near_full_with_drops")
    assert conntrack.DROPS_RISING.check(context(facts={"conntrack": now}, previous={"conntrack": now})) == []


def test_it_needs_a_previous_collection_to_judge_drops() -> None:
    assert conntrack.DROPS_RISING.check(context(facts={"conntrack": parsed("conntrack", "near_full_with_drops")})) == []


def test_it_reports_table_full_lines_from_the_kernel() -> None:
    [verdict] = conntrack.TABLE_FULL_LOGGED.check(context(facts={"logs": parsed("logs", "dhcp_and_daemon_problems")}))
    assert (
        "Mar 18 22:01:04 r-12-VM kernel: [ 8123.442211] nf_conntrack: table full, dropping packet" in verdict.evidence
    )


def test_it_says_nothing_without_table_full_lines() -> None:
    assert conntrack.TABLE_FULL_LOGGED.check(context(facts={"logs": parsed("logs", "benign_errors_only")})) == []
