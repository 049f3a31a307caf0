"""The registry: every rule well formed, evaluate() running them all, worst first, surviving a broken rule."""

from __future__ import annotations

import pytest

from diagnostics.matrix import RULES, evaluate, rule
from diagnostics.matrix.base import CATEGORIES, SEVERITIES, RouterContext, Rule, Verdict
from diagnostics.matrix.thresholds import DEFAULTS
from tests.matrix.builders import context, healthy_isolated_facts, isolated_router, parsed


def test_it_gives_every_rule_a_unique_id() -> None:
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("one", RULES, ids=lambda r: r.id)
def test_it_gives_every_rule_a_category_severity_summary_and_remedy(one: Rule) -> None:
    assert one.category in CATEGORIES
    assert one.severity in SEVERITIES
    assert one.summary.strip() and one.remedy.strip()


@pytest.mark.parametrize("one", RULES, ids=lambda r: r.id)
def test_it_names_only_thresholds_that_exist(one: Rule) -> None:
    assert set(one.thresholds) <= set(DEFAULTS)


@pytest.mark.parametrize("one", RULES, ids=lambda r: r.id)
def test_it_says_what_every_rule_reads(one: Rule) -> None:
    assert one.reads
    assert all(r in ("api", "peer", "history") or r.startswith("facts:") for r in one.reads)


def test_it_finds_a_rule_by_id() -> None:
    assert rule("split-brain").category == "vrrp"


def test_it_refuses_an_unknown_rule_id() -> None:
    with pytest.raises(KeyError):
        rule("no-such-rule")


def _broken(ctx: RouterContext) -> list[Verdict]:
    raise ValueError("facts are not what the rule expected")


BROKEN = Rule("broken-rule", "dhcp", "critical", "breaks", "none", ("api",), (), _broken)


def test_it_turns_a_rule_that_raises_into_an_info_verdict() -> None:
    [verdict] = evaluate(context(isolated_router()), rules=(BROKEN,))
    assert verdict.severity == "info"
    assert verdict.title == "rule broken-rule could not evaluate: ValueError: facts are not what the rule expected"


def test_it_keeps_the_other_rules_verdicts_when_one_raises() -> None:
    verdicts = evaluate(context(isolated_router(state="Error")), rules=(BROKEN, rule("router-in-error-state")))
    assert [v.rule for v in verdicts] == ["router-in-error-state", "broken-rule"]


def test_it_sorts_verdicts_worst_first() -> None:
    facts = {
        "conntrack": parsed("conntrack", "near_full_with_drops"),
        "logs": parsed("logs", "dhcp_and_daemon_problems"),
    }
    verdicts = evaluate(context(isolated_router(egress_default_allow=True), facts))
    ranks = [("critical", "warning", "info").index(v.severity) for v in verdicts]
    assert ranks == sorted(ranks) and {"critical", "info"} <= {v.severity for v in verdicts}


def test_it_runs_every_rule_on_healthy_facts_without_error() -> None:
    verdicts = evaluate(context(isolated_router(), healthy_isolated_facts()))
    assert [v.title for v in verdicts if v.title.startswith("rule ")] == []


def test_it_runs_every_rule_on_a_failed_collection_without_error() -> None:
    from tests.matrix.builders import collection

    ctx = context(isolated_router(), current=collection({}, status="failed", reason="router_unreachable"))
    assert [v.rule for v in evaluate(ctx)] == ["router-unmanageable"]
