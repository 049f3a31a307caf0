"""A small stand-in troubleshooting matrix for the evaluation, page and command tests.

The real rules are tested on plain data elsewhere; these tests are about what happens to
verdicts afterwards, so they install a registry of a few rules whose firing each test
switches on and off, and a thresholds module with known defaults.
"""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from diagnostics import matrix
from diagnostics.matrix.base import RouterContext, Rule, Verdict
from diagnostics.models import Collection, CollectionStatus
from vrconsole.models import Router

THRESHOLD_DEFAULTS = {"conntrack_warning_pct": 80.0, "disk_log_warning_pct": 90.0}


@dataclass
class FakeMatrix:
    """Rules that fire when a test says so, with the evidence the test gives."""

    firing: dict[str, tuple[str, ...]] = field(default_factory=dict)
    seen: list[RouterContext] = field(default_factory=list)

    def fire(self, rule: str, *evidence: str) -> None:
        self.firing[rule] = evidence or (f"{rule} evidence",)

    def quiet(self, rule: str) -> None:
        self.firing.pop(rule, None)

    def rule(self, rule_id: str, category: str, severity: str, reads: tuple[str, ...], thresholds=()) -> Rule:
        def check(context: RouterContext) -> list[Verdict]:
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
        )

    def evaluate(self, context: RouterContext) -> list[Verdict]:
        self.seen.append(context)
        return [verdict for rule in matrix.RULES for verdict in rule.check(context)]


def install_fake_matrix(monkeypatch: pytest.MonkeyPatch) -> FakeMatrix:
    fake = FakeMatrix()
    rules = [
        fake.rule("dnsmasq-not-running", "dhcp", "critical", ("facts:processes",)),
        fake.rule("var-log-nearly-full", "disk", "warning", ("facts:disk",), ("disk_log_warning_pct",)),
        fake.rule("template-outdated", "template", "info", ("api",)),
        fake.rule("router-unreachable", "access", "critical", ("api",)),
    ]
    monkeypatch.setattr(matrix, "RULES", rules, raising=False)
    monkeypatch.setattr(matrix, "evaluate", fake.evaluate, raising=False)
    module = types.ModuleType("diagnostics.matrix.thresholds")
    module.DEFAULTS = {name: (value, "%", f"what {name} bounds") for name, value in THRESHOLD_DEFAULTS.items()}
    module.thresholds = lambda: {**THRESHOLD_DEFAULTS, "disk_log_warning_pct": 85.0}
    monkeypatch.setitem(sys.modules, "diagnostics.matrix.thresholds", module)
    return fake


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
