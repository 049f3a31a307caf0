"""The config-apply rules on cloud.log: vr_cfg.sh failures, tracebacks, ERROR lines, Delete rule storms."""

from __future__ import annotations

from datetime import timedelta

from diagnostics.matrix.rules import config_apply
from diagnostics.probes import logs
from tests.matrix.builders import NOW, context, parsed


def _logs(cloud_log: list[str]) -> dict:
    text = "==> /var/log/cloud.log <==\n" + "".join(f"|{line}\n" for line in cloud_log)
    for path in logs.FILES[1:]:
        text += f"==> {path} <==\n"
    return {"logs": logs.parse(text)}


def test_it_reports_a_vr_config_execution_failure_with_the_line() -> None:
    [verdict] = config_apply.APPLY_FAILED.check(
        context(facts={"logs": parsed("logs", "config_apply_failed_traceback")})
    )
    assert verdict.severity == "critical"
    assert any(
        "VR config: executing failed: /opt/cloud/bin/update_config.py forwarding_rules.json" in e
        for e in verdict.evidence
    )


def test_it_ignores_an_apply_failure_older_than_the_window() -> None:
    ctx = context(facts={"logs": parsed("logs", "config_apply_failed_traceback")}, now=NOW + timedelta(days=3))
    assert config_apply.APPLY_FAILED.check(ctx) == []


def test_it_reports_a_traceback_with_its_exception() -> None:
    [verdict] = config_apply.TRACEBACKS.check(context(facts={"logs": parsed("logs", "config_apply_failed_traceback")}))
    assert "line 4-9: KeyError: 'public_ip'" in verdict.evidence


def test_it_says_nothing_of_a_log_without_traceback() -> None:
    assert config_apply.TRACEBACKS.check(context(facts={"logs": parsed("logs", "benign_errors_only")})) == []


def test_it_reports_an_error_line_that_is_not_benign() -> None:
    line = "2025-03-18 22:00:00,000 ERROR    Command 'ip route add default via 198.51.100.1 table Table_eth2' returned non-zero exit status 2"
    [verdict] = config_apply.ERROR_LINES.check(context(facts=_logs([line])))
    assert line in verdict.evidence


def test_it_says_nothing_of_info_lines() -> None:
    line = "2025-03-18 22:00:00,000 INFO     Executing: ip route show table Table_eth2"
    assert config_apply.ERROR_LINES.check(context(facts=_logs([line]))) == []


def test_it_never_alarms_on_the_benign_error_lines() -> None:
    ctx = context(facts={"logs": parsed("logs", "benign_errors_only")})
    assert [r.id for r in config_apply.RULES if r.check(ctx)] == []


def test_it_reports_a_storm_of_deleted_rules() -> None:
    lines = [
        f"2025-03-18 22:00:{i % 60:02d},000 INFO     Delete rule -A FORWARD -d 10.1.1.{i % 250}/32 -j ACCEPT from table filter"
        for i in range(60)
    ]
    [verdict] = config_apply.DELETE_STORM.check(context(facts=_logs(lines)))
    assert verdict.evidence[0].startswith("60 'Delete rule' lines")


def test_it_accepts_a_few_deleted_rules() -> None:
    lines = [f"2025-03-18 22:00:0{i},000 INFO     Delete rule -A FORWARD -j ACCEPT from table filter" for i in range(5)]
    assert config_apply.DELETE_STORM.check(context(facts=_logs(lines))) == []


def test_it_says_nothing_without_logs() -> None:
    assert [r.id for r in config_apply.RULES if r.check(context(facts={}))] == []
