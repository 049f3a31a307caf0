"""Rules on applying CloudStack's configuration inside the router, read from cloud.log.

`vr_cfg.sh` writes `VR config: executing failed` when a pushed file did not apply, the
Python scripts leave tracebacks, and `CsNetfilters.compare` logs `Delete rule` for every
rule it removes. Three ERROR lines are logged on every healthy router (§5.23): the log
probe marks them benign and these rules never count them.
"""

from __future__ import annotations

from diagnostics.matrix.base import RouterContext, Rule, Verdict
from diagnostics.matrix.evidence import facts_of, quoted, recent_lines, verdict
from diagnostics.matrix.rules.api_state import restart_action
from diagnostics.probes import logs as log_kinds

CLOUD_LOG = "/var/log/cloud.log"


def _cloud_log_recent(ctx: RouterContext) -> list:
    logs = facts_of(ctx, "logs")
    tail = logs.file(CLOUD_LOG) if logs is not None else None
    if tail is None or tail.missing:
        return []
    return recent_lines(tail.lines, ctx, ctx.threshold("config_error_window_hours"))


def _apply_failed(ctx: RouterContext) -> list[Verdict]:
    failures = [line for line in _cloud_log_recent(ctx) if line.kind == log_kinds.CONFIG_APPLY_FAILED]
    if not failures:
        return []
    hours = ctx.threshold("config_error_window_hours")
    evidence = [
        f"{len(failures)} 'VR config: executing failed' line(s) in cloud.log in the last {hours:g} h",
        *quoted(line.text for line in failures),
    ]
    remediation = (
        "Part of the configuration CloudStack pushed did not apply, so the router's rules differ from CloudStack's. "
        "1. Read the lines before the failure in /var/log/cloud.log (traceback, failing command). 2. Fix the cause "
        "(full disk, a rule CloudStack cannot express, a script bug). 3. Re-push everything: "
        f"{restart_action(ctx.router)}."
    )
    return [verdict(APPLY_FAILED, "configuration apply failed (vr_cfg.sh)", evidence, remediation)]


APPLY_FAILED = Rule(
    id="config-apply-failed",
    category="config-apply",
    severity="critical",
    summary="cloud.log has `VR config: executing failed` within the recent window.",
    remedy="Read the lines before it in cloud.log, fix the cause, then restart the network with cleanup to re-push.",
    reads=("facts:logs",),
    thresholds=("config_error_window_hours",),
    check=_apply_failed,
)


def _tracebacks(ctx: RouterContext) -> list[Verdict]:
    logs = facts_of(ctx, "logs")
    tail = logs.file(CLOUD_LOG) if logs is not None else None
    if tail is None or not tail.tracebacks:
        return []
    recent_numbers = {line.number for line in _cloud_log_recent(ctx)}
    recent = [tb for tb in tail.tracebacks if tb.first_line in recent_numbers]
    if not recent:
        return []
    by_number = {line.number: line.text for line in tail.lines}
    evidence = [
        f"{len(recent)} Python traceback(s) in cloud.log in the last {ctx.threshold('config_error_window_hours'):g} h"
    ]
    for tb in recent[:5]:
        before = by_number.get(tb.first_line - 1, "")
        evidence.append(f"line {tb.first_line}-{tb.last_line}: {tb.exception or '(no exception line)'}")
        if before:
            evidence.append(f"  after: {before}")
    remediation = (
        "A configuration script crashed: the file it was processing is not (fully) applied. Read the traceback in "
        "/var/log/cloud.log and the JSON it names under /var/cache/cloud/processed; fix the cause, then "
        f"{restart_action(ctx.router)} to re-push the whole configuration."
    )
    return [verdict(TRACEBACKS, "configuration script crashed (traceback in cloud.log)", evidence, remediation)]


TRACEBACKS = Rule(
    id="config-script-traceback",
    category="config-apply",
    severity="warning",
    summary="cloud.log has a Python traceback from the configuration scripts within the recent window.",
    remedy="Read the traceback and the file it processed; fix, then restart the network with cleanup.",
    reads=("facts:logs",),
    thresholds=("config_error_window_hours",),
    check=_tracebacks,
)


def _error_lines(ctx: RouterContext) -> list[Verdict]:
    errors = [
        line
        for line in _cloud_log_recent(ctx)
        if line.level in ("ERROR", "CRITICAL") and not line.benign and line.kind == log_kinds.ERROR
    ]
    if not errors:
        return []
    evidence = [
        f"{len(errors)} ERROR line(s) in cloud.log in the last {ctx.threshold('config_error_window_hours'):g} h (benign ones left out)",
        *quoted(line.text for line in errors),
    ]
    return [verdict(ERROR_LINES, "errors while applying configuration", evidence)]


ERROR_LINES = Rule(
    id="config-apply-errors",
    category="config-apply",
    severity="warning",
    summary="cloud.log has ERROR lines, other than the known benign ones, within the recent window.",
    remedy=(
        "Read each line: a failing command means part of a rule set did not apply. Fix the cause, then restart "
        "the network with cleanup (restartNetwork / restartVPC cleanup=true) to re-push."
    ),
    reads=("facts:logs",),
    thresholds=("config_error_window_hours",),
    check=_error_lines,
)


def _delete_storm(ctx: RouterContext) -> list[Verdict]:
    deletes = [line for line in _cloud_log_recent(ctx) if line.kind == log_kinds.DELETE_RULE]
    limit = ctx.threshold("delete_rule_storm_count")
    if len(deletes) <= limit:
        return []
    evidence = [
        f"{len(deletes)} 'Delete rule' lines in cloud.log in the last {ctx.threshold('config_error_window_hours'):g} h (limit {limit:g})",
        *quoted((line.text for line in deletes), 5),
    ]
    remediation = (
        "The rule engine keeps removing rules it did not expect: something else edits iptables (a hand change, a "
        "script), or CloudStack pushes conflicting rule sets. Compare two iptables snapshots on this page, find "
        "who adds the deleted rules, and stop it; then restart the network with cleanup."
    )
    return [verdict(DELETE_STORM, f"{len(deletes)} iptables rules deleted by the VR scripts", evidence, remediation)]


DELETE_STORM = Rule(
    id="iptables-rule-delete-storm",
    category="config-apply",
    severity="warning",
    summary="More `Delete rule` lines in cloud.log than the threshold within the recent window.",
    remedy="Find what keeps adding rules the VR does not expect; compare iptables snapshots.",
    reads=("facts:logs",),
    thresholds=("config_error_window_hours", "delete_rule_storm_count"),
    check=_delete_storm,
)

RULES = (APPLY_FAILED, TRACEBACKS, ERROR_LINES, DELETE_STORM)
