"""`python manage.py triage ROUTER [--json | --format markdown]`: sync, collect and judge one router now, and print the verdicts.

ROUTER is a router name (`r-123-VM`) or uuid. The router's row is first refreshed from its
region's API (when the API cannot answer, the stored inventory is used and the output says
so; when the API no longer lists the router, nothing is collected: its control address may
already belong to another router). It is then collected in this process (trigger
"triage", progress on stderr and on the router's channel-layer group, like a worker's) and
the troubleshooting matrix judges the collection. With --json the last line of output is
one JSON object: router, sync, collection outcome, status and verdicts. The exit status is
0 whenever the triage ran, whatever it found; non-zero only for an unknown router or when
the triage itself could not run. With --format markdown the output is the router's ticket
report (diagnostics.reports, what the router page's "Copy for ticket" copies).

The notifications of the findings it opens or resolves are decided as after any collection
(diagnostics.notifications) and delivered from this process before it exits; a delivery that
fails goes to the notify queue for its retries. What was sent is said on stderr.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from diagnostics import reports
from diagnostics.collect import run_collection
from diagnostics.evaluate import evaluate_router
from diagnostics.failure_evidence import failure_conditions, gather_failure_evidence
from diagnostics.management.commands.collect import find_router
from diagnostics.models import (
    SEVERITY_RANKS,
    Collection,
    CollectionTrigger,
    FailureEvidence,
    Notification,
    NotificationDelivery,
    RouterHealth,
    VerdictRecord,
)
from diagnostics.notify_jobs import deliver_now
from diagnostics.templatetags.verdict_tags import SEVERITY_LOOK, STATUS_LOOK, visible_controls
from vrconsole import events, sync
from vrconsole.cloudstack.client import ApiFailure
from vrconsole.models import Router

NOT_LISTED = "the CloudStack API no longer lists this router: not collected"


def router_summary(router: Router, status: str) -> dict[str, Any]:
    """The router as the --json output reports it."""
    return {
        "id": router.pk,
        "name": router.name,
        "uuid": router.uuid,
        "state": router.state,
        "redundant_state": router.redundant_state,
        "is_redundant": router.is_redundant,
        "hypervisor": router.hypervisor,
        "zone": router.zone.name if router.zone is not None else "",
        "host": router.host.name if router.host is not None else router.host_name,
        "region": router.region.name,
        "link_local_ip": router.link_local_ip,
        "removed": router.removed_at is not None,
        "status": status,
    }


def collection_summary(collection: Collection | None, skipped_because: str = "") -> dict[str, Any]:
    """The collection's outcome as the --json output reports it."""
    if collection is None:
        return {"id": None, "status": "skipped", "reason": "", "duration_s": None, "error": skipped_because}
    return {
        "id": collection.pk,
        "status": collection.status,
        "reason": collection.reason,
        "duration_s": collection.duration_s,
        "error": collection.error,
        "probe_errors": dict(
            collection.probe_results.filter(ok=False, not_applicable="").order_by("id").values_list("name", "error")
        ),
        # Probes not run because they do not apply (KVM host probes on a XenServer host): not errors.
        "not_applicable": dict(
            collection.probe_results.exclude(not_applicable="").order_by("id").values_list("name", "not_applicable")
        ),
    }


def evidence_summary(evidence: FailureEvidence | None) -> dict[str, Any] | None:
    """CloudStack's record of a failing router as the --json output reports it (None for a healthy one)."""
    if evidence is None:
        return None
    return {
        "id": evidence.pk,
        "status": evidence.status,
        "conditions": evidence.conditions,
        "failed_jobs": [
            {k: job.get(k) for k in ("jobid", "command", "status", "errorcode", "errortext", "completed")}
            for job in evidence.failed_jobs
        ],
        "unknown": evidence.unknown,
        "error": evidence.error,
    }


def notification_summary(notification: Notification) -> dict[str, Any]:
    """A notification the triage decided, with how each delivery went, as --json reports it."""
    return {
        "kind": notification.kind,
        "rule": notification.rule,
        "severity": notification.severity,
        "held": notification.suppressed_because,
        "deliveries": [
            {"to": delivery.label, "status": delivery.status, "attempts": delivery.attempts, "error": delivery.error}
            for delivery in NotificationDelivery.objects.filter(notification=notification).order_by("pk")
        ],
    }


def verdicts_of(collection: Collection) -> list[dict[str, Any]]:
    """The verdicts stored on the collection, worst first."""
    records = sorted(
        VerdictRecord.objects.filter(collection=collection),
        key=lambda record: (-SEVERITY_RANKS.get(record.severity, 0), record.rule, record.pk),
    )
    return [
        {
            "rule": record.rule,
            "category": record.category,
            "categories": record.category_list,
            "severity": record.severity,
            "title": record.title,
            "evidence": record.evidence,
            "remediation": record.remediation,
            "action": record.action,
        }
        for record in records
    ]


class Command(BaseCommand):
    help = "Sync, collect and evaluate one router now (no worker needed), and print the verdicts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("router", help="router name (r-123-VM) or uuid")
        parser.add_argument("--json", action="store_true", help="end with one JSON object on the last line")
        parser.add_argument(
            "--format",
            choices=["text", "markdown"],
            default="text",
            help="markdown: print the router's ticket report (as the router page's Copy for ticket)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        router = find_router(options["router"])
        sync_report = self._sync(router)
        router = Router.objects.select_related("region", "zone", "host").get(pk=router.pk)
        collection: Collection | None = None
        evidence = self._failure_evidence(router) if sync_report["listed"] else None
        if sync_report["listed"]:
            collection = self._collect(router, quiet=options["json"])
        verdicts, told = self._evaluate(router, collection)
        status = RouterHealth.status_of(router)
        told_summaries = [notification_summary(notification) for notification in told]
        payload = {
            "router": router_summary(router, status),
            "sync": sync_report,
            "collection": collection_summary(collection, "" if sync_report["listed"] else NOT_LISTED),
            "failure_evidence": evidence_summary(evidence),
            "status": status,
            "verdicts": verdicts,
            "notifications": told_summaries,
        }
        if options["json"]:
            self.stdout.write(json.dumps(payload, default=str, ensure_ascii=False))
            return
        self._print_notifications(told_summaries)
        if options["format"] == "markdown":
            self.stdout.write(reports.to_markdown(reports.build_report(router)), ending="")
        else:
            self._print_readably(payload)

    def _sync(self, router: Router) -> dict[str, Any]:
        try:
            refreshed = sync.sync_router(router)
        except (ApiFailure, ImproperlyConfigured) as exc:
            # Triage is most needed when things are broken: go on with what the inventory knows.
            return {"ok": False, "listed": True, "error": f"sync failed, using the stored inventory: {exc}"}
        if refreshed is None:
            return {"ok": True, "listed": False, "error": NOT_LISTED}
        return {"ok": True, "listed": True, "error": ""}

    def _failure_evidence(self, router: Router) -> FailureEvidence | None:
        """For a failing router (in Error, stuck...), CloudStack's own record of why, read now."""
        router = Router.objects.select_related("region", "host", "network", "vpc", "zone").get(pk=router.pk)
        if not failure_conditions(router):
            return None
        evidence = FailureEvidence.objects.create(router=router, trigger=CollectionTrigger.TRIAGE)
        try:
            return gather_failure_evidence(evidence)
        except Exception as exc:  # recorded on the row as errored with its traceback; the triage goes on
            self.stderr.write(f"reading CloudStack's record errored: {type(exc).__name__}: {exc}")
            evidence.refresh_from_db()
            return evidence

    def _collect(self, router: Router, *, quiet: bool) -> Collection:
        collection = Collection.objects.create(router=router, trigger=CollectionTrigger.TRIAGE)

        def publish(group: str, message: Mapping[str, Any]) -> None:
            events.publish(group, message)
            if not quiet and message.get("type") == "collection.progress" and message.get("status") != "running":
                mark = {"ok": "ok ", "not-applicable": "n/a"}.get(str(message.get("status")), "ERR")
                self.stderr.write(f"  {mark} {message.get('probe')} {message.get('error') or ''}".rstrip())

        try:
            run_collection(collection, publish=publish)
        except Exception as exc:  # recorded on the row as errored with its traceback; the triage goes on
            self.stderr.write(f"collection {collection.pk} errored: {type(exc).__name__}: {exc}")
        collection.refresh_from_db()
        return collection

    def _evaluate(
        self, router: Router, collection: Collection | None
    ) -> tuple[list[dict[str, Any]], list[Notification]]:
        # Unlike the jobs' evaluation after a collection, which logs and swallows its failures,
        # a triage whose matrix cannot run must say so. Its notifications leave before it exits.
        try:
            evaluation = evaluate_router(router, collection, send_notifications=deliver_now)
        except Exception as exc:
            raise CommandError(f"the troubleshooting matrix could not run: {type(exc).__name__}: {exc}") from exc
        if collection is None:
            return [verdict.as_json() for verdict in evaluation.verdicts], evaluation.notifications
        return verdicts_of(collection), evaluation.notifications

    def _print_notifications(self, summaries: list[dict[str, Any]]) -> None:
        for summary in summaries:
            line = f"notification {summary['kind']} {summary['rule']}: "
            if summary["held"]:
                line += f"held ({summary['held']})"
            elif not summary["deliveries"]:
                line += "no destination configured (NOTIFY_WEBHOOKS, NOTIFY_EMAILS)"
            else:
                line += "; ".join(
                    f"{d['to']} {d['status']}" + (f" ({d['error']})" if d["error"] else "")
                    for d in summary["deliveries"]
                )
            self.stderr.write(visible_controls(line))

    def _print_readably(self, payload: dict[str, Any]) -> None:
        router = payload["router"]
        glyph, _ = STATUS_LOOK.get(payload["status"], ("?", ""))
        redundant = f" {router['redundant_state']}" if router["is_redundant"] else ""
        self.stdout.write(f"{router['name']} ({router['uuid']}) {router['state']}{redundant}, {router['hypervisor']}")
        self.stdout.write(f"  zone {router['zone'] or '-'}, host {router['host'] or '-'}, region {router['region']}")
        if payload["sync"]["error"]:
            self.stdout.write(f"  ! {payload['sync']['error']}")
        evidence = payload["failure_evidence"]
        if evidence is not None:
            self.stdout.write(f"CloudStack's record ({evidence['status']}): {'; '.join(evidence['conditions'])}")
            for job in evidence["failed_jobs"]:
                self.stdout.write(
                    visible_controls(f"  job {job['jobid']} {job['command']} {job['status']}: {job['errortext']}")
                )
            for part, why in evidence["unknown"].items():
                self.stdout.write(f"  ? {part} unknown: {why}")
        collection = payload["collection"]
        line = f"collection {collection['status']}"
        if collection["duration_s"] is not None:
            line += f" in {collection['duration_s']} s"
        if collection["reason"] or collection["error"]:
            line += f": {collection['reason']} {collection['error']}".rstrip()
        # The error text can carry what a router printed: never let it drive the terminal.
        self.stdout.write(visible_controls(line))
        for name, why in (collection.get("not_applicable") or {}).items():
            self.stdout.write(f"  - {name} {why}")
        self.stdout.write(f"status: {glyph} {payload['status']}, {len(payload['verdicts'])} verdict(s)")
        for verdict in payload["verdicts"]:
            mark, _ = SEVERITY_LOOK.get(verdict["severity"], ("?", ""))
            self.stdout.write(
                f"\n{mark} {verdict['severity']} {verdict['rule']} [{', '.join(verdict.get('categories') or [verdict['category']])}] "
                + visible_controls(verdict["title"])
            )
            # Evidence is router output: an escape sequence must not drive the operator's terminal.
            for evidence in verdict["evidence"]:
                self.stdout.write(f"    | {visible_controls(evidence)}")
            self.stdout.write(f"    Fix: {verdict['remediation']}")
            if verdict.get("action"):
                self.stdout.write(f"    Action: manage.py act {router['name']} {verdict['action']} --reason ...")
