"""Hostile log lines (markup, control characters, 100 kB lines) never break a rule; evidence carries them as is, bounded."""

from __future__ import annotations

import re

from diagnostics.matrix import evaluate
from diagnostics.matrix.evidence import EVIDENCE_CHARS, EVIDENCE_ITEMS, bounded, quoted
from diagnostics.probes import logs
from diagnostics.probes.logs import LogLine, LogsFacts, LogTail
from tests.matrix.builders import context, isolated_router, parsed

MARKUP = "<script>alert('x')</script>"
CONTROL = "\x1b[31m\x07\x00\r"
HUGE = "A" * 100_000


def _line(number: int, kind: str, text: str, program: str = "", level: str = "") -> LogLine:
    return LogLine(number, text, "2025-03-18T22:00:00.000", level, program, kind, True, False)


def _hostile_logs() -> LogsFacts:
    cloud = (
        _line(1, logs.CONFIG_APPLY_FAILED, f"VR config: executing failed: {MARKUP}{CONTROL}{HUGE}"),
        _line(2, logs.ERROR, f"ERROR {MARKUP}{CONTROL}{HUGE}", level="ERROR"),
        *(_line(3 + i, logs.DELETE_RULE, f"Delete rule {MARKUP}{HUGE} from table nat") for i in range(200)),
    )
    daemon = (
        _line(1, logs.CONNTRACK_TABLE_FULL, f"kernel: nf_conntrack: table full {MARKUP}{CONTROL}{HUGE}"),
        _line(2, logs.IKE_ERROR, f"charon: NO_PROPOSAL_CHOSEN {MARKUP}{HUGE}", program="charon"),
        _line(3, logs.VRRP_MISMATCH, f"received an unexpected ip number count {MARKUP}{HUGE}"),
    )
    dnsmasq = (_line(1, logs.DHCP_NO_ADDRESS, f"DHCPDISCOVER(eth0) {MARKUP}{CONTROL}{HUGE} no address available"),)

    def tail(path: str, lines: tuple[LogLine, ...]) -> LogTail:
        return LogTail(path, False, lines, (), len(lines), 0, lines[0].timestamp, lines[-1].timestamp)

    return LogsFacts(
        files=(
            tail("/var/log/cloud.log", cloud),
            tail("/var/log/dnsmasq.log", dnsmasq),
            tail("/var/log/routerServiceMonitor.log", (_line(1, logs.SERVICE_ALERT, f"[ALERT] {MARKUP}"),)),
            tail("/var/log/daemon.log", daemon),
        )
    )


def _verdicts() -> list:
    router = isolated_router(is_redundant=True, redundant_state="PRIMARY")
    facts = {"logs": _hostile_logs(), "vrrp": parsed("vrrp", "isolated_primary")}
    return evaluate(context(router, facts))


def test_it_evaluates_every_rule_on_hostile_log_lines() -> None:
    verdicts = _verdicts()
    assert [v.title for v in verdicts if v.title.startswith("rule ")] == []
    assert {
        "config-apply-failed",
        "config-apply-errors",
        "iptables-rule-delete-storm",
        "conntrack-table-full-logged",
        "ipsec-negotiation-errors",
        "dhcp-no-address-available",
    } <= {v.rule for v in verdicts}


def test_it_bounds_every_evidence_item() -> None:
    assert all(len(item) <= EVIDENCE_CHARS for v in _verdicts() for item in v.evidence)


def test_it_bounds_the_number_of_evidence_items() -> None:
    assert all(len(v.evidence) <= EVIDENCE_ITEMS + 4 for v in _verdicts())


def test_it_drops_control_characters_from_evidence() -> None:
    assert not any(re.search(r"[\x00-\x08\x0a-\x1f\x7f]", item) for v in _verdicts() for item in v.evidence)


def test_it_carries_markup_as_is_for_the_page_to_escape() -> None:
    assert any(MARKUP in item for v in _verdicts() for item in v.evidence)


def test_it_parses_and_judges_the_hostile_fixture_without_error() -> None:
    verdicts = evaluate(context(isolated_router(), {"logs": parsed("logs", "hostile_lines")}))
    assert [v.title for v in verdicts if v.title.startswith("rule ")] == []


def test_it_cuts_a_long_line_and_marks_the_cut() -> None:
    assert bounded(HUGE) == "A" * (EVIDENCE_CHARS - 1) + "…"


def test_it_says_how_many_lines_it_left_out() -> None:
    assert quoted([str(i) for i in range(20)], 3) == ["0", "1", "2", "... and 17 more"]
