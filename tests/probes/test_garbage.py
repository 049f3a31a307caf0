"""Every parser, fed arbitrary text, returns facts or raises ParseError and nothing else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diagnostics.probes import EVIDENCE_PROBES, HOST_PROBES, PROBES_BY_NAME, ROUTER_PROBES, Probe
from diagnostics.probes.base import ParseError

ALL_PROBES = ROUTER_PROBES + HOST_PROBES + EVIDENCE_PROBES
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
GARBAGE = settings(
    max_examples=int(os.environ.get("PROBE_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

decoded_bytes = st.binary(max_size=600).map(lambda b: b.decode("utf-8", errors="replace"))
line = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["|", "| x", "[", "{}", "[{}]", "0", "-1", "COMMIT", "*nat", ":INPUT DROP [0:0]", "-A X -j Y"]),
)


def _sections(names: list[str]) -> st.SearchStrategy[str]:
    body = st.lists(line, max_size=6).map("\n".join)
    return st.tuples(*[body for _ in names]).map(
        lambda bodies: "".join(f"==> {n} <==\n{b}\n" for n, b in zip(names, bodies, strict=True))
    )


def _marker_names(probe: Probe) -> list[str]:
    """The section names a probe's fixture uses, so garbage gets past the marker check."""
    fixture = next(iter(sorted((FIXTURES / probe.name).glob("*.txt"))), None)
    if fixture is None:
        return []
    return [ln[4:-4] for ln in fixture.read_text().splitlines() if ln.startswith("==> ") and ln.endswith(" <==")]


def _mutated_fixture(probe: Probe) -> st.SearchStrategy[str]:
    fixture = next(iter(sorted((FIXTURES / probe.name).glob("*.txt"))))
    lines = fixture.read_text().splitlines()
    return st.lists(st.sampled_from(lines) | line, max_size=len(lines) + 5).map("\n".join)


def _assert_clean(probe: Probe, text: str) -> None:
    try:
        probe.parse(text)
    except ParseError:
        pass


@pytest.mark.parametrize("probe", ALL_PROBES, ids=lambda p: p.name)
def test_it_survives_arbitrary_text(probe: Probe) -> None:
    @GARBAGE
    @given(st.one_of(st.text(max_size=400), decoded_bytes))
    def check(text: str) -> None:
        _assert_clean(probe, text)

    check()


@pytest.mark.parametrize("probe", ALL_PROBES, ids=lambda p: p.name)
def test_it_survives_garbage_inside_well_formed_sections(probe: Probe) -> None:
    names = _marker_names(probe)
    strategy = _sections(names) if names else st.lists(line, max_size=10).map("\n".join)

    @GARBAGE
    @given(strategy)
    def check(text: str) -> None:
        _assert_clean(probe, text)

    check()


@pytest.mark.parametrize("probe", ALL_PROBES, ids=lambda p: p.name)
def test_it_survives_shuffled_and_mixed_fixture_lines(probe: Probe) -> None:
    @GARBAGE
    @given(_mutated_fixture(probe))
    def check(text: str) -> None:
        _assert_clean(probe, text)

    check()


def test_it_refuses_json_nested_deeper_than_the_decoder_can_go() -> None:
    deep = "[" * 100000 + "]" * 100000
    with pytest.raises(ParseError):
        PROBES_BY_NAME["interfaces"].parse(f"==> addr <==\n{deep}\n==> link <==\n[]\n")


@pytest.mark.parametrize("probe", ALL_PROBES, ids=lambda p: p.name)
def test_it_survives_odd_digits_and_huge_numbers_in_fixture_lines(probe: Probe) -> None:
    fixture = sorted((FIXTURES / probe.name).glob("*.txt"))[0].read_text()
    for odd in ("²", "١٢", "9" * 5000):
        text = "\n".join(
            line if line.startswith("==> ") else " ".join(odd if w.isdigit() else w for w in line.split(" "))
            for line in fixture.splitlines()
        )
        _assert_clean(probe, text)
