"""Running the troubleshooting matrix on a router from the database, and storing what it says.

`build_context` turns the inventory rows (router, NICs, host, zone, network) and the latest
finished collection (its stored facts read back into the probes' dataclasses), the one
before it and the redundant peers' latest collections into the plain `RouterContext` the
rules read. `evaluate_router` runs the registered rules on it, keeps every verdict on the
collection, folds them into findings (diagnostics.findings), rewrites the router's status
row and announces the result: `verdicts.updated` to the router's group and, when the
router's fleet row would read differently (status, open categories, why it is unknown, no
longer stale), `fleet.status` to the `fleet` group. The rules
and thresholds are arguments (the registry and the configured thresholds by default), so a
caller or a test chooses what judges. After a collection the jobs call
`evaluate_after_collection`, which never raises: an evaluation bug is logged and costs
neither the collection nor the worker.
"""

from __future__ import annotations

import functools
import logging
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from diagnostics import findings, matrix, notifications
from diagnostics.matrix.base import (
    CollectionView,
    FailureView,
    NicView,
    PeerView,
    RouterContext,
    RouterView,
    Rule,
    Verdict,
)
from diagnostics.matrix.thresholds import thresholds as configured_thresholds
from diagnostics.models import (
    Collection,
    CollectionStatus,
    FailureEvidence,
    Finding,
    Notification,
    ProbeResult,
)
from diagnostics.notify_jobs import enqueue_deliveries
from diagnostics.probes import PROBES_BY_NAME
from diagnostics.router_status import stale_before
from vrconsole import events
from vrconsole.models import Router

logger = logging.getLogger(__name__)


# --- Building the context ----------------------------------------------------------------


def nic_view(nic: Any) -> NicView:
    return NicView(
        position=nic.position,
        traffic_type=nic.traffic_type,
        ip_address=nic.ip_address,
        netmask=nic.netmask,
        gateway=nic.gateway,
        mac_address=nic.mac_address,
        mtu=nic.mtu,
        network_uuid=nic.network_uuid,
        is_default=nic.is_default,
        broadcast_uri=nic.broadcast_uri,
    )


def router_view(router: Router) -> RouterView:
    """What CloudStack says about the router, flattened from its row and relations."""
    host = router.host
    network = router.network
    checks = tuple(check for check in router.health_checks if isinstance(check, dict))
    services = network.services if network is not None and isinstance(network.services, list) else []
    template = router.zone.system_template_for(router.hypervisor) if router.zone is not None else None
    return RouterView(
        id=router.pk,
        uuid=router.uuid,
        name=router.name,
        state=router.state,
        state_since=router.state_since,
        router_type=router.router_type,
        hypervisor=router.hypervisor,
        is_redundant=router.is_redundant,
        redundant_state=router.redundant_state,
        template_version=router.template_version,
        scripts_version=router.scripts_version,
        software_version=router.software_version,
        requires_upgrade=router.requires_upgrade,
        link_local_ip=router.link_local_ip,
        guest_ip=router.guest_ip,
        public_ip=router.public_ip,
        health_checks=checks,
        nics=tuple(nic_view(nic) for nic in router.nics.order_by("position", "pk")),
        zone_name=router.zone.name if router.zone is not None else "",
        host_name=host.name if host is not None else router.host_name,
        host_ip=host.ipaddress if host is not None else None,
        host_state=host.state if host is not None else "",
        network_name=router.network_label,
        egress_default_allow=network.egress_default_policy if network is not None else None,
        network_services=tuple(str(name) for name in services),
        zone_system_template_ready=bool(template.get("isready")) if template is not None else None,
        zone_system_template_name=str(template.get("name") or "") if template is not None else "",
        network_state=(router.vpc.state if router.vpc is not None else network.state if network is not None else ""),
    )


def current_failure_evidence(router: Router) -> FailureEvidence | None:
    """The latest gathered evidence of the router's current episode (read since it entered its state)."""
    evidence = FailureEvidence.objects.gathered().filter(router=router)
    if router.state_since is not None:
        evidence = evidence.filter(created__gte=router.state_since)
    return evidence.order_by("-created", "-id").first()


def _items(value: Any) -> tuple[dict[str, Any], ...]:
    return tuple(item for item in value if isinstance(item, dict)) if isinstance(value, list) else ()


def failure_view(evidence: FailureEvidence) -> FailureView:
    """Stored evidence as the rules read it (odd stored shapes cost a part, never the evaluation)."""
    log = evidence.management_log if isinstance(evidence.management_log, dict) else {}
    entries = [
        {**entry, "server": server.get("server", "")}
        for server in log.get("servers", [])
        if isinstance(server, dict)
        for entry in server.get("entries", [])
        if isinstance(entry, dict)
    ]
    return FailureView(
        gathered_at=evidence.finished or evidence.created,
        events=_items(evidence.events),
        jobs=_items(evidence.failed_jobs),
        host=evidence.host if isinstance(evidence.host, dict) else {},
        template=evidence.template if isinstance(evidence.template, dict) else {},
        network=evidence.network if isinstance(evidence.network, dict) else {},
        log_entries=tuple(entries),
        log_configured=bool(log.get("configured")),
        unknown={str(k): str(v) for k, v in evidence.unknown.items()} if isinstance(evidence.unknown, dict) else {},
        failure_time=evidence.failure_time,
    )


@functools.cache
def _facts_class(probe_name: str) -> Any | None:
    """The facts dataclass a probe's parser returns (its return annotation), or None."""
    probe = PROBES_BY_NAME.get(probe_name)
    if probe is None:
        return None
    try:
        kind = typing.get_type_hints(probe.parse).get("return")
    except Exception:  # an unresolvable annotation means we cannot rebuild, not a crash
        return None
    return kind if callable(getattr(kind, "from_dict", None)) else None


def restore_facts(stored: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Stored facts read back into the probes' dataclasses, and the probes whose facts could not be."""
    facts: dict[str, Any] = {}
    unreadable: dict[str, str] = {}
    for name, plain in stored.items():
        kind = _facts_class(name)
        if kind is None:
            unreadable[name] = "stored facts of an unknown probe"
            continue
        try:
            facts[name] = kind.from_dict(plain)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # Facts stored by an older parser: the rules must not read a half-built object.
            unreadable[name] = f"stored facts could not be read back ({type(exc).__name__}: {exc})"
    return facts, unreadable


def collection_view(collection: Collection) -> CollectionView:
    """A finished collection as the rules see it, facts as dataclasses, failed probes by name."""
    facts, unreadable = restore_facts(collection.facts if isinstance(collection.facts, dict) else {})
    probe_errors = dict(
        ProbeResult.objects.filter(collection=collection, ok=False, not_applicable="")
        .order_by("id")
        .values_list("name", "error")
    )
    probe_errors.update(unreadable)
    return CollectionView(
        id=collection.pk,
        status=collection.status,
        reason=collection.reason,
        error=collection.error,
        finished=collection.finished,
        access_path="host" if collection.access_path.lower().startswith("via host") else "direct",
        facts=facts,
        probe_errors=probe_errors,
    )


def latest_finished_collection(router: Router | int) -> Collection | None:
    """The router's most recent collection that has finished, whatever its outcome."""
    return (
        Collection.objects.filter(router=router, finished__isnull=False)
        .exclude(status__in=[CollectionStatus.PENDING, CollectionStatus.RUNNING])
        .order_by("-finished", "-id")
        .first()
    )


def previous_succeeded_collection(router: Router, before: Collection) -> Collection | None:
    """The last successful collection before `before`: the one rising counters are compared with."""
    return (
        Collection.objects.filter(router=router, status=CollectionStatus.SUCCEEDED, finished__lt=before.finished)
        .exclude(pk=before.pk)
        .order_by("-finished", "-id")
        .first()
    )


def _load_router(router: Router | int) -> Router:
    router_id = router.pk if isinstance(router, Router) else router
    return Router.objects.select_related("host", "zone", "network", "vpc").get(pk=router_id)


def build_context(
    router: Router | int,
    collection: Collection | None = None,
    *,
    now: datetime | None = None,
    thresholds: Mapping[str, float] | None = None,
) -> tuple[Router, Collection | None, RouterContext]:
    """The rules' view of a router: `collection` (default: its latest finished one) and the rest."""
    router = _load_router(router)
    collection = collection if collection is not None else latest_finished_collection(router)
    previous = previous_succeeded_collection(router, collection) if collection is not None else None
    peers = []
    for peer in router.redundant_peers().select_related("host", "zone", "network", "vpc"):
        peer_collection = latest_finished_collection(peer)
        peers.append(
            PeerView(
                router=router_view(peer),
                collection=collection_view(peer_collection) if peer_collection is not None else None,
            )
        )
    context = RouterContext(
        router=router_view(router),
        collection=collection_view(collection) if collection is not None else None,
        previous=collection_view(previous) if previous is not None else None,
        peers=tuple(peers),
        thresholds=dict(thresholds) if thresholds is not None else configured_thresholds(),
        now=now or timezone.now(),
        failure=failure_view(evidence) if (evidence := current_failure_evidence(router)) is not None else None,
    )
    return router, collection, context


# --- Evaluating and storing --------------------------------------------------------------


def unjudged_rules(rules: Sequence[Rule], context: RouterContext) -> set[str]:
    """Rules that could not look: without a collection, or missing the facts of a probe they read."""
    available = set(context.collection.facts) if context.collection is not None else set()
    unjudged = set()
    for rule in rules:
        probes = [read.removeprefix("facts:") for read in rule.reads if read.startswith("facts:")]
        if any(probe not in available for probe in probes):
            unjudged.add(rule.id)
    return unjudged


@dataclass(frozen=True)
class Evaluation:
    """The outcome of evaluating one router: its verdicts, what changed, and its status now."""

    router: Router
    collection: Collection | None
    verdicts: list[Verdict]
    fold: findings.FoldOutcome
    status: findings.StatusChange
    # The messages this evaluation recorded (sent or held), see diagnostics.notifications.
    notifications: list[Notification] = field(default_factory=list)


def _open_findings_message(router: Router) -> list[events.OpenFinding]:
    return [
        {"rule": f.rule, "category": f.category, "severity": f.severity, "title": f.title}
        for f in Finding.objects.open().for_router(router).worst_first()
    ]


def evaluate_router(
    router: Router | int,
    collection: Collection | None = None,
    *,
    now: datetime | None = None,
    rules: Sequence[Rule] = matrix.RULES,
    thresholds: Mapping[str, float] | None = None,
    publish: events.Publisher = events.publish,
    send_notifications: notifications.Sender = enqueue_deliveries,
) -> Evaluation:
    """Judge the router's latest finished collection (or the one given) with `rules` and store the result.

    `thresholds` default to the configured ones (settings.MATRIX_THRESHOLDS over the defaults).
    The messages the result calls for (diagnostics.notifications) go to `send_notifications`:
    the notify queue by default.
    """
    now = now or timezone.now()
    router, collection, context = build_context(router, collection, now=now, thresholds=thresholds)
    verdicts = matrix.evaluate(context, tuple(rules))
    with transaction.atomic():
        findings.record_verdicts(router, collection, verdicts)
        fold = findings.fold_verdicts(router, collection, verdicts, unjudged_rules(rules, context), now)
        status = findings.refresh_router_health(router, collection, now)
    updated: events.VerdictsUpdated = {
        "type": "verdicts.updated",
        "router_id": router.pk,
        "collection_id": collection.pk if collection is not None else None,
        "status": status.health.status,
        "verdicts": [verdict.as_json() for verdict in verdicts],
        "open": _open_findings_message(router),
        "opened": fold.opened + fold.reopened,
        "resolved": fold.resolved,
    }
    publish(events.router_group(router.pk), updated)
    # The fleet wall re-renders the row: only when it would read differently (a sweep of ten
    # thousand healthy routers must not send ten thousand events).
    if status.shows_differently(stale_before(now)):
        changed: events.FleetStatus = {
            "type": "fleet.status",
            "router_id": router.pk,
            "uuid": router.uuid,
            "name": router.name,
            "status": status.health.status,
            "previous_status": status.previous_status,
            "categories": status.health.category_list,
        }
        publish(events.FLEET_GROUP, changed)
    told: list[Notification] = []
    try:
        told = notifications.notify_after_evaluation(router, fold, now, send_notifications)
    except Exception:  # the evaluation is stored; a notification bug must not undo it or stop the worker
        logger.exception("deciding the notifications of router %s failed", router.pk)
    return Evaluation(
        router=router, collection=collection, verdicts=verdicts, fold=fold, status=status, notifications=told
    )


def evaluate_after_collection(collection: Collection, publish: events.Publisher = events.publish) -> Evaluation | None:
    """Judge a finished collection with the registry's rules; an evaluation failure is logged, never raised."""
    try:
        return evaluate_router(collection.router_id, collection, publish=publish)
    except Exception:  # the collection is already stored; a rule or registry bug must not undo it
        logger.exception("evaluating the matrix after collection %s failed", collection.pk)
        return None
