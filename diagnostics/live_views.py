"""The "Collect now" endpoint of the router page: an operator queues a collection of one router.

It answers JSON for the page's script, which then follows the run on the router's socket.
Only operators may ask (the probes are read-only, but each run opens SSH sessions to the
router and its host); every request an operator makes is written to the audit log, queued
or not. A router that already has a collection
queued or running gets that one's id back instead of a second run.
"""

from __future__ import annotations

import logging

from django.contrib.auth.models import User
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST

from diagnostics.jobs import enqueue_collect_router
from diagnostics.models import Collection, CollectionTrigger
from vrconsole.models import AuditEntry, Router
from vrconsole.roles import Capability, is_operator, requires

logger = logging.getLogger(__name__)


def _audit(request: HttpRequest, router: Router, detail: str, outcome: str) -> None:
    AuditEntry.record("collect.requested", user=request.user, router=router, detail=detail, outcome=outcome)


@requires(Capability.OPERATE, message="Only operators can start a collection.")
@require_POST
def collect_now(request: HttpRequest, router_id: int) -> JsonResponse:
    """Queue a collection of the router for the signed-in operator; JSON with the collection id."""
    user = request.user
    if not isinstance(user, User) or not is_operator(user):
        return JsonResponse({"error": "Only operators can start a collection."}, status=403)
    router = get_object_or_404(Router, pk=router_id)
    if router.removed_at is not None:
        return JsonResponse(
            {"error": "CloudStack no longer lists this router: there is nothing to collect from."}, status=409
        )
    running = Collection.objects.in_flight().filter(router=router).first()
    if running is not None:
        return JsonResponse(
            {
                "collection_id": running.pk,
                "status": running.status,
                "already_running": True,
                "message": f"A collection is already {running.status}; following it instead.",
            }
        )
    try:
        # Not in a transaction: the worker may load the Collection row as soon as the job is queued.
        collection = enqueue_collect_router(router, CollectionTrigger.OPERATOR, user)
    except Exception as exc:  # Redis away: the operator must hear it now, not find a silent page
        logger.warning("could not queue a collection of router %s: %s", router.pk, exc)
        _audit(request, router, f"could not queue: {exc}"[:2000], "error")
        return JsonResponse(
            {"error": "The job queue (Redis) did not accept the job; try again, and check the worker status."},
            status=503,
        )
    _audit(request, router, f"collection {collection.pk} queued", "queued")
    return JsonResponse({"collection_id": collection.pk, "status": collection.status, "already_running": False})
