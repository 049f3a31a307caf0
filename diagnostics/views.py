"""Diagnostics views: the matrix reference page, a router's findings and chart data as JSON, its
samples as CSV/JSON exports, one collection's page, and config snapshot diffs.

The router page itself is vrconsole's view rendering `diagnostics/router_detail.html`, whose
data comes from the `verdict_tags` template tags. Login is enforced by LoginRequiredMiddleware.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render

from diagnostics import export
from diagnostics.charts import build_router_figures
from diagnostics.history import RangeError, parse_range, router_history
from diagnostics.matrix.thresholds import thresholds as configured_thresholds
from diagnostics.models import (
    Collection,
    ConfigSnapshot,
    Finding,
    FindingEvent,
    HealthSample,
    ProbeResult,
    RouterHealth,
    VerdictRecord,
)
from diagnostics.rulebook import TUNING_SETTING, rulebook
from diagnostics.series import METRICS
from diagnostics.snapshots import unified_diff
from vrconsole.models import AuditEntry, Router
from vrconsole.roles import Capability, requires


@requires(Capability.VIEW)
def matrix_page(request: HttpRequest) -> HttpResponse:
    """Every rule of the matrix, by category: what it checks, reads, tunes on, and the remedy."""
    sections = rulebook()
    context = {
        "sections": sections,
        "rule_count": sum(len(section.entries) for section in sections),
        "tuning_setting": TUNING_SETTING,
    }
    return render(request, "diagnostics/matrix.html", context)


def _finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "category": finding.category,
        "categories": finding.category_list,
        "severity": finding.severity,
        "title": finding.title,
        "evidence": finding.evidence,
        "remediation": finding.remediation,
        "action": finding.action,
        "opened_at": finding.opened_at.isoformat(),
        "first_seen": finding.first_seen.isoformat(),
        "last_seen": finding.last_seen.isoformat(),
        "resolved_at": finding.resolved_at.isoformat() if finding.resolved_at else None,
        "times_opened": finding.times_opened,
    }


@requires(Capability.VIEW)
def router_findings_json(request: HttpRequest, uuid: str) -> JsonResponse:
    """The router's status and open findings, worst first, for pages that refresh them in place."""
    router = Router.objects.with_uuid(uuid).first()
    if router is None:
        raise Http404("No router with this uuid")
    health = RouterHealth.objects.filter(router=router).first()
    return JsonResponse(
        {
            "router": {"id": router.pk, "uuid": router.uuid, "name": router.name},
            "status": health.status if health is not None else "unknown",
            "status_since": health.status_since.isoformat() if health is not None else None,
            "findings": [_finding_json(f) for f in Finding.objects.open().for_router(router).worst_first()],
        }
    )


# --- History: charts, exports, collections, snapshot diffs ---------------------------------


def _router_or_404(uuid: str) -> Router:
    router = Router.objects.with_uuid(uuid).first()
    if router is None:
        raise Http404("No router with this uuid")
    return router


@requires(Capability.VIEW)
def router_history_json(request: HttpRequest, uuid: str) -> JsonResponse:
    """The router's chart figures for a range (`range=1h|24h|7d|30d` or `start`/`end`), downsampled."""
    router = _router_or_404(uuid)
    try:
        time_range = parse_range(request.GET)
    except RangeError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    history = router_history(router, time_range)
    payload = {
        "router": router.name or router.uuid,
        "range": {
            "name": time_range.name,
            "start": time_range.start.isoformat(),
            "end": time_range.end.isoformat(),
        },
        "bucket_seconds": history.width,
        "source": history.source,
        "samples": history.total_samples,
        "note": history.note,
        "figures": build_router_figures(history, configured_thresholds()),
    }
    return JsonResponse(payload, json_dumps_params={"separators": (",", ":")})


@requires(Capability.VIEW)
def router_samples_export(request: HttpRequest, uuid: str, fmt: str) -> HttpResponse | StreamingHttpResponse:
    """The router's samples of a range as CSV or JSON (`resolution=raw`, or `hourly` rollups), streamed."""
    router = _router_or_404(uuid)
    try:
        time_range = parse_range(request.GET)
    except RangeError as exc:
        return HttpResponse(f"{exc}\n", status=400, content_type="text/plain; charset=utf-8")
    resolution = request.GET.get("resolution", "raw")
    if resolution not in export.RESOLUTIONS:
        return HttpResponse(
            f"resolution must be one of {', '.join(export.RESOLUTIONS)}\n", status=400, content_type="text/plain"
        )
    AuditEntry.record(
        "history.export",
        user=request.user,
        router=router,
        detail=f"{fmt} {resolution} {time_range.start.isoformat()}..{time_range.end.isoformat()}",
        outcome="ok",
    )
    stream = (
        export.csv_rows(router, time_range, resolution)
        if fmt == "csv"
        else export.json_chunks(router, time_range, resolution)
    )
    response = StreamingHttpResponse(
        stream, content_type="text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    )
    stamp = f"{time_range.start:%Y%m%dT%H%M}-{time_range.end:%Y%m%dT%H%M}"
    filename = f"{export.safe_name(router.name or router.uuid)}-{resolution}-{stamp}.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@requires(Capability.VIEW)
def collection_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One collection: outcome, the numbers it gave, its verdicts and each probe's output."""
    collection = Collection.objects.select_related("router", "requested_by").filter(pk=pk).first()
    if collection is None:
        raise Http404("No such collection (retention may have pruned it)")
    context = {
        "collection": collection,
        "router": collection.router,
        "sample": HealthSample.objects.filter(collection=collection).first(),
        "verdicts": list(VerdictRecord.objects.filter(collection=collection).order_by("id")),
        "probes": list(ProbeResult.objects.filter(collection=collection).order_by("id")),
        "events": list(FindingEvent.objects.filter(collection=collection).order_by("at", "id")),
        "series": METRICS,
    }
    return render(request, "diagnostics/collection_detail.html", context)


@requires(Capability.VIEW)
def snapshot_diff(request: HttpRequest, uuid: str) -> HttpResponse:
    """A unified diff between two of the router's config snapshots (`a` older, `b` newer), secrets redacted."""
    router = _router_or_404(uuid)
    snapshots = list(
        ConfigSnapshot.objects.filter(router=router)
        .only("id", "kind", "taken_at", "sha256")
        .order_by("-taken_at", "-id")
    )
    chosen = {}
    errors = []
    for name in ("a", "b"):
        raw = request.GET.get(name, "")
        if not raw:
            continue
        if not raw.isdigit():
            errors.append(f"snapshot {name}: {raw[:20]!r} is not a snapshot number")
            continue
        snapshot = ConfigSnapshot.objects.filter(router=router, pk=int(raw)).first()
        if snapshot is None:
            errors.append(f"snapshot {name}: #{raw} is not a snapshot of this router (or retention pruned it)")
            continue
        chosen[name] = snapshot
    lines = []
    older = newer = None
    if len(chosen) == 2:
        older, newer = sorted(chosen.values(), key=lambda s: (s.taken_at, s.pk))
        lines = unified_diff(older, newer)
    context = {
        "router": router,
        "snapshots": snapshots,
        "older": older,
        "newer": newer,
        "lines": lines,
        "errors": errors,
        "selected_a": chosen.get("a"),
        "selected_b": chosen.get("b"),
        "kinds_differ": older is not None and newer is not None and older.kind != newer.kind,
    }
    return render(request, "diagnostics/snapshot_diff.html", context)
