"""Golden tests: each captured output in tests/fixtures/<probe>/<case>.txt parses to <case>.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diagnostics.probes import EVIDENCE_PROBES, HOST_PROBES, PROBES_BY_NAME, ROUTER_PROBES

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CASES = sorted(FIXTURES.glob("*/*.txt"))


def _case_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


@pytest.mark.parametrize("fixture", CASES, ids=_case_id)
def test_it_parses_the_fixture_to_its_expected_facts(fixture: Path) -> None:
    probe = PROBES_BY_NAME[fixture.parent.name]
    expected = json.loads(fixture.with_suffix(".json").read_text())
    assert probe.parse(fixture.read_text()).to_dict() == expected


@pytest.mark.parametrize("fixture", CASES, ids=_case_id)
def test_it_rebuilds_the_same_facts_from_their_stored_form(fixture: Path) -> None:
    facts = PROBES_BY_NAME[fixture.parent.name].parse(fixture.read_text())
    stored = json.loads(json.dumps(facts.to_dict()))
    assert type(facts).from_dict(stored) == facts


@pytest.mark.parametrize("probe", ROUTER_PROBES + HOST_PROBES + EVIDENCE_PROBES, ids=lambda p: p.name)
def test_it_has_a_fixture_for_every_probe(probe: object) -> None:
    assert list((FIXTURES / probe.name).glob("*.txt")), f"no fixture for {probe.name}"  # type: ignore[attr-defined]
