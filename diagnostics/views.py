"""Diagnostics views: the troubleshooting matrix reference page, and a router's findings as JSON.

The router page itself is vrconsole's view rendering `diagnostics/router_detail.html`, whose
data comes from the `verdict_tags` template tags. Login is enforced by LoginRequiredMiddleware.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from diagnostics.models import Finding, RouterHealth
from diagnostics.rulebook import TUNING_SETTING, rulebook
from vrconsole.models import Router


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
