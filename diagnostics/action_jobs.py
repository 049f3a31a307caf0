"""Jobs of the error triage and the operator actions, on the `actions` queue, each with its enqueue helper.

`run_action(action_id)` runs a pending ActionRun (diagnostics.action_runner);
`gather_failure_evidence(evidence_id)` reads what CloudStack recorded about a failing router
(diagnostics.failure_evidence), then lets the matrix judge the router again so its verdicts
carry that evidence; `triage_failing_routers` (scheduled, vrconsole/schedules.py) does the
latter for every router that newly entered a failing condition, so an Error router has its
"why" before anyone clicks. Rows exist before their job is queued: a Redis that is away
leaves the row marked failed with the reason, never pending forever.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import django_rq
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q
from django.utils import timezone

from diagnostics.action_runner import execute_action
from diagnostics.actions import action_job_timeout, release_stale_runs
from diagnostics.evaluate import evaluate_router
from diagnostics.failure_evidence import failure_conditions, gather_failure_evidence
from diagnostics.models import ActionRun, ActionStatus, CollectionTrigger, EvidenceStatus, FailureEvidence
from vrconsole import events
from vrconsole.cloudstack.regions import configured_regions
from vrconsole.models import TRANSITIONAL_STATES, AuditEntry, Router, RouterState
from vrconsole.queues import ACTIONS

logger = logging.getLogger(__name__)

# Routers whose record is read per scheduled pass: a region-wide outage must not queue thousands at once.
TRIAGE_BATCH = 50


def run_action(action_id: int) -> str:
    """Run one pending action (job); returns its final status."""
    run = ActionRun.objects.get(pk=action_id)
    return execute_action(run).status


def enqueue_action(run: ActionRun) -> ActionRun:
    """Queue a pending action on the actions queue; a refused enqueue fails the row (and frees its slot)."""
    try:
        django_rq.get_queue(ACTIONS).enqueue(
            run_action, run.pk, job_timeout=action_job_timeout(), result_ttl=86400, failure_ttl=7 * 86400
        )
    except Exception as exc:  # Redis away: the row must not hold its network's slot forever
        ActionRun.objects.filter(pk=run.pk, status=ActionStatus.PENDING).update(
            status=ActionStatus.FAILED, error=f"could not queue the action: {exc}"[:2000], finished=timezone.now()
        )
        AuditEntry.record(
            "action.finished",
            user=run.requested_by,
            router=run.router,
            detail=f"run {run.pk}: could not queue: {exc}",
            outcome="failed",
        )
        raise
    return run


def gather_failure_evidence_job(evidence_id: int) -> str:
    """Read what CloudStack recorded about one router (job), then judge the router again with it."""
    evidence = FailureEvidence.objects.get(pk=evidence_id)
    try:
        gather_failure_evidence(evidence)
    finally:
        evidence.refresh_from_db()
        if evidence.is_done:
            try:
                evaluate_router(evidence.router_id)
            except Exception:  # the evidence is stored; a rule bug must not undo it
                logger.exception("evaluating router %s after evidence %s failed", evidence.router_id, evidence.pk)
            gathered: events.EvidenceGathered = {
                "type": "evidence.gathered",
                "router_id": evidence.router_id,
                "evidence_id": evidence.pk,
                "status": evidence.status,
                "error": evidence.error,
            }
            events.publish(events.router_actions_group(evidence.router_id), gathered)
    return evidence.status


def enqueue_failure_evidence(
    router: Router, trigger: str = CollectionTrigger.OPERATOR, user: User | AnonymousUser | None = None
) -> FailureEvidence:
    """A pending FailureEvidence row for the router, and its job on the actions queue."""
    evidence = FailureEvidence.objects.create(
        router=router,
        trigger=trigger,
        requested_by=user if isinstance(user, User) and user.is_authenticated else None,
        conditions=failure_conditions(router),
    )
    try:
        django_rq.get_queue(ACTIONS).enqueue(gather_failure_evidence_job, evidence.pk, result_ttl=3600)
    except Exception as exc:
        FailureEvidence.objects.filter(pk=evidence.pk).update(
            status=EvidenceStatus.FAILED, error=f"could not queue the read: {exc}"[:2000], finished=timezone.now()
        )
        raise
    return evidence


def triage_failing_routers() -> dict[str, int]:
    """Queue a read of CloudStack's record for each failing router that has none for its current state (job)."""
    released = release_stale_runs()
    regions = {region.name for region in configured_regions()}
    stuck_before = timezone.now() - timedelta(minutes=settings.STUCK_TRANSITION_MINUTES)
    # The conditions of failure_conditions, narrowed in SQL so a healthy fleet of thousands costs one query.
    candidates = (
        Router.objects.present()
        .filter(region__name__in=regions)
        .filter(
            Q(state__in=[RouterState.ERROR, RouterState.STOPPED])
            | Q(state__in=list(TRANSITIONAL_STATES), state_since__lt=stuck_before)
            | (Q(host__isnull=False) & ~Q(host__state__in=["Up", ""]))
        )
        .select_related("region", "host", "network", "vpc", "zone")
        .order_by("pk")
    )
    queued = 0
    for router in candidates.iterator():
        if queued >= TRIAGE_BATCH:
            break
        if not failure_conditions(router):
            continue
        since = router.state_since or router.first_seen
        if FailureEvidence.objects.filter(router=router, created__gte=since).exists():
            continue
        try:
            enqueue_failure_evidence(router, CollectionTrigger.SCHEDULE)
        except Exception as exc:  # Redis away: the next pass tries again
            logger.warning("could not queue the failure evidence of %s: %s", router.name, exc)
            break
        queued += 1
    return {"queued": queued, "released": released}
