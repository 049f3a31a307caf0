"""The router page's action endpoints: start an action, list the routers' offerings, read CloudStack's record.

They answer JSON for the page's script (static/js/actions.js), which then follows the run on
the router's actions socket. Only operators may use them (viewers get 403, like the socket's
4403); every request, accepted or refused, is in the audit log (diagnostics.actions writes it).
"""

from __future__ import annotations

import logging

from django import forms
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from diagnostics.action_jobs import enqueue_action, enqueue_failure_evidence
from diagnostics.actions import REASON_MAX, ActionRefused, parse_action_name, request_action
from diagnostics.models import CollectionTrigger, FailureEvidence
from vrconsole.cloudstack.client import ApiFailure, CloudStackClient
from vrconsole.cloudstack.regions import region_config
from vrconsole.models import AuditEntry, Router
from vrconsole.roles import Capability, is_operator, requires

logger = logging.getLogger(__name__)

NOT_OPERATOR = "Only operators can act on routers."


class ActionRequestForm(forms.Form):
    """What the confirmation dialog posts."""

    action = forms.CharField(max_length=200)
    offering = forms.CharField(max_length=255, required=False)
    reason = forms.CharField(max_length=REASON_MAX, strip=True)
    capture_evidence = forms.BooleanField(required=False)
    acknowledge = forms.BooleanField(required=False)


def _operator(request: HttpRequest) -> User | None:
    user = request.user
    return user if isinstance(user, User) and is_operator(user) else None


def _errors(form: forms.Form) -> str:
    return "; ".join(f"{field}: {' '.join(str(m) for m in messages)}" for field, messages in form.errors.items())


@requires(Capability.OPERATE, message=NOT_OPERATOR, audit="action.refused")
@require_POST
def start_action(request: HttpRequest, router_id: int) -> JsonResponse:
    """Record the action (refusals are 4xx with the reason) and queue it; 202 with the run's id."""
    user = _operator(request)
    router = get_object_or_404(Router, pk=router_id)
    if user is None:
        AuditEntry.record(
            "action.refused",
            user=request.user,
            router=router,
            detail=f"not an operator: {request.POST.get('action', '')}",
            outcome="forbidden",
        )
        return JsonResponse({"error": NOT_OPERATOR}, status=403)
    form = ActionRequestForm(request.POST)
    if not form.is_valid():
        if "reason" in form.errors:
            return JsonResponse({"error": "A reason is required: a ticket, or why this action."}, status=400)
        return JsonResponse({"error": _errors(form)}, status=400)
    data = form.cleaned_data
    try:
        key, argument = parse_action_name(data["action"])
        if key == "change-offering" and data["offering"]:
            argument = data["offering"]
        run = request_action(
            router,
            key,
            argument,
            reason=data["reason"],
            user=user,
            source="page",
            capture_evidence=data["capture_evidence"],
            acknowledged=data["acknowledge"],
        )
    except ActionRefused as exc:
        status = 409 if "already" in str(exc) else 400
        return JsonResponse({"error": str(exc)}, status=status)
    try:
        enqueue_action(run)
    except Exception as exc:  # Redis away: the row says so; the operator must hear it now
        logger.warning("could not queue action %s: %s", run.pk, exc)
        return JsonResponse(
            {"error": "The job queue (Redis) did not accept the action; nothing was done. Try again."}, status=503
        )
    return JsonResponse({"action_id": run.pk, "status": run.status, "label": run.label}, status=202)


@requires(Capability.OPERATE, message=NOT_OPERATOR)
@require_GET
def router_offerings(request: HttpRequest, router_id: int) -> JsonResponse:
    """The system offerings routers may use (listServiceOfferings issystem=true systemvmtype=domainrouter)."""
    if _operator(request) is None:
        return JsonResponse({"error": NOT_OPERATOR}, status=403)
    router = get_object_or_404(Router.objects.select_related("region"), pk=router_id)
    try:
        client = CloudStackClient(region_config(router.region.name))
        offerings = client.list_all("listServiceOfferings", issystem=True, systemvmtype="domainrouter")
    except ApiFailure as exc:
        return JsonResponse({"error": f"CloudStack did not list the offerings: {exc.reason}"}, status=502)
    except Exception as exc:  # a region no longer configured is the operator's to fix, not a 500
        return JsonResponse({"error": f"cannot ask CloudStack: {exc}"}, status=502)
    return JsonResponse(
        {
            "current": router.service_offering,
            "offerings": [
                {
                    "id": str(o.get("id", "")),
                    "name": str(o.get("name", "")),
                    "cpunumber": o.get("cpunumber"),
                    "memory": o.get("memory"),
                }
                for o in offerings
            ],
        }
    )


@requires(Capability.VIEW, post=Capability.OPERATE, message=NOT_OPERATOR)
@require_http_methods(["GET", "POST"])
def failure_evidence(request: HttpRequest, router_id: int) -> HttpResponse:
    """GET: the evidence panel's HTML (the page swaps it in after a read); POST: queue a read (operators)."""
    if request.method == "GET":
        router = get_object_or_404(Router.objects.select_related("host", "network", "vpc", "zone"), pk=router_id)
        return render(request, "diagnostics/_failure_evidence.html", {"router": router})
    return read_failure_evidence(request, router_id)


def read_failure_evidence(request: HttpRequest, router_id: int) -> JsonResponse:
    """Queue a read of what CloudStack recorded about the router now (events, jobs, host, template, log)."""
    user = _operator(request)
    if user is None:
        return JsonResponse({"error": NOT_OPERATOR}, status=403)
    router = get_object_or_404(Router.objects.select_related("region", "host", "network", "vpc"), pk=router_id)
    running = FailureEvidence.objects.in_flight().filter(router=router).first()
    if running is not None:
        return JsonResponse({"evidence_id": running.pk, "status": running.status, "already_running": True})
    try:
        evidence = enqueue_failure_evidence(router, CollectionTrigger.OPERATOR, user)
    except Exception as exc:
        logger.warning("could not queue the failure evidence of router %s: %s", router.pk, exc)
        return JsonResponse({"error": "The job queue (Redis) did not accept the read; try again."}, status=503)
    AuditEntry.record("evidence.requested", user=user, router=router, detail=f"failure evidence {evidence.pk} queued")
    return JsonResponse({"evidence_id": evidence.pk, "status": evidence.status, "already_running": False}, status=202)
