"""One collection: every probe run on one router in one SSH session, parsed and stored.

Router probes run in the router's session; host probes run, on the KVM path, in the host
session already open for the forward. A probe whose command fails, times out or prints
something its parser refuses is recorded with its error and the others carry on, so a
collection keeps partial results. Each probe's raw output is kept (bounded by
RAW_OUTPUT_MAX_BYTES) as evidence, its facts as JSON; a successful collection also writes a
HealthSample of numbers and a ConfigSnapshot for each configuration whose content changed.
Progress goes to the router's channel-layer group (vrconsole.events); a channel-layer
failure is logged and never costs the collection, which lives in the database. Judging the
collection is the caller's next step (diagnostics.jobs.collect_and_evaluate), not this
module's: collecting knows nothing about the troubleshooting matrix.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from diagnostics.access import RouterConnection, open_router_connection, plan_access
from diagnostics.hostkeys import PinnedHostKeys
from diagnostics.models import (
    Collection,
    CollectionStatus,
    ConfigKind,
    ConfigSnapshot,
    HealthSample,
    ProbeResult,
)
from diagnostics.probes.base import ParseError, Probe, validate_instance_name, validate_ip
from diagnostics.samples import health_numbers
from diagnostics.ssh import AccessError, HostConnectionPool, HostKeyVerifier
from vrconsole import events
from vrconsole.models import AuditEntry, Router

logger = logging.getLogger(__name__)

# Probes in flight at once on one router connection: well under OpenSSH's default
# MaxSessions (10), which a VR's sshd keeps.
PROBE_CONCURRENCY = 4

# Probe name -> the configuration kind its output is a snapshot of (the iptables parser
# offers a `normalised` text without counters and timestamps).
SNAPSHOT_PROBES: dict[str, str] = {
    "iptables_filter": ConfigKind.IPTABLES_FILTER,
    "iptables_nat": ConfigKind.IPTABLES_NAT,
    "iptables_mangle": ConfigKind.IPTABLES_MANGLE,
}
# The `config` probe reads several files; each belongs to one snapshot kind.
CONFIG_PROBE = "config"
CONFIG_FILE_KINDS: dict[str, str] = {
    "/etc/dnsmasq.conf": ConfigKind.DNSMASQ,
    "/etc/dnsmasq.d/cloud.conf": ConfigKind.DNSMASQ,
    "/etc/haproxy/haproxy.cfg": ConfigKind.HAPROXY,
    "/etc/keepalived/keepalived.conf": ConfigKind.KEEPALIVED,
}


def default_probes() -> list[Probe]:
    """The registered router and host probes."""
    from diagnostics.probes import HOST_PROBES, ROUTER_PROBES

    return [*ROUTER_PROBES, *HOST_PROBES]


def evidence_probes() -> list[Probe]:
    """The default probes plus the tails of every log: what is kept before a destructive action."""
    from diagnostics.probes import EVIDENCE_PROBES

    return [*default_probes(), *EVIDENCE_PROBES]


@dataclass
class ProbeOutcome:
    """What one probe produced in this collection."""

    probe: Probe
    command: str
    ok: bool = False
    error: str = ""
    exit_status: int | None = None
    duration: float = 0.0
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False
    facts: Any = None
    # Why the probe was not run because it does not apply to the router ("" when it ran).
    not_applicable: str = ""


def _bounded(text: str, limit: int) -> tuple[str, bool]:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text, False
    return encoded[:limit].decode("utf-8", errors="ignore"), True


def _json_ready(facts: Any) -> Any:
    """Facts in their JSON storage form (Facts.to_dict when the parser returns Facts)."""
    to_dict = getattr(facts, "to_dict", None)
    plain = to_dict() if callable(to_dict) else facts
    return json.loads(json.dumps(plain, cls=DjangoJSONEncoder, default=str))


def _command_for(probe: Probe, router: Router) -> str:
    if probe.scope == "host":
        return probe.command_line(validate_instance_name(router.name), validate_ip(router.link_local_ip or ""))
    return probe.command


def run_probe(connection: RouterConnection, probe: Probe, router: Router) -> ProbeOutcome:
    """Run and parse one probe; every failure becomes the outcome's error, except a lost session.

    A probe that does not apply to the router (a KVM host probe on a XenServer dom0) is not
    run: its outcome says why, and it is neither ok nor an error.
    """
    reason = probe.not_applicable_on(router.hypervisor)
    if reason:
        return ProbeOutcome(probe=probe, command="", not_applicable=reason)
    session = connection.host if probe.scope == "host" else connection.router
    try:
        command = _command_for(probe, router)
    except ValueError as exc:
        return ProbeOutcome(probe=probe, command="", error=f"refused to build the host command: {exc}")
    outcome = ProbeOutcome(probe=probe, command=command)
    if session is None:
        outcome.error = "host probe on a router reached directly: no host session"
        return outcome
    timeout = min(probe.timeout, settings.SSH_COMMAND_TIMEOUT)
    try:
        result = session.run(command, timeout=timeout)
    except AccessError as exc:
        if not session.is_active:
            raise
        outcome.error = str(exc)
        outcome.duration = timeout
        return outcome
    outcome.exit_status = result.exit_status
    outcome.duration = result.duration
    outcome.truncated = result.truncated
    outcome.stdout = result.stdout
    outcome.stderr = result.stderr
    if result.exit_status not in (0, None):
        first_line = result.stderr.strip().splitlines()[0][:200] if result.stderr.strip() else ""
        outcome.error = f"exit status {result.exit_status}" + (f": {first_line}" if first_line else "")
        return outcome
    try:
        outcome.facts = _json_ready(probe.parse(result.stdout))
    except ParseError as exc:
        outcome.error = f"unparseable output: {exc}"
        return outcome
    except Exception as exc:  # a parser bug must cost one probe, not the collection
        logger.exception("parser of probe %s crashed", probe.name)
        outcome.error = f"parser crashed ({type(exc).__name__}): {exc}"
        return outcome
    outcome.ok = True
    return outcome


def previous_counters(collection: Collection) -> tuple[dict[str, Any] | None, float | None]:
    """The counter facts (interfaces, softnet) of the router's previous successful collection, and the seconds since it.

    Only those two probes' facts are read, so the (large) rest of the previous facts never
    leaves the database.
    """
    previous = (
        Collection.objects.filter(router_id=collection.router_id, status=CollectionStatus.SUCCEEDED)
        .exclude(pk=collection.pk)
        .exclude(started__isnull=True)
        .order_by("-started", "-id")
        .values_list("facts__interfaces", "facts__softnet", "started")
        .first()
    )
    if previous is None or collection.started is None:
        return None, None
    interfaces, softnet, started = previous
    if started is None:
        return None, None
    seconds = (collection.started - started).total_seconds()
    return {"interfaces": interfaces, "softnet": softnet}, seconds


def store_health_sample(collection: Collection) -> HealthSample:
    """The collection's numbers as a HealthSample, rates against the previous successful collection."""
    previous, seconds = previous_counters(collection)
    numbers = health_numbers(collection.facts, previous, seconds)
    return HealthSample.objects.create(router_id=collection.router_id, collection=collection, **numbers)


def _timed_probe(connection: RouterConnection, probe: Probe, router: Router) -> ProbeOutcome:
    """run_probe, with the wall time as the duration when the probe did not measure one."""
    started = time.monotonic()
    outcome = run_probe(connection, probe, router)
    if not outcome.duration:
        outcome.duration = time.monotonic() - started
    return outcome


def _save_probe_result(collection: Collection, outcome: ProbeOutcome) -> None:
    # Evidence kept before a destructive action is the only copy left once the router is gone.
    limit = settings.EVIDENCE_RAW_MAX_BYTES if collection.keep else settings.RAW_OUTPUT_MAX_BYTES
    # A probe reading files that hold secrets redacts its raw output too: the database and
    # the collection page must never see what its parser already hides.
    raw = outcome.probe.redact_output(outcome.stdout) if outcome.probe.redact_output else outcome.stdout
    stdout, cut_out = _bounded(raw, limit)
    stderr, cut_err = _bounded(outcome.stderr, limit)
    ProbeResult.objects.create(
        collection=collection,
        name=outcome.probe.name,
        scope=outcome.probe.scope,
        command=outcome.command,
        ok=outcome.ok,
        error=outcome.error,
        exit_status=outcome.exit_status,
        duration_s=round(outcome.duration, 4),
        stdout=stdout,
        stderr=stderr,
        truncated=outcome.truncated or cut_out or cut_err,
        not_applicable=outcome.not_applicable[:200],
    )


def snapshot_contents(outcomes: Sequence[ProbeOutcome]) -> dict[str, str]:
    """Snapshot kind -> content, from the probes that succeeded.

    iptables tables use the parser's normalised text; the configuration files of one kind
    (dnsmasq.conf and cloud.conf) are joined under their paths. A kind whose files are all
    missing has no snapshot.
    """
    contents: dict[str, str] = {}
    for outcome in outcomes:
        if not outcome.ok or not isinstance(outcome.facts, dict):
            continue
        kind = SNAPSHOT_PROBES.get(outcome.probe.name)
        if kind is not None:
            normalised = outcome.facts.get("normalised")
            contents[kind] = normalised if isinstance(normalised, str) else outcome.stdout
        elif outcome.probe.name == CONFIG_PROBE:
            parts: dict[str, list[str]] = {}
            for config_file in outcome.facts.get("files") or []:
                file_kind = CONFIG_FILE_KINDS.get(config_file.get("path", ""))
                if file_kind is None or config_file.get("missing"):
                    continue
                parts.setdefault(file_kind, []).append(f"# {config_file['path']}\n{config_file.get('text', '')}")
            contents.update({k: "\n".join(texts) for k, texts in parts.items()})
    return contents


def store_changed_snapshots(collection: Collection, outcomes: Sequence[ProbeOutcome]) -> list[ConfigSnapshot]:
    """A ConfigSnapshot for each configuration whose hash differs from the router's latest of its kind."""
    stored = []
    for kind, content in snapshot_contents(outcomes).items():
        digest = hashlib.sha256(content.encode("utf-8")).hexdigest()
        latest = (
            ConfigSnapshot.objects.filter(router_id=collection.router_id, kind=kind)
            .order_by("-taken_at", "-id")
            .values_list("sha256", flat=True)
            .first()
        )
        if latest == digest:
            continue
        stored.append(
            ConfigSnapshot.objects.create(
                router_id=collection.router_id, collection=collection, kind=kind, content=content, sha256=digest
            )
        )
    return stored


def _audit_session(collection: Collection, router: Router, outcome: str, detail: str) -> None:
    AuditEntry.record(
        "ssh.session",
        user=collection.requested_by,
        router=router,
        target=f"{router.name or router.uuid} {collection.access_path}",
        detail=detail,
        outcome=outcome,
    )


def _finish(collection: Collection, status: str, publish: events.Publisher) -> None:
    collection.status = status
    collection.finished = timezone.now()
    if collection.started is not None:
        collection.duration_s = round((collection.finished - collection.started).total_seconds(), 3)
    collection.save()
    finished: events.CollectionFinished = {
        "type": "collection.finished",
        "collection_id": collection.pk,
        "router_id": collection.router_id,
        "status": collection.status,
        "reason": collection.reason,
        "error": collection.error,
        "duration_s": collection.duration_s,
        "probe_errors": collection.probe_errors,
    }
    publish(events.router_group(collection.router_id), finished)


def run_collection(
    collection: Collection,
    probes: Sequence[Probe] | None = None,
    *,
    verifier: HostKeyVerifier | None = None,
    pool: HostConnectionPool | None = None,
    publish: events.Publisher = events.publish,
) -> Collection:
    """Run the collection described by the row and record everything on it.

    Expected failures (unreachable, refused, key changed, timed out) end as `failed` with a
    reason and return. Anything else is a bug: the row ends `errored` with the traceback and
    the exception is re-raised so the worker keeps it too.
    """
    router = Router.objects.select_related("host", "zone").get(pk=collection.router_id)
    probes = list(default_probes() if probes is None else probes)
    verifier = verifier or PinnedHostKeys()
    collection.status = CollectionStatus.RUNNING
    collection.started = timezone.now()
    collection.save(update_fields=["status", "started"])
    outcomes: list[ProbeOutcome] = []
    session_attempted = False
    try:
        plan = plan_access(router)
        collection.access_path = plan.description[:255]
        session_attempted = True
        with open_router_connection(plan, verifier, pool) as connection:
            runnable = [p for p in probes if not (p.scope == "host" and connection.host is None)]
            # Probes run a few at a time on their own channels of the one connection, so a
            # probe that samples for a second, and every command's round trip, overlap the
            # others. Results are still taken, stored and published in probe order.
            probe_pool = ThreadPoolExecutor(max_workers=PROBE_CONCURRENCY, thread_name_prefix="probe")
            try:
                futures = [probe_pool.submit(_timed_probe, connection, probe, router) for probe in runnable]
                group = events.router_group(router.pk)
                for probe, future in zip(runnable, futures, strict=True):
                    publish(group, _progress(collection, probe.name, "running"))
                    outcome = future.result()
                    outcomes.append(outcome)
                    _save_probe_result(collection, outcome)
                    publish(group, _progress(collection, probe.name, _progress_status(outcome), outcome))
            finally:
                probe_pool.shutdown(wait=True, cancel_futures=True)
        _store_facts(collection, outcomes)
        store_health_sample(collection)
        store_changed_snapshots(collection, outcomes)
        _audit_session(
            collection,
            router,
            "ok",
            f"collection {collection.pk} ({collection.trigger}): {len(outcomes)} probes, "
            f"{collection.probe_errors} with errors",
        )
    except AccessError as exc:
        collection.reason = exc.reason.value
        collection.error = exc.message
        _store_facts(collection, outcomes)
        if session_attempted:
            _audit_session(collection, router, exc.reason.value, exc.message)
        _finish(collection, CollectionStatus.FAILED, publish)
        return collection
    except Exception as exc:
        collection.error = f"{type(exc).__name__}: {exc}"
        collection.traceback = traceback.format_exc()
        _store_facts(collection, outcomes)
        if session_attempted:
            _audit_session(collection, router, "errored", collection.error)
        _finish(collection, CollectionStatus.ERRORED, publish)
        raise
    _finish(collection, CollectionStatus.SUCCEEDED, publish)
    return collection


def _store_facts(collection: Collection, outcomes: Sequence[ProbeOutcome]) -> None:
    collection.facts = {o.probe.name: o.facts for o in outcomes if o.ok}
    collection.probe_errors = sum(1 for o in outcomes if not o.ok and not o.not_applicable)


def _progress_status(outcome: ProbeOutcome) -> str:
    if outcome.ok:
        return "ok"
    return "not-applicable" if outcome.not_applicable else "error"


def _progress(
    collection: Collection, probe: str, status: str, outcome: ProbeOutcome | None = None
) -> events.CollectionProgress:
    message: events.CollectionProgress = {
        "type": "collection.progress",
        "collection_id": collection.pk,
        "router_id": collection.router_id,
        "probe": probe,
        "status": status,
    }
    if outcome is not None:
        message["duration_s"] = round(outcome.duration, 3)
        message["error"] = outcome.error or outcome.not_applicable
    return message
