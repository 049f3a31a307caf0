"""The status a router shows: its verdict status while fresh, else unknown, and always why when unknown.

A status is as good as its data. The verdict of a collection older than two sweep intervals
(STALE_SWEEPS × SWEEP_INTERVAL_SECONDS) no longer says how the router is: it shows as unknown,
"stale". An unknown status always says why, in a few words on the wall and in full on hover:
not Running (routers are collected only while Running), never collected yet, outside
SSH_ALLOWED_NETWORKS (or no address to reach it by), the last collection failed (with its
reason), or stale. The queries of the fleet list (vrconsole.dashboard.queries) apply the same
horizon, so a filter, a count and a badge never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ObjectDoesNotExist
from django.utils import timezone

from diagnostics.access import plan_access
from diagnostics.models import CollectionReason, CollectionStatus, RouterHealth, RouterStatus
from diagnostics.ssh import AccessError, AccessReason
from vrconsole.models import Router, RouterState

# A verdict older than this many sweep intervals shows as unknown (stale).
STALE_SWEEPS = 2


def stale_before(now: datetime | None = None) -> datetime:
    """Evaluations before this moment are stale."""
    return (now or timezone.now()) - timedelta(seconds=STALE_SWEEPS * settings.SWEEP_INTERVAL_SECONDS)


def health_of(router: Any) -> RouterHealth | None:
    """The router's status row, or None when it was never evaluated (no query when select_related)."""
    try:
        return router.health
    except (ObjectDoesNotExist, AttributeError):
        return None


def effective_status(health: RouterHealth | None, now: datetime | None = None) -> str:
    """The verdict status while fresh; unknown when never evaluated or stale."""
    if health is None or health.evaluated_at < stale_before(now):
        return RouterStatus.UNKNOWN
    return health.status


@dataclass(frozen=True)
class UnknownReason:
    """Why a status is unknown: a few words for the wall, the full story for the tooltip."""

    short: str
    detail: str


def _span(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def _address_problem(router: Router) -> UnknownReason | None:
    try:
        plan_access(router)
    except AccessError as exc:
        if exc.reason == AccessReason.NOT_ALLOWED:
            return UnknownReason("outside SSH_ALLOWED_NETWORKS", exc.message)
        return UnknownReason("no address to reach it", exc.message)
    except ImproperlyConfigured as exc:
        return UnknownReason("SSH settings", str(exc))
    return None


def unknown_reason(router: Router, health: RouterHealth | None, now: datetime | None = None) -> UnknownReason | None:
    """Why the router's status is unknown, or None when it is not."""
    now = now or timezone.now()
    if effective_status(health, now) != RouterStatus.UNKNOWN:
        return None
    if router.state != RouterState.RUNNING:
        state = router.state or "in no state"
        return UnknownReason("not Running", f"CloudStack reports it {state}: routers are collected only while Running")
    if health is None or health.collection_id is None:
        problem = _address_problem(router)
        if problem is not None:
            return problem
        return UnknownReason(
            "never collected",
            f"not collected yet: the next sweep (every {settings.SWEEP_INTERVAL_SECONDS} s) will, "
            "or an operator's Collect now",
        )
    if health.collection_status in (CollectionStatus.FAILED, CollectionStatus.ERRORED):
        collection = health.collection
        reason = collection.reason if collection is not None else ""
        error = collection.error if collection is not None else ""
        if reason == CollectionReason.NOT_ALLOWED:
            return UnknownReason("outside SSH_ALLOWED_NETWORKS", error)
        label = CollectionReason(reason).label if reason in CollectionReason.values else health.collection_status
        return UnknownReason(f"collection failed: {label}", error or f"the last collection {health.collection_status}")
    if health.evaluated_at < stale_before(now):
        age = (now - health.evaluated_at).total_seconds()
        return UnknownReason(
            "stale",
            f"last collected {_span(age)} ago, more than {STALE_SWEEPS} sweep intervals "
            f"({STALE_SWEEPS} × {settings.SWEEP_INTERVAL_SECONDS} s); its status then was {health.status}",
        )
    return UnknownReason("no verdict", "the last evaluation gave no status")
