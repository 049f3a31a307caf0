"""Thresholds: defaults, operator overrides from settings, refusal of unknown names."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from diagnostics.matrix.thresholds import DEFAULTS, thresholds


def test_it_gives_the_defaults_without_overrides() -> None:
    with override_settings(MATRIX_THRESHOLDS={}, STUCK_TRANSITION_MINUTES=10):
        assert thresholds()["conntrack_warning_pct"] == 75.0


def test_it_merges_settings_overrides_over_the_defaults() -> None:
    with override_settings(MATRIX_THRESHOLDS={"conntrack_warning_pct": 70}):
        values = thresholds()
    assert values["conntrack_warning_pct"] == 70.0
    assert values["conntrack_critical_pct"] == 90.0


def test_it_refuses_an_unknown_threshold_name() -> None:
    with (
        override_settings(MATRIX_THRESHOLDS={"conntrack_warn_pct": 70}),
        pytest.raises(ImproperlyConfigured, match="conntrack_warn_pct"),
    ):
        thresholds()


def test_it_refuses_a_threshold_that_is_not_a_number() -> None:
    with pytest.raises(ImproperlyConfigured, match="must be a number"):
        thresholds({"conntrack_warning_pct": "70"})


def test_it_takes_the_stuck_default_from_the_consoles_setting() -> None:
    with override_settings(MATRIX_THRESHOLDS={}, STUCK_TRANSITION_MINUTES=25):
        assert thresholds()["stuck_transition_minutes"] == 25.0


def test_it_describes_every_threshold_with_a_unit() -> None:
    assert all(unit and description for _, unit, description in DEFAULTS.values())
