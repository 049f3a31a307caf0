"""Why CloudStack failed a router: what it recorded, read through the API (and optionally its log).

A router in Error, Stopped while its network is up, stuck Starting/Stopping past
STUCK_TRANSITION_MINUTES, or on a host that is not Up cannot be looked inside over SSH, but
CloudStack has already written down why: the failed start's exception in its async job, an
ERROR event, the host's state and last ping, a system VM template that is not ready, a
network that needs a restart. `failure_conditions` says whether a router deserves this look;
`gather_failure_evidence` reads, through the same `cs` client as the sync:

- the router's events since FAILURE_EVIDENCE_HOURS before it entered its state
  (`listEvents resourceid=... resourcetype=DomainRouter` from 4.17, a keyword search on its
  name before), ERROR and WARN first;
- the async jobs on the router, its network or its VPC (`listAsyncJobs`, which has no
  per-resource filter), failed ones with `jobresult.errortext`, and any still pending;
- the host (`listHosts`: state, resource state, last ping), the zone's system VM template
  (`listTemplates templatefilter=system`), the network or VPC (state, `restartrequired`);
- optionally the management-server log lines naming the router (diagnostics.management_log).

Each part that cannot be read is recorded as unknown with its reason; the rest is kept.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from diagnostics.management_log import read_management_log
from diagnostics.models import EvidenceStatus, FailureEvidence
from vrconsole.cloudstack.client import JOB_FAILED, JOB_PENDING, ApiFailure, CloudStackClient, api_date
from vrconsole.cloudstack.regions import region_config
from vrconsole.models import Network, Router, RouterState

logger = logging.getLogger(__name__)

# Kept per part, newest and worst first: a router that flapped for a day has hundreds of events.
MAX_EVENTS = 40
MAX_JOBS = 20
TEXT_CHARS = 2000
# Network states in which CloudStack keeps the network's routers running (Network.State).
NETWORK_UP_STATES = frozenset({"Implemented", "Implementing"})
VPC_UP_STATES = frozenset({"Enabled"})
LEVEL_RANK = {"ERROR": 0, "WARN": 1, "WARNING": 1, "INFO": 2}

LogReader = Callable[[str, str, datetime | None], dict[str, Any]]


def failure_conditions(router: Router, now: datetime | None = None) -> list[str]:
    """Why this router deserves a look at what CloudStack recorded; empty when it does not."""
    now = now or timezone.now()
    conditions: list[str] = []
    since = f" since {router.state_since:%Y-%m-%d %H:%M:%S} UTC" if router.state_since else ""
    if router.state == RouterState.ERROR:
        conditions.append(f"in Error{since}")
    elif router.state == RouterState.STOPPED and _network_is_up(router):
        where = f"VPC {router.vpc.name}" if router.vpc is not None else f"network {router.network_label}"
        conditions.append(f"Stopped{since} while its {where} is up")
    elif router.is_stuck and router.state_since is not None:
        minutes = int((now - router.state_since).total_seconds() // 60)
        conditions.append(f"stuck in {router.state} for {minutes} min (limit {settings.STUCK_TRANSITION_MINUTES} min)")
    host = router.host
    if host is not None and host.state and host.state != "Up" and router.removed_at is None:
        conditions.append(f"its host {host.name or host.uuid} is {host.state}")
    return conditions


def _network_is_up(router: Router) -> bool:
    """A Stopped router is unexpected while CloudStack keeps its network (or VPC) implemented."""
    if router.vpc is not None:
        return router.vpc.state in VPC_UP_STATES
    network: Network | None = router.network
    return network is not None and network.state in NETWORK_UP_STATES


def _text(value: Any, limit: int = TEXT_CHARS) -> str:
    return str(value)[:limit] if value is not None else ""


def event_summary(item: dict[str, Any]) -> dict[str, Any]:
    """One listEvents item as kept: level, type, state, description, who, when."""
    return {
        "id": _text(item.get("id"), 64),
        "level": _text(item.get("level"), 16).upper(),
        "type": _text(item.get("type"), 64),
        "state": _text(item.get("state"), 32),
        "description": _text(item.get("description")),
        "username": _text(item.get("username"), 150),
        "created": _text(item.get("created"), 40),
    }


def sorted_events(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ERROR first, then WARN, then the rest; newest first within a level; at most MAX_EVENTS."""
    summaries = [event_summary(item) for item in items if isinstance(item, dict)]
    summaries.sort(key=lambda e: e["created"], reverse=True)
    summaries.sort(key=lambda e: LEVEL_RANK.get(e["level"], 3))
    return summaries[:MAX_EVENTS]


def job_summary(item: dict[str, Any]) -> dict[str, Any]:
    """One async job as kept: its command's short name, status, CloudStack's error text and times."""
    status = item.get("jobstatus")
    raw_result = item.get("jobresult")
    result: dict[str, Any] = raw_result if isinstance(raw_result, dict) else {}
    command = _text(item.get("cmd"), 255)
    return {
        "jobid": _text(item.get("jobid"), 64),
        "command": command.rsplit(".", 1)[-1],
        "status": {JOB_PENDING: "pending", JOB_FAILED: "failed", 1: "succeeded"}.get(status, "unknown")
        if isinstance(status, int)
        else "unknown",
        "instance_type": _text(item.get("jobinstancetype"), 32),
        "instance_id": _text(item.get("jobinstanceid"), 64),
        "errorcode": result.get("errorcode") if isinstance(result.get("errorcode"), int) else None,
        "errortext": _text(result.get("errortext")),
        "created": _text(item.get("created"), 40),
        "completed": _text(item.get("completed"), 40),
    }


def relevant_jobs(items: list[dict[str, Any]], ids: set[str]) -> list[dict[str, Any]]:
    """Failed and pending jobs on the router, its network or its VPC, newest first."""
    jobs = [
        job_summary(item)
        for item in items
        if isinstance(item, dict) and item.get("jobinstanceid") in ids and item.get("jobstatus") in (0, 2)
    ]
    jobs.sort(key=lambda job: job["created"], reverse=True)
    return jobs[:MAX_JOBS]


def failure_time(
    jobs: list[dict[str, Any]], events: list[dict[str, Any]], fallback: datetime | None
) -> datetime | None:
    """When CloudStack recorded the failure: the newest failed job on the router, else the newest ERROR event."""
    for job in jobs:
        if job["status"] == "failed":
            moment = api_date(job["completed"]) or api_date(job["created"])
            if moment is not None:
                return moment
    errors = [api_date(e["created"]) for e in events if e["level"] == "ERROR"]
    dated = [moment for moment in errors if moment is not None]
    return max(dated) if dated else fallback


def _host_summary(item: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "name", "state", "resourcestate", "lastpinged", "disconnected", "ipaddress", "hypervisor")
    return {key: _text(item.get(key), 255) for key in keys if item.get(key) is not None}


def _template_summary(items: list[dict[str, Any]], hypervisor: str) -> dict[str, Any]:
    matching = [t for t in items if str(t.get("hypervisor", "")).lower() == hypervisor.lower()]
    if not matching:
        return {"found": False, "hypervisor": hypervisor}
    ready = [t for t in matching if t.get("isready")]
    template = (ready or matching)[0]
    return {
        "found": True,
        "name": _text(template.get("name"), 255),
        "isready": bool(template.get("isready")),
        "status": _text(template.get("status"), 255),
        "hypervisor": hypervisor,
    }


def _network_summary(item: dict[str, Any], kind: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "id": _text(item.get("id"), 64),
        "name": _text(item.get("name"), 255),
        "state": _text(item.get("state"), 32),
        "restartrequired": bool(item.get("restartrequired")),
        "redundant": bool(item.get("redundantrouter") or item.get("redundantvpcrouter")),
    }


def _client_for(router: Router) -> CloudStackClient:
    return CloudStackClient(region_config(router.region.name), page_size=settings.CLOUDSTACK_PAGE_SIZE)


def gather_failure_evidence(
    evidence: FailureEvidence,
    client: CloudStackClient | None = None,
    read_log: LogReader = read_management_log,
) -> FailureEvidence:
    """Read what CloudStack recorded about the evidence row's router and store it on the row.

    Expected failures (the API refusing, timing out, answering garbage) make a part unknown;
    with every API part unknown the row ends `failed`. A bug ends it `errored` with the
    traceback and is re-raised.
    """
    router = Router.objects.select_related("region", "zone", "host", "network", "vpc").get(pk=evidence.router_id)
    now = timezone.now()
    evidence.status = EvidenceStatus.RUNNING
    evidence.router_state = router.state
    if not evidence.conditions:
        evidence.conditions = failure_conditions(router, now)
    evidence.save(update_fields=["status", "router_state", "conditions"])
    try:
        try:
            client = client or _client_for(router)
        except ImproperlyConfigured as exc:
            return _finish(evidence, EvidenceStatus.FAILED, error=f"the router's region is not configured: {exc}")
        asked = _read_api(evidence, router, client, now)
        if all(part in evidence.unknown for part in asked):
            evidence.management_log = {"configured": bool(settings.MANAGEMENT_SERVERS), "servers": [], "skipped": True}
            return _finish(evidence, EvidenceStatus.FAILED, error=evidence.unknown.get("events", ""))
        evidence.management_log = read_log(router.name, router.uuid, evidence.failure_time)
        for server in evidence.management_log.get("servers", []):
            if server.get("status") != "ok":
                evidence.unknown[f"log:{server.get('server')}"] = server.get("error", "")
        status = EvidenceStatus.PARTIAL if evidence.unknown else EvidenceStatus.COMPLETE
        return _finish(evidence, status)
    except Exception as exc:
        evidence.traceback = traceback.format_exc()
        _finish(evidence, EvidenceStatus.ERRORED, error=f"{type(exc).__name__}: {exc}")
        raise


def _read_api(evidence: FailureEvidence, router: Router, client: CloudStackClient, now: datetime) -> set[str]:
    """Read every API part onto the row; the parts that were asked (those that fail are in `unknown`)."""
    unknown: dict[str, str] = {}
    asked = {"version", "events", "jobs", "network"}
    entered = router.state_since or now
    since = min(entered, now) - timedelta(hours=settings.FAILURE_EVIDENCE_HOURS)
    try:
        evidence.cloudstack_version = client.cloudstack_version()[:64]
    except ApiFailure as exc:
        unknown["version"] = exc.reason
    try:
        evidence.events = sorted_events(
            client.router_events(router.uuid, router.name, since, evidence.cloudstack_version)
        )
    except ApiFailure as exc:
        unknown["events"] = exc.reason
    ids = {router.uuid}
    if router.network is not None:
        ids.add(router.network.uuid)
    if router.vpc is not None:
        ids.add(router.vpc.uuid)
    try:
        evidence.failed_jobs = relevant_jobs(client.async_jobs_since(since), ids)
    except ApiFailure as exc:
        unknown["jobs"] = exc.reason
    evidence.host = {}
    if router.host is not None:
        asked.add("host")
        try:
            hosts = client.list_all("listHosts", id=router.host.uuid)
            evidence.host = _host_summary(hosts[0]) if hosts else {"missing": True, "id": router.host.uuid}
        except ApiFailure as exc:
            unknown["host"] = exc.reason
    else:
        evidence.host = {"none": True}
    if router.zone is not None:
        asked.add("template")
        try:
            templates = client.list_all("listTemplates", templatefilter="system", zoneid=router.zone.uuid)
            evidence.template = _template_summary(templates, router.hypervisor or "")
        except ApiFailure as exc:
            unknown["template"] = exc.reason
    else:
        unknown["template"] = "the router has no zone in the inventory"
    try:
        if router.vpc is not None:
            item = client.fetch_owned("listVPCs", id=router.vpc.uuid)
            evidence.network = _network_summary(item, "vpc") if item else {"kind": "vpc", "missing": True}
        elif router.network is not None:
            item = client.fetch_owned("listNetworks", id=router.network.uuid)
            evidence.network = _network_summary(item, "network") if item else {"kind": "network", "missing": True}
        else:
            evidence.network = {"none": True}
    except ApiFailure as exc:
        unknown["network"] = exc.reason
    evidence.unknown = unknown
    evidence.failure_time = failure_time(evidence.failed_jobs, evidence.events, router.state_since)
    return asked


def _finish(evidence: FailureEvidence, status: str, error: str = "") -> FailureEvidence:
    evidence.status = status
    evidence.error = error[:4000]
    evidence.finished = timezone.now()
    evidence.save()
    return evidence
