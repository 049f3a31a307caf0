"""What the simulated management server records about its work: events, failure texts, its log file.

A real management server leaves three traces of every router operation, and VR Console's
error triage reads all three: action events (`listEvents`: a `Scheduled` INFO event when an
async command is queued, then `Completed` INFO or an ERROR "Error while <description>" when
it ends, ActionEventInterceptor), the async job with CloudStack's error text
(`listAsyncJobs`, `queryAsyncJobResult`), and lines in
/var/log/cloudstack/management/management-server.log naming the router's instance name and
uuid, with the Java exception and its stack. `EventLog` keeps the events and renders them in
the shapes of the simulated version (resourceid/resourcetype/resourcename only from 4.17,
EventResponse); `ManagementLog` appends log lines in the log4j layout when a file is given;
`START_FAILURES` are the reasons a router start fails in real clouds, with CloudStack's texts.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devcloud.simulator.synthetic import ApiObject, format_date, version_tuple

# Event types of the commands the simulator runs (com.cloud.event.EventTypes).
EVENT_TYPES = {
    "start": "ROUTER.START",
    "stop": "ROUTER.STOP",
    "reboot": "ROUTER.REBOOT",
    "destroy": "ROUTER.DESTROY",
    "upgrade": "ROUTER.UPGRADE",
    "scale": "VM.UPGRADE",
    "health": "ROUTER.HEALTH.CHECKS",
    "restart-network": "NETWORK.RESTART",
    "restart-vpc": "VPC.RESTART",
}
# The @ActionEvent descriptions CloudStack writes (VirtualNetworkApplianceManagerImpl, NetworkService).
EVENT_DESCRIPTIONS = {
    "start": "starting router Vm",
    "stop": "stopping router Vm",
    "reboot": "rebooting router Vm",
    "destroy": "destroying router Vm",
    "upgrade": "upgrading router to a new service offering",
    "scale": "Upgrading system vm",
    "restart-network": "restarting network",
    "restart-vpc": "restarting VPC",
}


@dataclass(frozen=True)
class StartFailure:
    """Why a router start failed: the job's error code and text, and the exception the log shows."""

    errorcode: int
    cserrorcode: int
    text: str  # {name} and {host} are filled in
    exception: str


START_FAILURES: dict[str, StartFailure] = {
    # The most common reason in real clouds: no host or storage left for the router's offering.
    "insufficient-capacity": StartFailure(
        533,
        4325,
        "Unable to create a deployment for VM[DomainRouter|{name}]",
        "com.cloud.exception.InsufficientServerCapacityException",
    ),
    # vr_cfg.sh took longer than the SSH timeout (CLOUDSTACK.md §5.2).
    "ssh-timeout": StartFailure(
        530,
        4250,
        "Unable to start router {name} due to: Timed out in waiting SSH execution result",
        "com.cloud.utils.exception.CloudRuntimeException",
    ),
    # The router's host went away during the start.
    "host-down": StartFailure(
        534,
        4380,
        "Resource [Host:{host}] is unreachable: Host {host}: Unable to start {name}: the host is down",
        "com.cloud.exception.ResourceUnavailableException",
    ),
}


class EventLog:
    """The management server's events, newest last; rendered per caller view and version."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.events: list[ApiObject] = []
        self._ids = itertools.count(1)

    def add(
        self,
        kind: str,
        level: str,
        state: str,
        description: str,
        owner: ApiObject,
        resource: tuple[str, str, str],
        username: str = "admin",
    ) -> ApiObject:
        """Record one event; `resource` is (resource id, resource type, resource name)."""
        number = next(self._ids)
        event: ApiObject = {
            "id": f"e7e7e7e7-0000-4000-8000-{number:012d}",
            "username": username,
            "type": EVENT_TYPES.get(kind, kind),
            "level": level,
            "description": description,
            "account": owner.get("account", "system"),
            "domainid": owner.get("domainid", ""),
            "domain": owner.get("domain", "ROOT"),
            "created": format_date(datetime.now(UTC)),
            "state": state,
            "parentid": "",
            "_resource": resource,
            "_domainpath": owner.get("domainpath", "ROOT"),
        }
        self.events.append(event)
        return event

    def view(self, event: ApiObject) -> ApiObject:
        """The event as EventResponse serialises it in the simulated version."""
        out = {k: v for k, v in event.items() if not k.startswith("_") and v != ""}
        version = version_tuple(self.version)
        if version >= (4, 17):
            out["resourceid"], out["resourcetype"], out["resourcename"] = event["_resource"]
        if version >= (4, 19, 2):
            out["domainpath"] = event["_domainpath"]
        return out

    def matching(self, params: dict[str, str], visible: Any) -> list[ApiObject]:
        """listEvents' filters, newest first; `visible(event)` applies the caller's account scope."""
        version = version_tuple(self.version)
        keyword = (params.get("keyword") or "").lower()
        found = []
        for event in reversed(self.events):
            if params.get("id") and event["id"] != params["id"]:
                continue
            if params.get("level") and event["level"] != params["level"].upper():
                continue
            if params.get("type") and event["type"] != params["type"]:
                continue
            if keyword and keyword not in event["description"].lower() and keyword not in event["type"].lower():
                continue
            # A server older than 4.17 does not know these parameters and ignores them (the trap the console avoids).
            if version >= (4, 17):
                resource_id, resource_type, _ = event["_resource"]
                if params.get("resourceid") and params["resourceid"] != resource_id:
                    continue
                if params.get("resourcetype") and params["resourcetype"].lower() != resource_type.lower():
                    continue
            if not _within(event["created"], params.get("startdate"), params.get("enddate")):
                continue
            if not visible(event):
                continue
            found.append(event)
        return found


def _within(created: str, start: str | None, end: str | None) -> bool:
    moment = parse_param_date(created)
    if moment is None:
        return True
    if start:
        since = parse_param_date(start)
        if since is not None and moment < since:
            return False
    if end:
        until = parse_param_date(end)
        if until is not None and moment > until:
            return False
    return True


def parse_param_date(text: str) -> datetime | None:
    """A date parameter as the API accepts it: yyyy-MM-dd, yyyy-MM-dd HH:mm:ss or yyyy-MM-dd'T'HH:mm:ssZ (UTC)."""
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            moment = datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


class ManagementLog:
    """Appends management-server.log lines (log4j: `date LEVEL [class] (thread) (logid) message`)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._jobs = itertools.count(4100)

    def write(self, level: str, logger: str, message: str, stack: tuple[str, ...] = ()) -> None:
        if self.path is None:
            return
        now = datetime.now(UTC)
        stamp = now.strftime("%Y-%m-%d %H:%M:%S,") + f"{now.microsecond // 1000:03d}"
        job = next(self._jobs)
        thread = f"(Work-Job-Executor-{job % 7 + 1}:ctx-{job:08x} job-{job}/job-{job + 1} ctx-{job * 7:08x})"
        lines = [f"{stamp} {level:<5} [{logger}] {thread} (logid:{job * 13:08x}) {message}", *stack]
        with self._lock:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")

    def start_failed(self, router: ApiObject, failure: StartFailure, text: str) -> None:
        """The lines a failed router start leaves: the orchestration error, then the exception with its stack."""
        name, uuid = router.get("name", ""), router.get("id", "")
        self.write(
            "INFO",
            "c.c.n.r.VirtualNetworkApplianceManagerImpl",
            f'Starting router VM instance {{"id": 0, "instanceName": "{name}", "uuid": "{uuid}", '
            '"type": "DomainRouter"}',
        )
        self.write(
            "ERROR",
            "c.c.v.VirtualMachineManagerImpl",
            f'Unable to orchestrate start VM instance {{"instanceName": "{name}", "uuid": "{uuid}"}} due to [{text}].',
            (
                f"{failure.exception}: {text}",
                "\tat com.cloud.vm.VirtualMachineManagerImpl.orchestrateStart(VirtualMachineManagerImpl.java:1442)",
                "\tat com.cloud.vm.VirtualMachineManagerImpl.orchestrateStart(VirtualMachineManagerImpl.java:5522)",
                "\tat java.base/java.lang.Thread.run(Thread.java:829)",
            ),
        )

    def job_finished(self, router: ApiObject, what: str, ok: bool, text: str = "") -> None:
        name, uuid = router.get("name", ""), router.get("id", "")
        if ok:
            self.write("INFO", "c.c.a.ApiAsyncJobDispatcher", f"{what} of router {name} ({uuid}) completed")
        else:
            self.write("ERROR", "c.c.a.ApiAsyncJobDispatcher", f"{what} of router {name} ({uuid}) failed: {text}")
