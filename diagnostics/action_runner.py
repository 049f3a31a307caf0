"""Running one operator action to its end: evidence first, the call, CloudStack's job followed, then a fresh look.

`execute_action` takes a pending ActionRun (diagnostics.actions made it) and:

1. captures evidence first when asked: a collection with every probe plus the tails of every
   log (diagnostics.probes.log_tails), kept beyond retention (`Collection.keep`);
2. calls CloudStack through the `cs` client (or, for a service restart, runs the allowlisted
   command over SSH through diagnostics.access/ssh), then follows the async job with
   `queryAsyncJobResult` until it succeeds, fails (CloudStack's `errortext` is kept word for
   word) or outlives ACTION_JOB_TIMEOUT_SECONDS, publishing each step and the states of the
   routers involved to the router's actions group;
3. re-syncs the router (the whole network's routers after a network restart: cleanup
   replaces them) and re-collects the ones that are Running;
4. records the outcome on the row and in the audit log, and publishes `action.finished`.

Expected failures (CloudStack refusing or failing the job, the API away, the router refusing
the SSH command) end the run `failed` with the reason; a bug ends it `errored` with the
traceback and is re-raised so the worker keeps it too.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from diagnostics.access import open_router_connection, plan_access
from diagnostics.actions import CHECK_ROLE_COMMAND, SERVICES, plan_action
from diagnostics.collect import evidence_probes
from diagnostics.hostkeys import PinnedHostKeys
from diagnostics.jobs import collect_and_evaluate
from diagnostics.models import ActionRun, ActionStatus, Collection, CollectionStatus, CollectionTrigger
from diagnostics.probes.base import clean_line
from diagnostics.ssh import AccessError
from vrconsole import events
from vrconsole.cloudstack.client import JOB_FAILED, JOB_PENDING, JOB_SUCCEEDED, ApiFailure, CloudStackClient
from vrconsole.cloudstack.regions import region_config
from vrconsole.models import AuditEntry, Router, RouterState
from vrconsole.sync import sync_network_routers, sync_router

logger = logging.getLogger(__name__)

PROGRESS_STEPS_KEPT = 200
# A job that changes nothing for this long still gets a step, so the page never waits silently.
HEARTBEAT_SECONDS = 15.0
# A poll that fails (the API briefly away) is retried; this many in a row end the follow.
POLL_FAILURES_TOLERATED = 5

Collector = Callable[..., Collection]


class ActionFailed(Exception):
    """An expected failure: CloudStack (or the router) said no; the message is what the operator reads."""


@dataclass
class JobOutcome:
    """How CloudStack's job ended: status succeeded/failed, its error text and result object."""

    job_id: str | None
    status: str
    error: str = ""
    result: dict[str, Any] | None = None


class ActionExecution:
    """The state of one run while it executes: its row, the client, where progress goes."""

    def __init__(
        self,
        run: ActionRun,
        client: CloudStackClient | None,
        publish: events.Publisher,
        collect: Collector,
        sleep: Callable[[float], None],
    ) -> None:
        self.run = run
        self._client = client
        self.publish = publish
        self.collect = collect
        self.sleep = sleep
        self.router = Router.objects.select_related("region", "zone", "host", "network", "vpc").get(pk=run.router_id)
        self.group = events.router_actions_group(run.router_id)

    @property
    def client(self) -> CloudStackClient:
        if self._client is None:
            try:
                config = region_config(self.router.region.name)
            except ImproperlyConfigured as exc:
                raise ActionFailed(f"the router's region is not configured here: {exc}") from None
            self._client = CloudStackClient(config, page_size=settings.CLOUDSTACK_PAGE_SIZE)
        return self._client

    def step(self, step: str, status: str, message: str, **extra: Any) -> None:
        """Record one step on the row and publish it to the router's actions group."""
        at = timezone.now().isoformat()
        entry = {"at": at, "step": step, "status": status, "message": message[:2000]}
        if "job_id" in extra:
            entry["job_id"] = extra["job_id"]
        if "routers" in extra:
            entry["routers"] = extra["routers"]
        self.run.progress = [*self.run.progress, entry][-PROGRESS_STEPS_KEPT:]
        self.run.save(update_fields=["progress"])
        event: events.ActionProgress = {
            "type": "action.progress",
            "action_id": self.run.pk,
            "router_id": self.run.router_id,
            "action": _name(self.run),
            "step": step,
            "status": status,
            "message": message[:2000],
            "at": at,
        }
        if "job_id" in extra:
            event["job_id"] = extra["job_id"]
        if "job_status" in extra:
            event["job_status"] = extra["job_status"]
        if "routers" in extra:
            event["routers"] = extra["routers"]
        self.publish(self.group, event)

    # --- Evidence -------------------------------------------------------------------------

    def capture_evidence(self) -> None:
        collection = Collection.objects.create(
            router=self.router, trigger=CollectionTrigger.ACTION, requested_by=self.run.requested_by, keep=True
        )
        self.run.evidence_collection = collection
        self.run.save(update_fields=["evidence_collection"])
        self.step(
            "evidence", "running", f"capturing evidence first: collection {collection.pk} (every probe, log tails)"
        )
        try:
            self.collect(collection, probes=evidence_probes())
        except Exception as exc:  # recorded on the collection as errored; the operator chose to act anyway
            logger.exception("evidence collection %s errored", collection.pk)
            self.step("evidence", "failed", f"evidence collection {collection.pk} errored ({exc}); going on")
            return
        collection.refresh_from_db()
        if collection.status == CollectionStatus.SUCCEEDED:
            self.step(
                "evidence",
                "ok",
                f"evidence kept: collection {collection.pk}, {collection.duration_s or 0:.1f} s, "
                f"{collection.probe_errors} probe(s) with errors; raw outputs and log tails kept beyond retention",
            )
        else:
            self.step(
                "evidence",
                "failed",
                f"evidence could not be captured ({collection.reason or collection.status}: {collection.error}); "
                "the action goes ahead",
            )

    # --- CloudStack's job -------------------------------------------------------------------

    def router_states(self) -> list[events.RouterStateNote]:
        """The states of the routers the action works on, as CloudStack lists them now (best effort)."""
        try:
            if self.run.scope == "vpc":
                items = self.client.routers_of(vpcid=self.run.target_uuid)
            elif self.run.scope == "network":
                items = self.client.routers_of(networkid=self.run.target_uuid)
            else:
                item = self.client.fetch_router(self.router.uuid)
                items = [item] if item is not None else []
        except ApiFailure:
            return []
        return [
            {
                "uuid": str(item.get("id", "")),
                "name": str(item.get("name", "")),
                "state": str(item.get("state", "")),
                "redundant_state": str(item.get("redundantstate", "")),
            }
            for item in items
        ]

    def follow(self, job_id: str) -> JobOutcome:
        """Poll queryAsyncJobResult until the job ends, publishing its status and the routers' states."""
        self.run.job_id = job_id
        self.run.save(update_fields=["job_id"])
        deadline = time.monotonic() + settings.ACTION_JOB_TIMEOUT_SECONDS
        failures = 0
        last_states: list[events.RouterStateNote] = []
        started = last_step = time.monotonic()
        while True:
            try:
                job = self.client.query_job(job_id)
                failures = 0
            except ApiFailure as exc:
                failures += 1
                if failures >= POLL_FAILURES_TOLERATED:
                    raise ActionFailed(
                        f"lost contact with CloudStack while following job {job_id} ({exc.reason}); the job may "
                        "still finish: check it with queryAsyncJobResult"
                    ) from None
                self.step("job", "info", f"could not read job {job_id} ({exc.reason}); retrying", job_id=job_id)
                self.sleep(settings.ACTION_POLL_SECONDS)
                continue
            status = job.get("jobstatus")
            states = self.router_states()
            quiet_for = time.monotonic() - last_step
            if status != JOB_PENDING or states != last_states or quiet_for >= HEARTBEAT_SECONDS:
                last_step = time.monotonic()
                described = ", ".join(f"{s['name']} {s['state']}" for s in states) or "no router listed"
                elapsed = int(time.monotonic() - started)
                self.step(
                    "job",
                    "running" if status == JOB_PENDING else "info",
                    f"job {job_id}: {_JOB_WORDS.get(status, f'status {status}') if isinstance(status, int) else status}"
                    f" after {elapsed} s; routers: {described}",
                    job_id=job_id,
                    job_status=status if isinstance(status, int) else -1,
                    routers=states,
                )
                last_states = states
            if status == JOB_SUCCEEDED and not job.get("jobresultcode"):
                result = job.get("jobresult")
                return JobOutcome(job_id, "succeeded", result=result if isinstance(result, dict) else None)
            if status != JOB_PENDING:
                result = job.get("jobresult") if isinstance(job.get("jobresult"), dict) else {}
                text = str(result.get("errortext") or "").strip() if result else ""
                if status not in (JOB_SUCCEEDED, JOB_FAILED):
                    text = text or f"the job ended with status {status} (cancelled)"
                return JobOutcome(job_id, "failed", error=text or "CloudStack gave no error text", result=result)
            if time.monotonic() > deadline:
                raise ActionFailed(
                    f"CloudStack's job {job_id} was still running after {settings.ACTION_JOB_TIMEOUT_SECONDS} s; the "
                    "console stopped following it (the job goes on: check it with queryAsyncJobResult)"
                )
            self.sleep(settings.ACTION_POLL_SECONDS)

    def submit(self, command: str, **params: Any) -> str:
        try:
            job_id = self.client.submit(command, **params)
        except ApiFailure as exc:
            if exc.status is None and "timed out" in exc.reason:
                raise ActionFailed(
                    f"{exc.reason}: CloudStack may or may not have started {command}; check listAsyncJobs before "
                    "trying again"
                ) from None
            raise ActionFailed(f"CloudStack refused {command}: {exc.reason}") from None
        self.step("submitted", "ok", f"{command} accepted: job {job_id}", job_id=job_id)
        return job_id

    def call(self, command: str, **params: Any) -> dict[str, Any]:
        try:
            return self.client.call(command, **params)
        except ApiFailure as exc:
            raise ActionFailed(f"CloudStack refused {command}: {exc.reason}") from None

    # --- The actions --------------------------------------------------------------------------

    def perform(self) -> JobOutcome:
        key, params = self.run.action, dict(self.run.parameters)
        if key in (
            "reboot",
            "reboot-forced",
            "start",
            "stop",
            "stop-forced",
            "restart-network",
            "restart-network-cleanup",
        ):
            return self.follow(self.submit(self.run.command, **params))
        if key == "fresh-health-checks":
            return self.fresh_health_checks(params)
        if key == "upgrade-template":
            return self.upgrade_template(params)
        if key == "change-offering":
            return self.change_offering()
        if key == "restart-service":
            return self.restart_service()
        raise ActionFailed(f"the console has no way to run {key!r}")

    def fresh_health_checks(self, params: dict[str, Any]) -> JobOutcome:
        self.step(
            "submitted",
            "running",
            "getRouterHealthCheckResults performfreshchecks=true: the router runs every check now",
        )
        data = self.call("getRouterHealthCheckResults", **params)
        block = data.get("routerhealthchecks") if isinstance(data.get("routerhealthchecks"), dict) else {}
        checks = [c for c in block.get("healthchecks", []) if isinstance(c, dict)] if block else []
        failing = [str(c.get("checkname")) for c in checks if c.get("success") is False]
        message = f"{len(checks)} checks ran, {len(failing)} failing" + (f": {', '.join(failing)}" if failing else "")
        self.step("checks", "failed" if failing else "ok", message)
        return JobOutcome(None, "succeeded", result={"checks": len(checks), "failing": failing})

    def upgrade_template(self, params: dict[str, Any]) -> JobOutcome:
        data = self.call("upgradeRouterTemplate", **params)
        jobs = [j for j in data.get("asyncjobs", []) if isinstance(j, dict) and j.get("jobid")]
        if not jobs:
            self.step("submitted", "info", "CloudStack queued no job: it considers the router at the latest version")
            return JobOutcome(None, "succeeded", result={"note": "no upgrade required according to CloudStack"})
        job_id = str(jobs[0]["jobid"])
        self.step(
            "submitted",
            "ok",
            f"upgradeRouterTemplate queued a reboot onto the current template: job {job_id}",
            job_id=job_id,
        )
        return self.follow(job_id)

    def change_offering(self) -> JobOutcome:
        wanted = self.run.argument
        try:
            offerings = self.client.list_all("listServiceOfferings", issystem=True, systemvmtype="domainrouter")
        except ApiFailure as exc:
            raise ActionFailed(f"could not list the routers' service offerings: {exc.reason}") from None
        offering = next((o for o in offerings if wanted in (o.get("id"), o.get("name"))), None)
        if offering is None:
            names = ", ".join(str(o.get("name")) for o in offerings) or "none"
            raise ActionFailed(f"no system offering for routers is called {wanted!r}; CloudStack has: {names}")
        params = {"id": self.router.uuid, "serviceofferingid": str(offering["id"])}
        self.run.parameters = params
        self.run.save(update_fields=["parameters"])
        if self.run.command == "scaleSystemVm":
            return self.follow(self.submit("scaleSystemVm", **params))
        data = self.call("changeServiceForRouter", **params)
        router = data.get("router") if isinstance(data.get("router"), dict) else {}
        name = router.get("serviceofferingname", offering.get("name")) if router else offering.get("name")
        self.step("submitted", "ok", f"changeServiceForRouter: the router's offering is now {name}")
        return JobOutcome(None, "succeeded", result={"serviceofferingname": name})

    def restart_service(self) -> JobOutcome:
        service = SERVICES[self.run.argument]
        router = self.router
        timeout = settings.SSH_COMMAND_TIMEOUT
        try:
            plan = plan_access(router)
        except (AccessError, ImproperlyConfigured) as exc:
            raise ActionFailed(f"cannot reach the router: {exc}") from None
        self.step("ssh", "running", f"connecting {plan.description}")
        try:
            with open_router_connection(plan, PinnedHostKeys()) as connection:
                if service.primary_only and router.is_redundant:
                    answer = connection.router.run(CHECK_ROLE_COMMAND, timeout=timeout)
                    role = answer.stdout.strip().removeprefix("Status:").strip() if answer.exit_status == 0 else ""
                    self.step(
                        "role", "info", f"checkrouter.sh says: {clean_line(answer.stdout.strip(), 200) or '(nothing)'}"
                    )
                    if role != "PRIMARY":
                        raise ActionFailed(
                            f"refused: {service.name} runs only on the PRIMARY and the router says "
                            f"{role or 'nothing readable'} (checkrouter.sh)"
                        )
                result = connection.router.run(service.command, timeout=timeout)
        except AccessError as exc:
            self._audit_ssh(plan.description, str(exc), exc.reason.value)
            raise ActionFailed(f"SSH to the router failed: {exc}") from None
        output = "\n".join(
            clean_line(line, 300) for line in (result.stdout + "\n" + result.stderr).strip().splitlines()[-10:]
        )
        self._audit_ssh(plan.description, f"restart-service {service.name}: exit {result.exit_status}", "ok")
        active = result.exit_status == 0 and all(line.strip() == "active" for line in result.stdout.split() if line)
        if not active:
            raise ActionFailed(
                f"{service.name} did not come back (exit status {result.exit_status}): {output or 'no output'}"
            )
        self.step("service", "ok", f"{service.name} restarted and active")
        return JobOutcome(None, "succeeded", result={"service": service.name, "output": output})

    def _audit_ssh(self, path: str, detail: str, outcome: str) -> None:
        AuditEntry.record(
            "ssh.session",
            user=self.run.requested_by,
            router=self.router,
            target=f"{self.router.name} {path}",
            detail=f"action {self.run.pk}: {detail}",
            outcome=outcome,
        )

    # --- Afterwards -------------------------------------------------------------------------

    def refresh(self) -> list[Router]:
        """Re-sync the router (its network's routers after a network restart); the Running ones to re-collect."""
        self.step("resync", "running", "re-reading the routers from CloudStack")
        try:
            if self.run.scope in ("network", "vpc"):
                routers = sync_network_routers(self.router)
            else:
                refreshed = sync_router(self.router)
                routers = [refreshed] if refreshed is not None else []
        except (ApiFailure, ImproperlyConfigured) as exc:
            self.step("resync", "failed", f"could not re-read the routers: {exc}")
            return []
        self.router.refresh_from_db()
        described = ", ".join(f"{r.name} {r.state}" for r in routers) or "none listed"
        self.step("resync", "ok", f"CloudStack lists: {described}")
        self.run.final_state = self.router.state if self.router.removed_at is None else "removed"
        self.run.result = {
            **self.run.result,
            "routers": [
                {"uuid": r.uuid, "name": r.name, "state": r.state, "redundant_state": r.redundant_state}
                for r in routers
            ],
        }
        replaced = [r for r in routers if r.pk != self.router.pk]
        if self.router.removed_at is not None and replaced:
            self.run.final_state = f"replaced by {', '.join(r.name for r in replaced)}"
        return [r for r in routers if r.state == RouterState.RUNNING]

    def recollect(self, routers: list[Router]) -> None:
        for router in routers:
            collection = Collection.objects.create(
                router=router, trigger=CollectionTrigger.ACTION, requested_by=self.run.requested_by
            )
            if self.run.after_collection_id is None:
                self.run.after_collection = collection
                self.run.save(update_fields=["after_collection"])
            self.step("recollect", "running", f"collecting {router.name} again (collection {collection.pk})")
            try:
                self.collect(collection)
            except Exception as exc:  # recorded on the collection; the action's own outcome stands
                logger.exception("re-collection %s after action %s errored", collection.pk, self.run.pk)
                self.step("recollect", "failed", f"collection {collection.pk} errored: {exc}")
                continue
            collection.refresh_from_db()
            self.step(
                "recollect",
                "ok" if collection.status == CollectionStatus.SUCCEEDED else "failed",
                f"{router.name}: collection {collection.pk} {collection.status}"
                + (f" ({collection.reason}: {collection.error})" if collection.error else ""),
            )


_JOB_WORDS = {JOB_PENDING: "in progress", JOB_SUCCEEDED: "succeeded", JOB_FAILED: "failed", 3: "cancelled"}


def _name(run: ActionRun) -> str:
    return f"{run.action}:{run.argument}" if run.argument else run.action


def execute_action(
    run: ActionRun,
    *,
    client: CloudStackClient | None = None,
    publish: events.Publisher = events.publish,
    collect: Collector = collect_and_evaluate,
    sleep: Callable[[float], None] = time.sleep,
) -> ActionRun:
    """Run a pending action to its end and record everything on its row (see the module docstring)."""
    if run.status != ActionStatus.PENDING or run.dry_run:
        return run
    run.status = ActionStatus.RUNNING
    run.started = timezone.now()
    run.save(update_fields=["status", "started"])
    execution = ActionExecution(run, client, publish, collect, sleep)
    execution.step("started", "info", f"{run.label or _name(run)} for {run.username}: {run.reason}")
    outcome = JobOutcome(None, "failed")
    try:
        try:
            replanned = plan_action(execution.router, run.action, run.argument)
            if replanned.refusal:
                raise ActionFailed(f"refused now: {replanned.refusal}")
            # The router may have changed since the request (a stopped router's offering vs a running one's).
            run.command = replanned.command[:255]
            if run.capture_evidence:
                execution.capture_evidence()
            outcome = execution.perform()
            run.error = outcome.error
        except ActionFailed as exc:
            run.error = str(exc)
            outcome = JobOutcome(run.job_id or None, "failed", error=str(exc))
        run.job_status = outcome.status if outcome.job_id else ""
        if outcome.result is not None:
            run.result = {**run.result, "job_result": outcome.result}
        if outcome.status == "failed":
            execution.step("outcome", "failed", f"failed: {run.error}")
        else:
            execution.step("outcome", "ok", "succeeded" + (f": job {outcome.job_id}" if outcome.job_id else ""))
        execution.recollect(execution.refresh())
        _finish(execution, ActionStatus.SUCCEEDED if outcome.status == "succeeded" else ActionStatus.FAILED, outcome)
    except Exception as exc:
        run.error = f"{type(exc).__name__}: {exc}"
        run.traceback = traceback.format_exc()
        _finish(execution, ActionStatus.ERRORED, outcome)
        raise
    return run


def _finish(execution: ActionExecution, status: str, outcome: JobOutcome) -> None:
    run = execution.run
    run.status = status
    run.finished = timezone.now()
    if not run.final_state:
        run.final_state = execution.router.state
    entry = AuditEntry.record(
        "action.finished",
        user=run.requested_by,
        router=execution.router,
        target=f"{run.scope} {run.target_name or run.target_uuid}",
        detail=(
            f"{_name(run)} (run {run.pk}) {status}: {run.command} {run.parameters}; job {run.job_id or '-'} "
            f"{run.job_status or '-'}; final state {run.final_state or '-'}; "
            f"evidence collection {run.evidence_collection_id or '-'}; reason: {run.reason}"
            + (f"; error: {run.error}" if run.error else "")
        ),
        outcome=status,
    )
    run.audit_entry = entry
    run.save()
    finished: events.ActionFinished = {
        "type": "action.finished",
        "action_id": run.pk,
        "router_id": run.router_id,
        "action": _name(run),
        "status": status,
        "job": {
            "id": run.job_id or None,
            "status": "succeeded" if status == ActionStatus.SUCCEEDED else "failed",
            "error": run.error,
        },
        "final_state": run.final_state,
        "error": run.error,
        "evidence_collection_id": run.evidence_collection_id,
        "after_collection_id": run.after_collection_id,
        "audit_id": entry.pk,
        "duration_s": run.duration_s,
    }
    execution.publish(execution.group, finished)
