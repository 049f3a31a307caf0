"""The simulated CloudStack's commands: list visibility, pagination, async router jobs.

`SimulatedCloud` holds the fleet (lab objects first, then synthetic ones) and answers one API
command for one authenticated caller with an HTTP status and a JSON body, exactly in the real
envelopes (CLOUDSTACK.md §1.2-§1.11). Visibility follows the real API: without `listall` a
caller sees only its own account's objects, `listall=true` adds every account it may see, and
project objects appear only with `projectid=<id>` or `projectid=-1`. Async jobs change router
states on a schedule that is applied lazily, under the lock, whenever the cloud is consulted.
"""

from __future__ import annotations

import copy
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devcloud.simulator.records import (
    EVENT_DESCRIPTIONS,
    START_FAILURES,
    EventLog,
    ManagementLog,
    parse_param_date,
)
from devcloud.simulator.synthetic import (
    _DOMAINS,
    _SERVICE_OFFERINGS,
    ADMIN_OWNER,
    ApiObject,
    Fleet,
    Owner,
    SimRouter,
    control_mac,
    format_date,
    generate_fleet,
    health_checks,
    load_lab_file,
    requires_upgrade,
    template_version_of,
    version_tuple,
)

MAX_PAGE_SIZE = 500
# Errors the management server answers with (ApiErrorCode / CSExceptionErrorCode, §1.3).
PARAM_ERROR = 431
UNSUPPORTED_ACTION_ERROR = 432
INTERNAL_ERROR = 530
CS_INVALID_PARAMETER = 4350
CS_CLOUD_RUNTIME = 4250
CS_SERVER_API = 9999
# ApiServer answers an unknown command with 432 and this text. The exact wording could not
# be checked against a live server; it is the text operators quote for unknown commands.
UNKNOWN_COMMAND_TEXT = "The given command does not exist or it is not available for user"

_MANAGEMENT_SERVER_ID = "a1b2c3d4-0000-4000-8000-00000000cafe"


class ApiError(Exception):
    """A command failed the way the real server reports it: errorcode, cserrorcode and text."""

    def __init__(self, errorcode: int, errortext: str, cserrorcode: int = CS_INVALID_PARAMETER) -> None:
        super().__init__(errortext)
        self.errorcode = errorcode
        self.errortext = errortext
        self.cserrorcode = cserrorcode


@dataclass(frozen=True)
class Caller:
    """The user behind an API key: root admin, or a domain admin who gets the reduced router fields."""

    api_key: str
    secret_key: str
    owner: Owner
    is_root_admin: bool
    userid: str
    accountid: str


# The management server itself (HA, the health-check recreation): jobs it starts belong to admin.
SYSTEM_CALLER = Caller(
    api_key="",
    secret_key="",
    owner=ADMIN_OWNER,
    is_root_admin=True,
    userid="5a7f1b8e-0000-4000-8000-000000000000",
    accountid="5a7f1b8e-0000-4000-8000-000000000001",
)


@dataclass
class Job:
    """One async job as queryAsyncJobResult reports it."""

    id: str
    cmd: str
    caller: Caller
    instancetype: str
    instanceid: str
    created: datetime
    status: int = 0
    resultcode: int = 0
    result: ApiObject | None = None
    completed: datetime | None = None
    # What the job's events name: the kind of operation (records.EVENT_TYPES), the resource
    # (id, type, name) and its owner (account fields).
    kind: str = ""
    resource: tuple[str, str, str] = ("", "", "")
    owner: ApiObject = field(default_factory=dict)
    # A reboot queued by upgradeRouterTemplate: the router comes back on the current template.
    upgrades_template: bool = False


@dataclass
class InjectedFailure:
    """The next `remaining` jobs of `command` (for one resource id, or any) fail with CloudStack's text."""

    command: str
    errortext: str
    errorcode: int = 530
    target: str | None = None
    remaining: int = 1
    # The router's state once the job has failed (None: the state it had before).
    router_state: str | None = None


@dataclass(order=True)
class _Step:
    due: float
    order: int
    action: Callable[[], None] = field(compare=False)


def _flag(params: dict[str, str], name: str) -> bool:
    # Java Boolean.parseBoolean: anything but "true" (any case) is false.
    return params.get(name, "").lower() == "true"


def error_body(command: str, errorcode: int, errortext: str, cserrorcode: int) -> str:
    """The real error envelope (§1.3)."""
    key = f"{command.lower()}response" if command else "errorresponse"
    inner = {"uuidList": [], "errorcode": errorcode, "cserrorcode": cserrorcode, "errortext": errortext}
    return json.dumps({key: inner}, separators=(",", ":"))


def _missing(command: str, name: str) -> ApiError:
    return ApiError(PARAM_ERROR, f"Unable to execute API command {command.lower()} due to missing parameter {name}")


def _invalid_id(command: str, name: str, value: str) -> ApiError:
    return ApiError(
        PARAM_ERROR,
        f"Unable to execute API command {command.lower()} due to invalid value. Invalid parameter {name} "
        f"value={value} due to incorrect long value format, or entity does not exist or due to incorrect "
        "parameter annotation for the field in api cmd class.",
    )


def page_window(params: dict[str, str]) -> tuple[int, int | None]:
    """(start, size) from page/pagesize with BaseListCmd's rules; size None = everything."""
    page, pagesize = params.get("page"), params.get("pagesize")
    if pagesize is not None and page is None:
        try:
            unlimited = int(pagesize) == -1
        except ValueError:
            unlimited = False
        if not unlimited:
            raise ApiError(PARAM_ERROR, '"page" parameter is required when "pagesize" is specified')
    if page is not None and pagesize is None:
        raise ApiError(PARAM_ERROR, '"pagesize" parameter is required when "page" is specified')
    if pagesize is None:
        return 0, None
    try:
        size = int(pagesize)
        number = int(page) if page is not None else 1
    except ValueError:
        raise ApiError(
            PARAM_ERROR, "Unable to execute API command due to invalid value: page and pagesize must be numbers"
        ) from None
    if size == -1:
        if page is not None:
            raise ApiError(PARAM_ERROR, "Can't specify page parameter when pagesize is -1 (Unlimited)")
        return 0, None
    if size > MAX_PAGE_SIZE:
        raise ApiError(PARAM_ERROR, f"Page size can't exceed max allowed page size value: {MAX_PAGE_SIZE}")
    if size < 1 or number < 1:
        raise ApiError(PARAM_ERROR, "Page and pagesize must be positive numbers")
    return size * (number - 1), size


def list_body(command: str, object_name: str, total: int, items: list[str]) -> str:
    """The list envelope; `{}` inside when the page is empty (§0.11)."""
    key = f"{command.lower()}response"
    if not items:
        return f'{{"{key}":{{}}}}'
    return f'{{"{key}":{{"count":{total},"{object_name}":[{",".join(items)}]}}}}'


class SimulatedCloud:
    """The state of one simulated management server and the commands it answers."""

    def __init__(
        self,
        routers: int = 50,
        seed: int = 1,
        version: str = "4.20.1.0",
        lab_file: str | Path | None = None,
        job_delay: float = 1.0,
        reproduce_healthchecksfailed_bug: bool = True,
        management_log: str | Path | None = None,
    ) -> None:
        self.router_count = routers
        self.seed = seed
        self.version = version
        self.lab_file = Path(lab_file) if lab_file else None
        self.job_delay = job_delay
        self.reproduce_healthchecksfailed_bug = reproduce_healthchecksfailed_bug
        self.lock = threading.RLock()
        self.jobs: dict[str, Job] = {}
        self.event_log = EventLog(version)
        self.management_log = ManagementLog(Path(management_log) if management_log else None)
        self.injected_failures: list[InjectedFailure] = []
        self._steps: list[_Step] = []
        self._step_order = 0
        self._json_cache: dict[tuple[int, bool], tuple[ApiObject, str]] = {}
        self._rng = random.Random(seed ^ 0x5EED)
        self._lab_mtime: float | None = None
        # Cleared on every change; list results are reused until then (paging a 10,000-router
        # fleet would otherwise filter all of it again for each page).
        self._next_number = 0
        self._next_control = -1
        self._matches: dict[tuple[Any, ...], list[Any]] = {}
        self._lab = Fleet()
        self._lab_taken: set[str] = set()
        self._synthetic = Fleet()
        self.fleet = Fleet()
        self.routers_by_id: dict[str, SimRouter] = {}
        self._load_lab(force=True)
        self.reset_fleet()

    # Fleet bookkeeping.

    def reset_fleet(self) -> None:
        """Back to the generated fleet (and the lab file as it is now); pending jobs are dropped."""
        with self.lock:
            self._synthetic = generate_fleet(self.router_count, self.seed, self.version, taken=self._lab_taken)
            self._steps.clear()
            self._rebuild()

    def _rebuild(self) -> None:
        fleet = Fleet()
        fleet.extend(self._lab)
        fleet.extend(self._synthetic)
        self.fleet = fleet
        self.routers_by_id = {r.id: r for r in fleet.routers}
        self._json_cache.clear()
        self.changed()

    def _load_lab(self, force: bool = False) -> None:
        if not self.lab_file:
            return
        try:
            mtime = self.lab_file.stat().st_mtime
        except OSError:
            mtime = None
        if not force and mtime == self._lab_mtime:
            return
        self._lab_mtime = mtime
        if mtime is None:
            self._lab, self._lab_taken = Fleet(), set()
            return
        lab = load_lab_file(self.lab_file)
        self._lab = lab.fleet
        clash = self._synthetic_values() & lab.taken
        self._lab_taken = lab.taken
        if clash:
            self._synthetic = generate_fleet(self.router_count, self.seed, self.version, taken=self._lab_taken)

    def _synthetic_values(self) -> set[str]:
        values: set[str] = set()
        for router in self._synthetic.routers:
            values.update(
                (router.id, router.name, str(router.data.get("linklocalip")), str(router.data.get("publicip")))
            )
        return values

    def refresh(self) -> None:
        """Re-read a changed lab file and apply every job step that is due."""
        with self.lock:
            if self.lab_file:
                before = self._lab_mtime
                try:
                    self._load_lab()
                except ValueError:
                    # A half-written lab file: keep serving the last good one until it settles.
                    self._lab_mtime = before
                if self._lab_mtime != before:
                    self._rebuild()
            now = time.monotonic()
            while self._steps and self._steps[0].due <= now:
                step = self._steps.pop(0)
                step.action()
                self.changed()

    def changed(self) -> None:
        """Note that the fleet changed: cached list results are stale."""
        self._matches.clear()

    def _matching(
        self, command: str, params: dict[str, str], caller: Caller, compute: Callable[[], list[Any]]
    ) -> list[Any]:
        ignored = ("page", "pagesize", "signature", "expires", "apiKey", "signatureVersion", "response", "command")
        key = (command, caller.api_key, tuple(sorted((k, v) for k, v in params.items() if k not in ignored)))
        found = self._matches.get(key)
        if found is None:
            if len(self._matches) > 256:
                self._matches.clear()
            found = self._matches[key] = compute()
        return found

    def prewarm(self) -> None:
        """Serialise the root-admin views of routers, networks, VPCs and hosts now, so the first sync does not pay."""
        with self.lock:
            for router in self.fleet.routers:
                for with_checks in (False, True):
                    self._router_text(router, True, with_checks)
            for obj in [*self.fleet.networks, *self.fleet.vpcs, *self.fleet.hosts]:
                self._render(obj, True)

    # Visibility.

    def _domain_path(self, obj: ApiObject) -> str:
        if obj.get("domainpath"):
            return str(obj["domainpath"])
        for uid, _name, path in _DOMAINS:
            if uid == obj.get("domainid"):
                return path
        return "ROOT"

    def visible(self, obj: ApiObject, caller: Caller, params: dict[str, str]) -> bool:
        """Whether a list call with these parameters shows this owned object to this caller."""
        account = obj.get("account", ADMIN_OWNER.account)
        domainid = obj.get("domainid", ADMIN_OWNER.domainid)
        path = self._domain_path(obj)
        mine = caller.owner.domainpath
        in_reach = caller.is_root_admin or path == mine or path.startswith(mine + "/")
        project = obj.get("projectid")
        wanted_project = params.get("projectid")
        if wanted_project:
            if not project or not in_reach:
                return False
            return wanted_project == "-1" or wanted_project == project
        if project:
            return False
        if params.get("account") and account != params["account"]:
            return False
        if params.get("domainid"):
            scope = params["domainid"]
            if _flag(params, "isrecursive"):
                scope_path = self._domain_path({"domainid": scope})
                return in_reach and (path == scope_path or path.startswith(scope_path + "/"))
            return in_reach and domainid == scope
        if _flag(params, "listall"):
            return in_reach
        return account == caller.owner.account and domainid == caller.owner.domainid

    # Rendering.

    def _render(self, obj: ApiObject, admin: bool) -> str:
        key = (id(obj), admin)
        hit = self._json_cache.get(key)
        if hit is not None and hit[0] is obj:
            return hit[1]
        view = obj if admin else {k: v for k, v in obj.items() if k not in ("broadcasturi", "vlan")}
        tiers = view.get("network")
        if isinstance(tiers, list) and tiers and all(isinstance(t, dict) for t in tiers):
            # A VPC embeds its tiers: reuse their cached JSON instead of encoding them again.
            rest = json.dumps({k: v for k, v in view.items() if k != "network"}, separators=(",", ":"))
            text = f'{rest[:-1]},"network":[{",".join(self._render(t, admin) for t in tiers)}]}}'
        else:
            text = json.dumps(view, separators=(",", ":"))
        self._json_cache[key] = (obj, text)
        return text

    def _router_text(self, router: SimRouter, caller: Caller | bool, with_checks: bool) -> str:
        return router.render(
            admin=caller if isinstance(caller, bool) else caller.is_root_admin,
            with_checks=with_checks,
            legacy_master=self.legacy_master,
            report_failed_checks=self.failed_checks_flag,
        )

    @property
    def has_health_checks(self) -> bool:
        """The health-check framework and its API arrived in 4.14 (§1.7)."""
        return version_tuple(self.version) >= (4, 14)

    @property
    def failed_checks_flag(self) -> bool | None:
        """How listRouters fills healthchecksfailed: None (absent), False (bug #12630) or the truth."""
        if not self.has_health_checks:
            return None
        return not self.reproduce_healthchecksfailed_bug

    @property
    def legacy_master(self) -> bool:
        """Before 4.16 the API says MASTER where it now says PRIMARY (§0.3)."""
        return version_tuple(self.version) < (4, 16)

    # Dispatch.

    def handle(self, command: str, params: dict[str, str], caller: Caller) -> tuple[int, str]:
        """(HTTP status, JSON body) for one authenticated API call."""
        handler = self._commands().get(command)
        if command == "getRouterHealthCheckResults" and not self.has_health_checks:
            handler = None
        if handler is None:
            return UNSUPPORTED_ACTION_ERROR, error_body(
                command, UNSUPPORTED_ACTION_ERROR, UNKNOWN_COMMAND_TEXT, CS_SERVER_API
            )
        try:
            with self.lock:
                self.refresh()
                try:
                    return 200, handler(command, params, caller)
                finally:
                    if not command.startswith("list"):
                        self.changed()
        except ApiError as exc:
            return exc.errorcode, error_body(command, exc.errorcode, exc.errortext, exc.cserrorcode)

    def _commands(self) -> dict[str, Callable[[str, dict[str, str], Caller], str]]:
        return {
            "listZones": self._list_zones,
            "listHosts": self._list_hosts,
            "listNetworks": self._list_networks,
            "listVPCs": self._list_vpcs,
            "listRouters": self._list_routers,
            "listTemplates": self._list_templates,
            "listCapabilities": self._list_capabilities,
            "getRouterHealthCheckResults": self._health_check_results,
            "rebootRouter": self._reboot_router,
            "startRouter": self._start_router,
            "stopRouter": self._stop_router,
            "destroyRouter": self._destroy_router,
            "restartNetwork": self._restart_network,
            "restartVPC": self._restart_vpc,
            "queryAsyncJobResult": self._query_job,
            "listEvents": self._list_events,
            "listAsyncJobs": self._list_async_jobs,
            "listServiceOfferings": self._list_service_offerings,
            "upgradeRouterTemplate": self._upgrade_router_template,
            "changeServiceForRouter": self._change_service_for_router,
            "scaleSystemVm": self._scale_system_vm,
        }

    def _page(
        self, command: str, object_name: str, items: list[Any], render: Callable[[Any], str], params: dict[str, str]
    ) -> str:
        start, size = page_window(params)
        window = items[start:] if size is None else items[start : start + size]
        return list_body(command, object_name, len(items), [render(i) for i in window])

    @staticmethod
    def _keyword(obj: ApiObject, params: dict[str, str]) -> bool:
        keyword = params.get("keyword")
        return not keyword or keyword.lower() in str(obj.get("name", "")).lower()

    def _require_root_admin(self, command: str, caller: Caller) -> None:
        if not caller.is_root_admin:
            raise ApiError(UNSUPPORTED_ACTION_ERROR, UNKNOWN_COMMAND_TEXT, CS_SERVER_API)

    def _list_zones(self, command: str, params: dict[str, str], caller: Caller) -> str:
        items = [
            z
            for z in self.fleet.zones
            if (not params.get("id") or z.get("id") == params["id"])
            and (not params.get("name") or z.get("name") == params["name"])
            and self._keyword(z, params)
        ]
        return self._page(command, "zone", items, lambda o: self._render(o, True), params)

    def _list_hosts(self, command: str, params: dict[str, str], caller: Caller) -> str:
        self._require_root_admin(command, caller)
        filters = ("id", "name", "zoneid", "podid", "clusterid", "type", "state", "resourcestate", "hypervisor")
        items = [
            h
            for h in self.fleet.hosts
            if all(not params.get(f) or str(h.get(f, "")) == params[f] for f in filters) and self._keyword(h, params)
        ]
        return self._page(command, "host", items, lambda o: self._render(o, True), params)

    def _list_networks(self, command: str, params: dict[str, str], caller: Caller) -> str:
        filters = ("id", "zoneid", "vpcid", "type", "traffictype")
        forvpc = params.get("forvpc")
        items = self._matching(
            command,
            params,
            caller,
            lambda: [
                n
                for n in self.fleet.networks
                if all(not params.get(f) or str(n.get(f, "")) == params[f] for f in filters)
                and (forvpc is None or bool(n.get("vpcid")) == (forvpc.lower() == "true"))
                and self._keyword(n, params)
                and self.visible(n, caller, params)
            ],
        )
        return self._page(command, "network", items, lambda o: self._render(o, caller.is_root_admin), params)

    def _list_vpcs(self, command: str, params: dict[str, str], caller: Caller) -> str:
        filters = ("id", "zoneid", "state", "name")
        items = self._matching(
            command,
            params,
            caller,
            lambda: [
                v
                for v in self.fleet.vpcs
                if all(not params.get(f) or str(v.get(f, "")) == params[f] for f in filters)
                and self._keyword(v, params)
                and self.visible(v, caller, params)
            ],
        )
        return self._page(command, "vpc", items, lambda o: self._render(o, caller.is_root_admin), params)

    def _list_templates(self, command: str, params: dict[str, str], caller: Caller) -> str:
        which = params.get("templatefilter")
        if not which:
            raise _missing(command, "templatefilter")
        items = [
            t
            for t in self.fleet.templates
            if (which != "system" or t.get("templatetype") == "SYSTEM")
            and all(not params.get(f) or str(t.get(f, "")) == params[f] for f in ("id", "zoneid", "hypervisor", "name"))
            and self._keyword(t, params)
        ]
        return self._page(command, "template", items, lambda o: self._render(o, True), params)

    def _list_capabilities(self, command: str, params: dict[str, str], caller: Caller) -> str:
        capability = {
            "cloudstackversion": self.version,
            "securitygroupsenabled": False,
            "userpublictemplateenabled": True,
            "supportELB": "false",
            "projectinviterequired": False,
            "allowusercreateprojects": True,
            "customdiskofferingminsize": 1,
            "customdiskofferingmaxsize": 1024,
            "kvmsnapshotenabled": True,
            "apilimitinterval": 1,
            "apilimitmax": -1,
            "allowuserviewdestroyedvm": False,
            "allowuserexpungerecovervm": False,
            "dynamicrolesenabled": True,
        }
        return json.dumps({"listcapabilitiesresponse": {"capability": capability}}, separators=(",", ":"))

    def _list_routers(self, command: str, params: dict[str, str], caller: Caller) -> str:
        items = self._matching(command, params, caller, lambda: self._matching_routers(params, caller))
        with_checks = _flag(params, "fetchhealthcheckresults") and self.has_health_checks
        return self._page(command, "router", items, lambda r: self._router_text(r, caller, with_checks), params)

    def _matching_routers(self, params: dict[str, str], caller: Caller) -> list[SimRouter]:
        exact = ("id", "name", "zoneid", "podid", "hostid", "state", "vpcid")
        wanted = {f: params[f] for f in exact if params.get(f)}
        networkid = params.get("networkid")
        forvpc = params.get("forvpc")
        version = params.get("version")
        failed_only = params.get("healthchecksfailed")
        items = []
        for router in self.fleet.routers:
            data = router.data
            if any(str(data.get(f, "")) != v for f, v in wanted.items()):
                continue
            if networkid and networkid not in router.network_ids:
                continue
            if forvpc is not None and bool(data.get("vpcid")) != (forvpc.lower() == "true"):
                continue
            if version and not str(data.get("version", "")).startswith(version):
                continue
            if failed_only is not None and router.has_failing_checks() != (failed_only.lower() == "true"):
                continue
            if not self._keyword(data, params) or not self.visible(data, caller, params):
                continue
            items.append(router)
        return items

    def _router(self, command: str, params: dict[str, str], name: str = "id") -> SimRouter:
        value = params.get(name)
        if not value:
            raise _missing(command, name)
        router = self.routers_by_id.get(value)
        if router is None:
            raise _invalid_id(command, name, value)
        return router

    def _health_check_results(self, command: str, params: dict[str, str], caller: Caller) -> str:
        self._require_root_admin(command, caller)
        value = params.get("routerid")
        if not value:
            raise _missing(command, "routerid")
        router = self.routers_by_id.get(value)
        if router is None:
            raise ApiError(PARAM_ERROR, "Can't find router by routerId")
        if _flag(params, "performfreshchecks"):
            if router.state != "Running":
                raise ApiError(
                    INTERNAL_ERROR,
                    f"Failed to get health check results due to: Router {router.name} is not in Running state",
                    CS_CLOUD_RUNTIME,
                )
            stamp = format_date(datetime.now(UTC))
            router.set_checks([{**item, "lastupdated": stamp} for item in router.checks])
        body = {"routerhealthchecks": {"routerid": router.id, "healthchecks": router.checks}}
        return json.dumps({"getrouterhealthcheckresultsresponse": body}, separators=(",", ":"))

    # Async jobs.

    def _new_job(
        self,
        cmd: str,
        caller: Caller,
        instancetype: str,
        instanceid: str,
        kind: str = "",
        subject: ApiObject | None = None,
    ) -> Job:
        """A queued job; with a `kind`, its `Scheduled` event is recorded against `subject` (router, network, VPC)."""
        subject = subject or {}
        job = Job(
            id=self._uuid(),
            cmd=cmd,
            caller=caller,
            instancetype=instancetype,
            instanceid=instanceid,
            created=datetime.now(UTC),
            kind=kind,
            resource=(instanceid, instancetype, str(subject.get("name", ""))),
            owner={k: subject.get(k) for k in ("account", "domainid", "domain", "domainpath") if subject.get(k)},
        )
        self.jobs[job.id] = job
        if kind:
            self._job_event(job, "INFO", "Scheduled", EVENT_DESCRIPTIONS.get(kind, kind))
        return job

    def _job_event(self, job: Job, level: str, state: str, description: str) -> None:
        self.event_log.add(job.kind, level, state, description, job.owner, job.resource, job.caller.owner.account)

    def _uuid(self) -> str:
        h = f"{self._rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"

    def _at(self, fraction: float, *actions: Callable[[], None]) -> None:
        """Run these actions, in order, once `fraction` of the job delay has passed."""
        for action in actions:
            self._step_order += 1
            self._steps.append(_Step(time.monotonic() + self.job_delay * fraction, self._step_order, action))
        self._steps.sort()

    def _finish(self, job: Job, result: ApiObject) -> None:
        job.status, job.resultcode, job.result = 1, 0, result
        job.completed = datetime.now(UTC)
        if job.kind:
            self._job_event(
                job, "INFO", "Completed", f"Successfully completed {EVENT_DESCRIPTIONS.get(job.kind, job.kind)}"
            )

    def _fail(self, job: Job, text: str, errorcode: int = INTERNAL_ERROR) -> None:
        job.status, job.resultcode = 2, errorcode
        job.result = {"errorcode": errorcode, "errortext": text}
        job.completed = datetime.now(UTC)
        if job.kind:
            # ActionEventInterceptor: "Error while " + the description, with the event details.
            details = f". {job.instancetype} Id: {job.instanceid}" if job.instanceid else ""
            self._job_event(
                job, "ERROR", "Completed", f"Error while {EVENT_DESCRIPTIONS.get(job.kind, job.kind)}{details}"
            )

    def _take_injected(self, command: str, target: str) -> InjectedFailure | None:
        """The injected failure for this command and resource, counted down."""
        for failure in self.injected_failures:
            if failure.command.lower() != command.lower() or (failure.target and failure.target != target):
                continue
            failure.remaining -= 1
            if failure.remaining <= 0:
                self.injected_failures.remove(failure)
            return failure
        return None

    def _submitted(self, command: str, job: Job) -> str:
        return json.dumps({f"{command.lower()}response": {"jobid": job.id}}, separators=(",", ":"))

    def _router_result(self, router: SimRouter) -> ApiObject:
        return {
            "router": router.view(
                admin=True,
                with_checks=False,
                legacy_master=self.legacy_master,
                report_failed_checks=self.failed_checks_flag,
            )
        }

    def _peers(self, router: SimRouter) -> list[SimRouter]:
        if not router.data.get("isredundantrouter"):
            return []
        key = "vpcid" if router.data.get("vpcid") else "guestnetworkid"
        return [
            r
            for r in self.fleet.routers
            if r is not router and r.data.get("isredundantrouter") and r.data.get(key) == router.data.get(key)
        ]

    def move_router(self, router: SimRouter, state: str) -> None:
        """Set a router's state the way the management server would, keeping a redundant pair consistent."""
        data = router.data
        data["state"] = state
        if state in ("Stopped", "Destroyed", "Expunging"):
            for key in ("hostid", "hostname", "hostcontrolstate"):
                if key in data:
                    router.parked_host[key] = data.pop(key)
        elif state in ("Starting", "Running") and router.parked_host:
            data.update(router.parked_host)
            router.parked_host.clear()
        if data.get("isredundantrouter"):
            peers = self._peers(router)
            if state != "Running":
                was_primary = data.get("redundantstate") == "PRIMARY"
                data["redundantstate"] = "UNKNOWN"
                if was_primary:
                    for peer in peers:
                        if peer.state == "Running" and peer.data.get("redundantstate") == "BACKUP":
                            peer.data["redundantstate"] = "PRIMARY"
                            peer.touch()
                            break
            else:
                has_primary = any(p.data.get("redundantstate") == "PRIMARY" for p in peers)
                data["redundantstate"] = "BACKUP" if has_primary else "PRIMARY"
        router.touch()

    def _router_job(self, command: str, params: dict[str, str], caller: Caller, cmd: str, plan: str) -> str:
        router = self._router(command, params)
        job = self._new_job(cmd, caller, "DomainRouter", router.id, plan, router.data)
        return self._run_router_job(command, params, router, job, plan)

    def _run_router_job(self, command: str, params: dict[str, str], router: SimRouter, job: Job, plan: str) -> str:
        needs = {
            "reboot": ("Running",),
            "stop": ("Running", "Starting", "Error"),
            "start": ("Stopped",),
            "destroy": None,
        }
        allowed = needs[plan]
        if allowed is not None and router.state not in allowed and not (plan == "stop" and _flag(params, "forced")):
            message = {
                "reboot": "Unable to reboot domR, it is not in right state Stopped",
                "stop": f"Unable to stop router {router.name} as it is in state {router.state}",
                "start": f"Unable to start router {router.name} as it is in state {router.state}",
            }[plan]
            if plan == "reboot":
                message = f"Unable to reboot domR, it is not in right state {router.state}"

            def refused() -> None:
                self._fail(job, message)
                self.management_log.job_finished(router.data, plan, False, message)

            self._at(0.2, refused)
            return self._submitted(command, job)
        router.pending_job = job.id
        router.touch()
        injected = self._take_injected(command, router.id)
        if injected is not None:
            before = router.state
            transient = "Starting" if plan == "start" else "Stopping"
            self.move_router(router, transient)

            def failed() -> None:
                router.pending_job = None
                end = injected.router_state or ("Error" if plan in ("start", "reboot") else before)
                self.move_router(router, end)
                self._fail(job, injected.errortext, injected.errorcode)
                self.management_log.job_finished(router.data, plan, False, injected.errortext)

            self._at(1.0, failed)
            return self._submitted(command, job)

        def done() -> None:
            router.pending_job = None
            router.touch()
            if job.upgrades_template:
                router.data["version"] = template_version_of(self.version)
                router.data["softwareversion"] = self.version
                router.data["requiresupgrade"] = False
                router.touch()
            self._finish(job, self._router_result(router))
            self.management_log.job_finished(router.data, plan, True)

        if plan == "reboot":
            self.move_router(router, "Stopping")
            self._at(0.4, lambda: self.move_router(router, "Starting"))
            self._at(1.0, lambda: self.move_router(router, "Running"), done)
        elif plan == "stop":
            self.move_router(router, "Stopping")
            self._at(1.0, lambda: self.move_router(router, "Stopped"), done)
        elif plan == "start":
            self.move_router(router, "Starting")
            self._at(1.0, lambda: self.move_router(router, "Running"), done)
        else:
            self.move_router(router, "Stopping")
            self._at(0.5, lambda: self.move_router(router, "Expunging"))
            self._at(1.0, done, lambda: self.remove_router(router.id))
        return self._submitted(command, job)

    def _reboot_router(self, command: str, params: dict[str, str], caller: Caller) -> str:
        return self._router_job(
            command, params, caller, "org.apache.cloudstack.api.command.admin.router.RebootRouterCmd", "reboot"
        )

    def _start_router(self, command: str, params: dict[str, str], caller: Caller) -> str:
        return self._router_job(
            command, params, caller, "org.apache.cloudstack.api.command.admin.router.StartRouterCmd", "start"
        )

    def _stop_router(self, command: str, params: dict[str, str], caller: Caller) -> str:
        return self._router_job(
            command, params, caller, "org.apache.cloudstack.api.command.admin.router.StopRouterCmd", "stop"
        )

    def _destroy_router(self, command: str, params: dict[str, str], caller: Caller) -> str:
        return self._router_job(
            command, params, caller, "org.apache.cloudstack.api.command.admin.router.DestroyRouterCmd", "destroy"
        )

    def _restart(self, command: str, params: dict[str, str], caller: Caller, kind: str) -> str:
        value = params.get("id")
        if not value:
            raise _missing(command, "id")
        pool = self.fleet.networks if kind == "Network" else self.fleet.vpcs
        subject = next((o for o in pool if o.get("id") == value), None)
        if subject is None:
            raise _invalid_id(command, "id", value)
        cmd = (
            "org.apache.cloudstack.api.command.user.network.RestartNetworkCmd"
            if kind == "Network"
            else "org.apache.cloudstack.api.command.user.vpc.RestartVPCCmd"
        )
        job = self._new_job(cmd, caller, kind, value, "restart-vpc" if kind == "Vpc" else "restart-network", subject)
        injected = self._take_injected(command, value)
        if injected is not None:
            self._at(1.0, lambda: self._fail(job, injected.errortext, injected.errorcode))
            return self._submitted(command, job)
        key = "vpcid" if kind == "Vpc" else None
        routers = [r for r in self.fleet.routers if (r.data.get("vpcid") == value if key else value in r.network_ids)]
        if _flag(params, "cleanup"):
            # Cleanup destroys the routers and deploys fresh ones from the current template.
            for router in routers:
                self.move_router(router, "Stopping")
            replacements = [self._replacement(r) for r in routers]

            def swap() -> None:
                for old in routers:
                    self.remove_router(old.id)
                for new in replacements:
                    self._add(new)

            def start_replacements() -> None:
                for new in replacements:
                    self.move_router(new, "Running")

            self._at(0.5, swap)
            self._at(1.0, start_replacements)
        self._at(1.0, lambda: self._finish(job, {"success": True}))
        return self._submitted(command, job)

    def _replacement(self, old: SimRouter) -> SimRouter:
        """A freshly deployed router in the old one's place: new id and name, current template, checks passing."""
        data = copy.deepcopy(old.data)
        data["id"] = self._uuid()
        names = {r.name for r in self.fleet.routers}
        self._next_number = max(self._next_number, self.fleet.next_router_number)
        while f"r-{self._next_number}-VM" in names:
            self._next_number += 1
        data["name"] = f"r-{self._next_number}-VM"
        self._next_number += 1
        data["state"] = "Starting"
        data["created"] = format_date(datetime.now(UTC))
        data["version"] = template_version_of(self.version)
        data["softwareversion"] = self.version
        data["requiresupgrade"] = requires_upgrade(data, self.version)
        if data.get("isredundantrouter"):
            data["redundantstate"] = "UNKNOWN"
        for nic in data.get("nic", []):
            nic["id"] = self._uuid()
        if old.synthetic and str(data.get("linklocalip", "")).startswith("169.254."):
            # A new VR gets a new link-local address; lab routers keep theirs, their namespace has it.
            self._give_control_ip(data)
        for key in ("hostid", "hostname", "hostcontrolstate"):
            if key in old.parked_host:
                data[key] = old.parked_host[key]
        fresh = SimRouter(data)
        fresh.set_checks(health_checks(data, (), datetime.now(UTC)))
        return fresh

    def _give_control_ip(self, data: ApiObject) -> None:
        used = {str(r.data.get("linklocalip")) for r in self.fleet.routers}
        while True:
            # 169.254.96.0/19: above what labs use, below the synthetic fleet's 169.254.128.0/17.
            self._next_control += 1
            ip = f"169.254.{96 + self._next_control // 250}.{self._next_control % 250 + 2}"
            if ip not in used:
                break
        mac = control_mac(ip)
        data["linklocalip"], data["linklocalmacaddress"] = ip, mac
        for nic in data.get("nic", []):
            if nic.get("traffictype") == "Control":
                nic["ipaddress"], nic["macaddress"] = ip, mac

    def _restart_network(self, command: str, params: dict[str, str], caller: Caller) -> str:
        return self._restart(command, params, caller, "Network")

    def _restart_vpc(self, command: str, params: dict[str, str], caller: Caller) -> str:
        return self._restart(command, params, caller, "Vpc")

    def _job_body(self, job: Job) -> ApiObject:
        """An AsyncJobResponse (queryAsyncJobResult, listAsyncJobs)."""
        body: ApiObject = {
            "accountid": job.caller.accountid,
            "account": job.caller.owner.account,
            "domainid": job.caller.owner.domainid,
            "domainpath": job.caller.owner.domainpath,
            "userid": job.caller.userid,
            "cmd": job.cmd,
            "jobstatus": job.status,
            "jobprocstatus": 0,
            "jobresultcode": job.resultcode,
            "jobinstancetype": job.instancetype,
            "jobinstanceid": job.instanceid,
            "created": format_date(job.created),
            "jobid": job.id,
        }
        if version_tuple(self.version) >= (4, 19):
            body["managementserverid"] = _MANAGEMENT_SERVER_ID
        if job.result is not None:
            body["jobresulttype"] = "object"
            body["jobresult"] = job.result
        if job.completed:
            body["completed"] = format_date(job.completed)
        return body

    def _query_job(self, command: str, params: dict[str, str], caller: Caller) -> str:
        value = params.get("jobid")
        if not value:
            raise _missing(command, "jobid")
        job = self.jobs.get(value)
        if job is None:
            raise _invalid_id(command, "jobid", value)
        return json.dumps({"queryasyncjobresultresponse": self._job_body(job)}, separators=(",", ":"))

    def _list_async_jobs(self, command: str, params: dict[str, str], caller: Caller) -> str:
        since = parse_param_date(params["startdate"]) if params.get("startdate") else None
        if params.get("startdate") and since is None:
            raise ApiError(PARAM_ERROR, f"Unable to parse date {params['startdate']} for command {command.lower()}")
        items = [
            job
            for job in self.jobs.values()
            if (since is None or job.created >= since)
            and (caller.is_root_admin and _flag(params, "listall") or job.caller.api_key == caller.api_key)
        ]
        items.sort(key=lambda job: job.created, reverse=True)
        return self._page(command, "asyncjobs", items, lambda j: json.dumps(self._job_body(j)), params)

    def _list_events(self, command: str, params: dict[str, str], caller: Caller) -> str:
        for name in ("startdate", "enddate"):
            if params.get(name) and parse_param_date(params[name]) is None:
                raise ApiError(PARAM_ERROR, f"Unable to parse date {params[name]} for command {command.lower()}")

        def visible(event: ApiObject) -> bool:
            owner = {"account": event["account"], "domainid": event["domainid"], "domainpath": event["_domainpath"]}
            return self.visible(owner, caller, {k: v for k, v in params.items() if k != "projectid"})

        items = self.event_log.matching(params, visible)
        return self._page(command, "event", items, lambda e: json.dumps(self.event_log.view(e)), params)

    def _list_service_offerings(self, command: str, params: dict[str, str], caller: Caller) -> str:
        items = [
            offering for offering in self.service_offerings() if not params.get("id") or offering["id"] == params["id"]
        ]
        if params.get("issystem", "").lower() != "true":
            items = []  # the simulator has only the routers' system offerings
        if params.get("systemvmtype") and params["systemvmtype"] != "domainrouter":
            items = []
        return self._page(command, "serviceoffering", items, lambda o: json.dumps(o), params)

    @staticmethod
    def service_offerings() -> list[ApiObject]:
        """The system offerings routers use (listServiceOfferings issystem=true systemvmtype=domainrouter)."""
        offerings = []
        for index, (uuid, name) in enumerate(_SERVICE_OFFERINGS):
            large = index > 0
            offerings.append(
                {
                    "id": uuid,
                    "name": name,
                    "displaytext": name,
                    "cpunumber": 2 if large else 1,
                    "cpuspeed": 1000 if large else 500,
                    "memory": 1024 if large else 256,
                    "created": "2024-01-01T00:00:00+0000",
                    "storagetype": "shared",
                    "offerha": True,
                    "limitcpuuse": False,
                    "isvolatile": False,
                    "issystem": True,
                    "defaultuse": not large,
                    "systemvmtype": "domainrouter",
                    "iscustomized": False,
                    "hasannotations": False,
                }
            )
        return offerings

    def _offering(self, command: str, params: dict[str, str]) -> ApiObject:
        value = params.get("serviceofferingid")
        if not value:
            raise _missing(command, "serviceofferingid")
        offering = next((o for o in self.service_offerings() if o["id"] == value), None)
        if offering is None:
            raise _invalid_id(command, "serviceofferingid", value)
        return offering

    def _upgrade_router_template(self, command: str, params: dict[str, str], caller: Caller) -> str:
        """Synchronous: one RebootRouterCmd job per router not at the latest version (UpgradeRouterTemplateCmd)."""
        self._require_root_admin(command, caller)
        targets = ("id", "zoneid", "podid", "clusterid", "domainid")
        if sum(1 for name in targets if params.get(name)) > 1:
            raise ApiError(
                PARAM_ERROR,
                "Multiple parameters not supported. Specify only one among routerId/zoneId/podId/clusterId/accountId/domainId",
            )
        routers: list[SimRouter] = []
        if params.get("id"):
            routers = [self._router(command, params)]
        elif params.get("zoneid"):
            routers = [
                r for r in self.fleet.routers if r.data.get("zoneid") == params["zoneid"] and r.state == "Running"
            ]
        jobs = []
        for router in routers:
            if not requires_upgrade(router.data, self.version) and not router.data.get("requiresupgrade"):
                continue
            job = self._new_job(
                "org.apache.cloudstack.api.command.admin.router.RebootRouterCmd",
                caller,
                "DomainRouter",
                router.id,
                "reboot",
                router.data,
            )
            job.upgrades_template = True
            self._run_router_job("rebootRouter", {"id": router.id}, router, job, "reboot")
            jobs.append(job)
        items = [json.dumps({"jobid": job.id}) for job in jobs]
        return list_body(command, "asyncjobs", len(items), items)

    def _change_service_for_router(self, command: str, params: dict[str, str], caller: Caller) -> str:
        """Synchronous; only a Stopped router (VirtualNetworkApplianceManagerImpl.upgradeRouter)."""
        self._require_root_admin(command, caller)
        router = self._router(command, params)
        offering = self._offering(command, params)
        if router.data.get("serviceofferingid") != offering["id"]:
            if router.state != "Stopped":
                raise ApiError(
                    PARAM_ERROR,
                    f'Unable to upgrade router VM instance {{"id": 0, "instanceName": "{router.name}", '
                    f'"uuid": "{router.id}", "type": "DomainRouter"}} in state {router.state}; '
                    "make sure the router is stopped and not in an error state before upgrading.",
                )
            router.data["serviceofferingid"] = offering["id"]
            router.data["serviceofferingname"] = offering["name"]
            router.touch()
            self.event_log.add(
                "upgrade",
                "INFO",
                "Completed",
                "Successfully completed upgrading router to a new service offering",
                router.data,
                (router.id, "DomainRouter", router.name),
                caller.owner.account,
            )
        body = {"router": self._router_result(router)["router"]}
        return json.dumps({"changeserviceforrouterresponse": body}, separators=(",", ":"))

    def _scale_system_vm(self, command: str, params: dict[str, str], caller: Caller) -> str:
        """Async; refused for a Running XenServer VM, and needs dynamic scaling on the others (ScaleSystemVMCmd)."""
        self._require_root_admin(command, caller)
        router = self._router(command, params)
        offering = self._offering(command, params)
        hypervisor = str(router.data.get("hypervisor", ""))
        if hypervisor == "XenServer" and router.state == "Running":
            raise ApiError(PARAM_ERROR, "Dynamic Scaling operation is not permitted for this hypervisor on system vm")
        job = self._new_job(
            "org.apache.cloudstack.api.command.admin.systemvm.ScaleSystemVMCmd",
            caller,
            "DomainRouter",
            router.id,
            "scale",
            router.data,
        )

        def scaled() -> None:
            if router.state == "Running" and hypervisor != "VMware":
                self._fail(job, f"Unable to scale the VM {router.name}: dynamic scaling is not enabled for it")
                return
            router.data["serviceofferingid"] = offering["id"]
            router.data["serviceofferingname"] = offering["name"]
            router.touch()
            self._finish(job, {"systemvm": self._router_result(router)["router"]})

        self._at(1.0, scaled)
        return json.dumps({"changeserviceforsystemvmresponse": {"jobid": job.id}}, separators=(",", ":"))

    # Fleet mutations for tests and benches.

    def find_router(self, id_or_name: str) -> SimRouter:
        with self.lock:
            router = self.routers_by_id.get(id_or_name)
            if router is None:
                router = next((r for r in self.fleet.routers if r.name == id_or_name), None)
            if router is None:
                raise KeyError(f"no router {id_or_name!r}")
            return router

    def set_router(
        self,
        id_or_name: str,
        state: str | None = None,
        redundantstate: str | None = None,
        failing_checks: list[str] | None = None,
    ) -> ApiObject:
        """Force a router's state, redundant state or failing health checks; returns its admin API dict."""
        with self.lock:
            router = self.find_router(id_or_name)
            if failing_checks is not None:
                router.set_checks(health_checks(router.data, tuple(failing_checks), datetime.now(UTC)))
            if state:
                self.move_router(router, state)
            if redundantstate:
                router.data["redundantstate"] = redundantstate
                router.touch()
            self.changed()
            return dict(router.data)

    def break_router(self, id_or_name: str, failure: str = "insufficient-capacity") -> ApiObject:
        """Put a router in Error the way a failed start does: a failed StartRouterCmd job, its events, log lines."""
        if failure not in START_FAILURES:
            raise ValueError(f"unknown start failure {failure!r}; one of {', '.join(START_FAILURES)}")
        reason = START_FAILURES[failure]
        with self.lock:
            router = self.find_router(id_or_name)
            host = str(router.data.get("hostid") or router.parked_host.get("hostid") or "")
            text = reason.text.format(name=router.name, host=host[:8] or "?")
            job = self._new_job(
                "org.apache.cloudstack.api.command.admin.router.StartRouterCmd",
                SYSTEM_CALLER,
                "DomainRouter",
                router.id,
                "start",
                router.data,
            )
            self._job_event(job, "INFO", "Started", EVENT_DESCRIPTIONS["start"])
            self.move_router(router, "Error")
            for key in ("hostid", "hostname", "hostcontrolstate"):
                if key in router.data:
                    router.parked_host[key] = router.data.pop(key)
            router.touch()
            job.status, job.resultcode = 2, reason.errorcode
            job.result = {"errorcode": reason.errorcode, "errortext": text}
            job.completed = datetime.now(UTC)
            self._job_event(
                job, "ERROR", "Completed", f"Error while {EVENT_DESCRIPTIONS['start']}. Router Id: {router.id}"
            )
            self.management_log.start_failed(router.data, reason, text)
            self.changed()
            return dict(router.data)

    def inject_failure(
        self,
        command: str,
        errortext: str,
        errorcode: int = INTERNAL_ERROR,
        target: str | None = None,
        count: int = 1,
        router_state: str | None = None,
    ) -> None:
        """Make the next `count` jobs of `command` (for `target`, or any) fail with this CloudStack text."""
        if count < 1:
            raise ValueError("count must be at least 1")
        with self.lock:
            self.injected_failures.append(InjectedFailure(command, errortext, errorcode, target, count, router_state))

    def set_network(self, network_id: str, **fields: Any) -> ApiObject:
        """Change fields of one network (listNetworks' item), as an operator's edit would."""
        with self.lock:
            network = next((n for n in self.fleet.networks if n.get("id") == network_id), None)
            if network is None:
                raise ApiError(PARAM_ERROR, f"Unable to find network with id {network_id}")
            network.update(fields)
            self._json_cache.clear()  # a VPC's text embeds its tiers' too
            self.changed()
            return network

    def remove_router(self, id_or_name: str) -> None:
        with self.lock:
            router = self.find_router(id_or_name)
            self.fleet.routers.remove(router)
            for part in (self._lab, self._synthetic):
                if router in part.routers:
                    part.routers.remove(router)
            self.routers_by_id.pop(router.id, None)
            self.changed()

    def _add(self, router: SimRouter) -> None:
        self._synthetic.routers.append(router)
        self.fleet.routers.append(router)
        self.routers_by_id[router.id] = router

    def add_router(self, router: ApiObject | None = None, **overrides: Any) -> ApiObject:
        """Add an API-shaped router, or a fresh copy of the first synthetic one; returns its dict."""
        with self.lock:
            if router is None:
                template = next((r for r in self._synthetic.routers), None)
                if template is None:
                    raise KeyError("no synthetic router to copy")
                added = self._replacement(template)
                added.data["state"] = "Running"
                if added.data.get("isredundantrouter"):
                    added.data["redundantstate"] = "BACKUP"
                added.data.update(overrides)
                added.touch()
            else:
                added = SimRouter({**router, **overrides}, synthetic=False)
            if not added.id or added.id in self.routers_by_id:
                raise ValueError("a new router needs an id no other router has")
            self._add(added)
            self.changed()
            return dict(added.data)
