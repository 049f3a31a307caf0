"""The troubleshooting matrix as a document: every registered rule, grouped by category, with its thresholds.

The /matrix/ page is generated from the registry so it can never drift from what runs:
each rule's id, category, worst severity, what it checks and reads, its remedy, and each
threshold it uses with the value in force, the default, the unit and how to tune it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from diagnostics.matrix import RULES
from diagnostics.matrix.base import CATEGORIES, SEVERITY_RANK, Rule
from diagnostics.matrix.thresholds import DEFAULTS, thresholds

TUNING_SETTING = "MATRIX_THRESHOLDS"


@dataclass(frozen=True)
class ThresholdRow:
    """One threshold as the page shows it."""

    name: str
    current: float | None
    default: float | None
    unit: str
    description: str

    @property
    def is_tuned(self) -> bool:
        return self.current is not None and self.default is not None and float(self.current) != float(self.default)

    @property
    def tuning_example(self) -> str:
        """The environment setting that changes this threshold."""
        value = self.current if self.current is not None else self.default
        shown: Any = int(value) if isinstance(value, float) and value.is_integer() else value
        return f"{TUNING_SETTING}='{json.dumps({self.name: shown})}'"


@dataclass(frozen=True)
class RuleEntry:
    """One rule as the page shows it."""

    rule: Rule
    thresholds: list[ThresholdRow]


@dataclass(frozen=True)
class CategorySection:
    """The rules of one category, worst severity first, and the rules filed elsewhere whose fault also takes it down."""

    category: str
    entries: list[RuleEntry]
    also: list[Rule] = field(default_factory=list)


def threshold_rows(names: Sequence[str]) -> list[ThresholdRow]:
    """The named thresholds with their value in force, default, unit and meaning."""
    current = thresholds()
    rows = []
    for name in names:
        default, unit, description = DEFAULTS.get(name, (None, "", ""))
        rows.append(
            ThresholdRow(name=name, current=current.get(name), default=default, unit=unit, description=description)
        )
    return rows


def _worst_first(rules: Sequence[Rule]) -> list[Rule]:
    return sorted(rules, key=lambda rule: (-SEVERITY_RANK.get(rule.severity, 0), rule.id))


def rulebook(rules: Sequence[Rule] = RULES) -> list[CategorySection]:
    """Every rule (of the registry, by default) grouped by category, categories in the vocabulary's order.

    A rule is filed once, under its primary category; each further category its fault takes
    down lists it as well, as a reference to that entry.
    """
    by_category: dict[str, list[Rule]] = {}
    also: dict[str, list[Rule]] = {}
    for rule in rules:
        by_category.setdefault(rule.category, []).append(rule)
        for name in rule.categories[1:]:
            also.setdefault(name, []).append(rule)
    order = {name: index for index, name in enumerate(CATEGORIES)}
    sections = []
    for category in sorted({*by_category, *also}, key=lambda name: (order.get(name, len(order)), name)):
        sections.append(
            CategorySection(
                category=category,
                entries=[
                    RuleEntry(rule=rule, thresholds=threshold_rows(rule.thresholds))
                    for rule in _worst_first(by_category.get(category, []))
                ],
                also=_worst_first(also.get(category, [])),
            )
        )
    return sections
