"""The current state a live page starts from, read from the database as JSON-ready dicts.

A browser that opens (or reopens) a router's socket first gets this snapshot: the latest
collection with the probes recorded so far, the router's status and its open findings;
afterwards it only needs the events. Because a reconnect sends the snapshot again, a
browser that missed events while offline is never left showing a half-finished run. The
same module answers how long a collection usually takes, for the "Collect now" button.
"""

from __future__ import annotations

from statistics import median
from typing import Any

from diagnostics.models import (
    ActionRun,
    Collection,
    CollectionReason,
    CollectionStatus,
    Finding,
    ProbeResult,
    RouterHealth,
    RouterStatus,
)
from vrconsole.models import Router

# Recent successful runs whose median duration stands for "how long this usually takes".
ESTIMATE_SAMPLE = 5


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def probe_row(result: ProbeResult) -> dict[str, Any]:
    """One recorded probe as the live panel shows it (never its raw output)."""
    return {
        "probe": result.name,
        "status": "ok" if result.ok else "error",
        "duration_s": result.duration_s,
        "error": result.error,
    }


def collection_summary(collection: Collection) -> dict[str, Any]:
    """A collection's outcome fields, shaped like the `collection.finished` event plus timestamps."""
    requested_by = collection.requested_by.get_username() if collection.requested_by is not None else ""
    return {
        "collection_id": collection.pk,
        "router_id": collection.router_id,
        "status": collection.status,
        "trigger": collection.trigger,
        "requested_by": requested_by,
        "reason": collection.reason,
        "error": collection.error,
        "duration_s": collection.duration_s,
        "probe_errors": collection.probe_errors,
        "created": _iso(collection.created),
        "started": _iso(collection.started),
        "finished": _iso(collection.finished),
    }


def open_findings(router_id: int) -> list[dict[str, Any]]:
    """The router's open findings, worst first, shaped like the `open` list of `verdicts.updated`."""
    findings = Finding.objects.open().for_router(router_id).worst_first()
    return [
        {"rule": f.rule, "category": f.category, "severity": f.severity, "title": f.title}
        for f in findings.only("rule", "category", "severity", "title", "opened_at")
    ]


def router_state(router_id: int) -> dict[str, Any] | None:
    """The `state` message of a router's socket, or None when there is no such router."""
    if not Router.objects.filter(pk=router_id).exists():
        return None
    latest = Collection.objects.filter(router_id=router_id).select_related("requested_by").first()
    status = RouterHealth.objects.filter(router_id=router_id).values_list("status", flat=True).first()
    state: dict[str, Any] = {
        "type": "state",
        "router_id": router_id,
        "status": status or RouterStatus.UNKNOWN,
        "findings": open_findings(router_id),
        "collection": None,
        "probes": [],
    }
    if latest is not None:
        state["collection"] = collection_summary(latest)
        results = ProbeResult.objects.filter(collection=latest).only("name", "ok", "error", "duration_s")
        state["probes"] = [probe_row(result) for result in results.order_by("id")]
    return state


def usual_collection_seconds(router_id: int) -> int | None:
    """Median duration of the router's recent successful collections; None before its first."""
    durations = [
        duration
        for duration in Collection.objects.filter(
            router_id=router_id, status=CollectionStatus.SUCCEEDED, duration_s__isnull=False
        ).values_list("duration_s", flat=True)[:ESTIMATE_SAMPLE]
        if duration is not None
    ]
    return max(1, round(median(durations))) if durations else None


def reason_labels() -> dict[str, str]:
    """Failure reason code -> the words an operator reads."""
    return {str(value): str(label) for value, label in CollectionReason.choices}


# Recent runs a router's actions socket starts from.
RECENT_ACTION_RUNS = 10


def action_run_row(run: ActionRun) -> dict[str, Any]:
    """One action run as the actions panel shows it: who, what, why, how it went, its steps so far."""
    return {
        "action_id": run.pk,
        "action": f"{run.action}:{run.argument}" if run.argument else run.action,
        "label": run.label,
        "scope": run.scope,
        "target": run.target_name,
        "username": run.username,
        "reason": run.reason,
        "dry_run": run.dry_run,
        "status": run.status,
        "job": {
            "id": run.job_id or None,
            "status": run.job_status or ("succeeded" if run.status == "succeeded" else "failed" if run.is_done else ""),
            "error": run.error,
        },
        "final_state": run.final_state,
        "error": run.error,
        "evidence_collection_id": run.evidence_collection_id,
        "after_collection_id": run.after_collection_id,
        "audit_id": run.audit_entry_id,
        "created": _iso(run.created),
        "started": _iso(run.started),
        "finished": _iso(run.finished),
        "duration_s": run.duration_s,
        "progress": run.progress if isinstance(run.progress, list) else [],
    }


def actions_state(router_id: int) -> dict[str, Any] | None:
    """The `actions.state` message of a router's actions socket, or None when there is no such router."""
    if not Router.objects.filter(pk=router_id).exists():
        return None
    runs = ActionRun.objects.filter(router_id=router_id, dry_run=False)[:RECENT_ACTION_RUNS]
    return {"type": "actions.state", "router_id": router_id, "runs": [action_run_row(run) for run in runs]}
