"""`python manage.py act ROUTER ACTION --reason TEXT [--yes] [--json]`: an operator action from the shell.

ROUTER is a router name (`r-123-VM`) or uuid; ACTION one of `reboot`, `reboot-forced`,
`start`, `stop`, `stop-forced`, `restart-network`, `restart-network-cleanup` (the VPC's for
a VPC router), `fresh-health-checks`, `upgrade-template`, `restart-service:<name>` (dnsmasq,
haproxy, keepalived, apache2, password-server) or `change-offering:<offering id or name>`.
The router is first re-read from the API (read-only; the stored inventory is used if the
API cannot answer). Without --yes it is a dry run: nothing mutating is called, it says what
would happen, which warnings apply and whether the console would refuse, and records the dry
run in the audit log. With --yes (which also acknowledges the warnings printed) it runs the
same code as the `run_action` job in this process, progress on stderr. With --json the last
line is one object: `{"router", "action", "dry_run", "job": {"id", "status", "error"},
"evidence_collection", "audit_id", ...}` where job.status is `succeeded` or `failed` (a
refusal is `failed` with the reason). The exit status is non-zero when the action was
refused or failed.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from diagnostics.action_runner import execute_action
from diagnostics.actions import REASON_MAX, ActionRefused, parse_action_name, plan_action, request_action
from diagnostics.management.commands.collect import find_router
from diagnostics.models import ActionRun, ActionStatus
from diagnostics.templatetags.verdict_tags import visible_controls
from vrconsole import events, sync
from vrconsole.cloudstack.client import ApiFailure
from vrconsole.models import AuditEntry, Router


def _login() -> str:
    """Who ran the command: the login behind sudo when there is one (the audit log's actor)."""
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return ""


class Command(BaseCommand):
    help = "Run an operator action on a router (a dry run unless --yes), e.g. act r-12-VM reboot --reason INC-42"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("router", help="router name (r-123-VM) or uuid")
        parser.add_argument("action", help="reboot, restart-network-cleanup, restart-service:dnsmasq, ...")
        parser.add_argument("--reason", required=True, help="why (a ticket): required, kept in the audit log")
        parser.add_argument("--yes", action="store_true", help="really do it (without: a dry run)")
        parser.add_argument("--json", action="store_true", help="end with one JSON object on the last line")
        parser.add_argument(
            "--no-evidence",
            action="store_true",
            help="do not capture evidence first (it is on by default for destructive actions)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        quiet = options["json"]
        router = find_router(options["router"])
        reason = options["reason"].strip()[:REASON_MAX]
        try:
            key, argument = parse_action_name(options["action"])
        except ActionRefused as exc:
            raise CommandError(str(exc)) from None
        router = self._refresh(router, quiet)
        dry_run = not options["yes"]
        plan = plan_action(router, key, argument)
        if not quiet:
            self._print_plan(plan.as_json(), router, dry_run)
        try:
            run = request_action(
                router,
                key,
                argument,
                reason=reason,
                source="command",
                dry_run=dry_run,
                capture_evidence=False if options["no_evidence"] else None,
                acknowledged=True,
                actor_name=_login(),
            )
        except ActionRefused as exc:
            entry = AuditEntry.objects.filter(router=router, action="action.refused").order_by("-at", "-pk").first()
            self._report(router, plan.name, dry_run, None, str(exc), entry.pk if entry else None, quiet)
            raise CommandError(f"refused: {exc}") from None
        if not dry_run:
            run = execute_action(run, publish=self._publisher(quiet))
        self._report(router, plan.name, dry_run, run, run.error, run.audit_entry_id, quiet)
        if run.status not in (ActionStatus.SUCCEEDED, ActionStatus.PLANNED):
            raise CommandError(f"{plan.name} {run.status}: {run.error}")

    def _refresh(self, router: Router, quiet: bool) -> Router:
        """The router as the API lists it now (read-only); the stored row when the API cannot say."""
        try:
            refreshed = sync.sync_router(router)
        except (ApiFailure, ImproperlyConfigured) as exc:
            if not quiet:
                self.stderr.write(f"! could not re-read the router from CloudStack ({exc}); using the stored inventory")
            refreshed = router
        if refreshed is None:
            raise CommandError(f"the CloudStack API no longer lists {router.name or router.uuid}: nothing to act on")
        return Router.objects.select_related("region", "zone", "host", "network", "vpc").get(pk=refreshed.pk)

    def _publisher(self, quiet: bool) -> events.Publisher:
        def publish(group: str, message: Mapping[str, Any]) -> None:
            events.publish(group, message)
            if not quiet and message.get("type") == "action.progress":
                mark = {"ok": "ok ", "failed": "ERR", "running": "...", "info": "   "}.get(
                    str(message.get("status")), "   "
                )
                self.stderr.write(f"  {mark} {message.get('step')}: {visible_controls(message.get('message', ''))}")

        return publish

    def _print_plan(self, plan: dict[str, Any], router: Router, dry_run: bool) -> None:
        self.stdout.write(
            f"{'DRY RUN: would run' if dry_run else 'Running'} {plan['label']} on {plan['scope']} "
            f"{plan['target']['name'] or plan['target']['uuid']} (router {router.name}, {router.state})"
        )
        self.stdout.write(f"  command: {plan['command_line']}")
        for line in plan["consequences"]:
            self.stdout.write(f"  - {line}")
        for line in plan["warnings"]:
            self.stdout.write(f"  ! {line}")
        if plan["refusal"]:
            self.stdout.write(f"  x refused: {plan['refusal']}")
        elif dry_run:
            evidence = "captures evidence first" if plan["capture_evidence_default"] else "captures no evidence"
            self.stdout.write(
                f"  ({evidence} by default; add --yes to run it{', acknowledging the warnings' if plan['warnings'] else ''})"
            )

    def _report(
        self,
        router: Router,
        name: str,
        dry_run: bool,
        run: ActionRun | None,
        error: str,
        audit_id: int | None,
        quiet: bool,
    ) -> None:
        failed = run is None or run.status in (ActionStatus.FAILED, ActionStatus.ERRORED)
        payload = {
            "router": router.name or router.uuid,
            "router_uuid": router.uuid,
            "action": name,
            "dry_run": dry_run,
            "job": {
                "id": (run.job_id or None) if run else None,
                "status": "failed" if failed else "succeeded",
                "error": error,
            },
            "evidence_collection": run.evidence_collection_id if run else None,
            "audit_id": audit_id,
            "action_id": run.pk if run else None,
            "status": run.status if run else "refused",
            "final_state": (run.final_state if run else "") or router.state,
            "warnings": run.warnings if run else [],
        }
        if quiet:
            self.stdout.write(json.dumps(payload, ensure_ascii=False, default=str))
            return
        if run is None:
            return
        if dry_run:
            self.stdout.write(f"dry run recorded (action {run.pk}, audit {audit_id}): nothing was changed")
            return
        outcome = "● succeeded" if run.status == ActionStatus.SUCCEEDED else f"▲ {run.status}"
        self.stdout.write(
            f"{outcome}: job {run.job_id or '-'}; final state {run.final_state or '-'}; evidence collection "
            f"{run.evidence_collection_id or '-'}; audit {audit_id}"
        )
        if run.error:
            self.stdout.write(f"  error: {visible_controls(run.error)}")
