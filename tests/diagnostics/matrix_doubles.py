"""A small stand-in troubleshooting matrix for the evaluation, page and command tests.

The real rules are tested on plain data elsewhere; these tests are about what happens to
verdicts afterwards, so they judge with a few rules whose firing each test switches on and
off, passed to the evaluation as its arguments (`FakeMatrix.evaluate`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.utils import timezone

from diagnostics.evaluate import Evaluation, evaluate_router
from diagnostics.matrix.base import RouterContext, Rule, Verdict
from diagnostics.models import Collection, CollectionStatus
from vrconsole.models import Router

THRESHOLDS = {"conntrack_warning_pct": 80.0, "disk_log_warning_pct": 85.0}


@dataclass
class FakeMatrix:
    """Rules that fire when a test says so, with the evidence the test gives."""

    firing: dict[str, tuple[str, ...]] = field(default_factory=dict)
    seen: list[RouterContext] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rules = [
            self.rule("dnsmasq-not-running", "dhcp", "critical", ("facts:processes",)),
            self.rule("var-log-nearly-full", "disk", "warning", ("facts:disk",), ("disk_log_warning_pct",)),
            self.rule("template-outdated", "template", "info", ("api",)),
            self.rule("router-unreachable", "access", "critical", ("api",)),
        ]

    def fire(self, rule: str, *evidence: str) -> None:
        self.firing[rule] = evidence or (f"{rule} evidence",)

    def quiet(self, rule: str) -> None:
        self.firing.pop(rule, None)

    def rule(self, rule_id: str, category: str, severity: str, reads: tuple[str, ...], thresholds=(), also=()) -> Rule:
        def check(context: RouterContext) -> list[Verdict]:
            if not self.seen or self.seen[-1] is not context:
                self.seen.append(context)
            if rule_id not in self.firing:
                return []
            return [
                Verdict(
                    rule=rule_id,
                    category=category,
                    severity=severity,
                    title=f"{rule_id} on {context.router.name}",
                    evidence=self.firing[rule_id],
                    remediation=f"Fix {rule_id}: restart it, then check /var/log/cloud.log.",
                    also=tuple(also),
                )
            ]

        return Rule(
            id=rule_id,
            category=category,
            severity=severity,
            summary=f"checks {rule_id}",
            remedy=f"remedy of {rule_id}",
            reads=reads,
            thresholds=tuple(thresholds),
            check=check,
            also=tuple(also),
        )

    def evaluate(self, router: Router, collection: Collection | None = None, **options: Any) -> Evaluation:
        """evaluate_router with these rules and known thresholds; nothing published unless told."""
        options.setdefault("publish", lambda group, event: None)
        return evaluate_router(router, collection, rules=self.rules, thresholds=THRESHOLDS, **options)


FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def stored_facts(*probes: str) -> dict:
    """Golden facts of the named probes in their stored form, from tests/fixtures."""
    cases = {"processes": "processes/healthy.json", "disk": "disk/captured.json"}
    return {name: json.loads((FIXTURES / cases[name]).read_text()) for name in probes}


def finished_collection(
    router: Router,
    status: str = CollectionStatus.SUCCEEDED,
    facts: dict | None = None,
    minutes_ago: int = 0,
    **fields: object,
) -> Collection:
    finished = timezone.now() - timedelta(minutes=minutes_ago)
    return Collection.objects.create(
        router=router,
        status=status,
        created=finished - timedelta(seconds=5),
        started=finished - timedelta(seconds=4),
        finished=finished,
        duration_s=4.0,
        facts=facts or {},
        **fields,
    )
