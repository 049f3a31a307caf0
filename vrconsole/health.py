"""Health of the console itself: /healthz (liveness) and /readyz (readiness), and the admin's status page.

/healthz says only that this web process answers: a load balancer or a container runtime
restarts a process that does not, and a database outage must not restart every web process.
/readyz says whether the console can do its work: the database and Redis answer (without them
a page cannot be served: 503), a worker reported in for every RQ queue, and how old the last
inventory sync and the last fleet sweep are (a dead worker or a stale sync is `degraded`, 200:
the web tier still serves pages, but the NOC's monitoring must see it). Both answer before the
host check and the HTTPS redirect (the middleware stands first), without a session, and say
nothing a stranger could use: no address, no version, no error text.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import timezone

logger = logging.getLogger(__name__)

HEALTH_PATHS = {"/healthz", "/readyz"}
# A worker's heartbeat older than this is a dead worker (RQ beats every few seconds while idle
# and at least every job timeout while busy; its own key expires at about this age).
WORKER_HEARTBEAT_MAX_AGE_SECONDS = 480
# A page the database or Redis could not serve asks the browser to try again after this long.
SERVICE_RETRY_SECONDS = 10


def _age_seconds(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else round(max((now - moment).total_seconds(), 0.0), 1)


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception as exc:  # any driver error means "not ready"; the reason goes to the log only
        logger.warning("readiness: the database does not answer: %s", type(exc).__name__)
        return False


def redis_ok() -> bool:
    import django_rq

    try:
        return bool(django_rq.get_connection("default").ping())
    except Exception as exc:
        logger.warning("readiness: Redis does not answer: %s", type(exc).__name__)
        return False


def queue_workers(now: datetime) -> dict[str, dict[str, Any]]:
    """Per RQ queue: workers listening and the age of the freshest heartbeat among them."""
    import django_rq
    from rq import Worker

    from vrconsole.queues import QUEUE_TIMEOUTS

    result: dict[str, dict[str, Any]] = {}
    for name in QUEUE_TIMEOUTS:
        queue = django_rq.get_queue(name)
        beats = [w.last_heartbeat for w in Worker.all(queue=queue) if w.last_heartbeat is not None]
        freshest = max(beats) if beats else None
        if freshest is not None and freshest.tzinfo is None:
            freshest = freshest.replace(tzinfo=UTC)
        age = _age_seconds(freshest, now)
        result[name] = {
            "workers": len(beats),
            "heartbeat_age_s": age,
            "ok": age is not None and age <= WORKER_HEARTBEAT_MAX_AGE_SECONDS,
        }
    return result


def last_sync_and_sweep(now: datetime) -> dict[str, dict[str, Any]]:
    """Age of the last successful sync of any region, and of the last sweep and how it ended.

    The sweep is judged from its Sweep row, not from collections: an operator's "Collect now"
    is not a sweep, and a sweep that overran its interval means the fleet needs more workers
    even though routers are still being collected.
    """
    from diagnostics.models import Sweep
    from vrconsole.models import SyncRun, SyncStatus

    sync = SyncRun.objects.filter(status=SyncStatus.OK).order_by("-started").first()
    sweep = Sweep.objects.order_by("-started", "-id").first()
    sync_age = _age_seconds((sync.finished or sync.started) if sync else None, now)
    sweep_age = _age_seconds(sweep.started if sweep else None, now)
    overran = bool(sweep and (sweep.overran or sweep.skipped_sweeps))
    # Stale once two intervals went by without one (a single slow run is not an alarm).
    return {
        "sync": {"age_s": sync_age, "ok": sync_age is not None and sync_age <= 2 * settings.SYNC_INTERVAL_SECONDS},
        "sweep": {
            "age_s": sweep_age,
            "in_flight": bool(sweep and sweep.finished is None),
            "overran": overran,
            "ok": sweep_age is not None and sweep_age <= 2 * settings.SWEEP_INTERVAL_SECONDS and not overran,
        },
    }


def readiness() -> tuple[int, dict[str, Any]]:
    """The readiness report and its HTTP status: 503 without the database or Redis, else 200."""
    now = timezone.now()
    report: dict[str, Any] = {"database": {"ok": database_ok()}, "redis": {"ok": redis_ok()}, "workers": {}}
    if report["redis"]["ok"]:
        try:
            report["workers"] = queue_workers(now)
        except Exception as exc:
            logger.warning("readiness: cannot read the RQ workers: %s", type(exc).__name__)
    report.update({"sync": {"age_s": None, "ok": False}, "sweep": {"age_s": None, "ok": False}})
    if report["database"]["ok"]:
        try:
            report.update(last_sync_and_sweep(now))
        except Exception as exc:
            logger.warning("readiness: cannot read the last sync and sweep: %s", type(exc).__name__)
    essential = report["database"]["ok"] and report["redis"]["ok"]
    workers_ok = bool(report["workers"]) and all(q["ok"] for q in report["workers"].values())
    everything = essential and workers_ok and report["sync"]["ok"] and report["sweep"]["ok"]
    report["status"] = "ok" if everything else ("degraded" if essential else "unavailable")
    return (200 if essential else 503), report


def _json(status: int, body: dict[str, Any]) -> HttpResponse:
    response = HttpResponse(json.dumps(body), status=status, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


class HealthCheckMiddleware:
    """Answers GET/HEAD /healthz and /readyz itself, before host validation and the HTTPS redirect."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.path not in HEALTH_PATHS:
            return self.get_response(request)
        if request.method not in {"GET", "HEAD"}:
            return _json(405, {"status": "method not allowed"})
        if request.path == "/healthz":
            return _json(200, {"status": "ok"})
        status, report = readiness()
        return _json(status, report)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: a database or Redis that went away is a clear 503 page (retry soon), not a 500.

    Called by Django inside the handling of the uncaught exception, which is still the current
    one. Rendered without the request's context: the context processors would ask the
    database again. Any other error keeps Django's plain 500 page.
    """
    import sys

    from django.db import InterfaceError, OperationalError
    from django.template import loader
    from django.views.defaults import server_error as django_server_error
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    exc = sys.exc_info()[1]
    if isinstance(exc, (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError)):
        service = "database" if isinstance(exc, (OperationalError, InterfaceError)) else "Redis"
        body = loader.render_to_string("503.html", {"service": service, "retry_after": SERVICE_RETRY_SECONDS})
        response = HttpResponse(body, status=503)
        response.headers["Retry-After"] = str(SERVICE_RETRY_SECONDS)
        return response
    return django_server_error(request)
