"""Section splitting, line hygiene and the facts storage form."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from diagnostics.probes.base import Facts, ParseError, clean_line, split_sections


def test_it_splits_output_at_section_markers() -> None:
    sections = split_sections("==> a <==\none\n==> b <==\ntwo\nthree\n")
    assert (sections["a"].lines, sections["b"].lines) == (("one",), ("two", "three"))


def test_it_refuses_text_before_the_first_marker() -> None:
    with pytest.raises(ParseError, match="section marker first"):
        split_sections("stray\n==> a <==\n")


def test_it_refuses_a_repeated_marker() -> None:
    with pytest.raises(ParseError, match="appears twice"):
        split_sections("==> a <==\n==> a <==\n")


def test_it_refuses_output_missing_an_expected_section() -> None:
    with pytest.raises(ParseError, match="b"):
        split_sections("==> a <==\n", expected=("a", "b"))


def test_it_sees_a_missing_file_from_the_tools_complaint() -> None:
    sections = split_sections("==> /x <==\ncat: /x: No such file or directory\n==> /y <==\ncontent\n")
    assert (sections["/x"].missing, sections["/y"].missing) == (True, False)


def test_it_removes_control_characters_but_keeps_tabs() -> None:
    assert clean_line("a\x00b\x1b[0mc\td\r") == "ab[0mc\td"


def test_it_caps_line_length() -> None:
    assert len(clean_line("x" * 5000)) == 2000


@dataclass(frozen=True)
class _Inner(Facts):
    name: str
    values: tuple[int, ...]


@dataclass(frozen=True)
class _Outer(Facts):
    items: tuple[_Inner, ...]
    optional: _Inner | None
    counters: dict[str, int]


def test_it_round_trips_nested_facts_through_their_dict_form() -> None:
    facts = _Outer(items=(_Inner("a", (1, 2)),), optional=None, counters={"drop": 3})
    assert facts.to_dict() == {"items": [{"name": "a", "values": [1, 2]}], "optional": None, "counters": {"drop": 3}}
    assert _Outer.from_dict(facts.to_dict()) == facts


def test_it_does_not_take_a_log_line_about_a_missing_file_for_a_missing_log() -> None:
    text = "==> /var/log/dnsmasq.log <==\nFeb 20 10:59:30 dnsmasq[1014]: failed to open /etc/x: No such file or directory\n"
    assert split_sections(text)["/var/log/dnsmasq.log"].missing is False
