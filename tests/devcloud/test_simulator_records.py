"""What the simulator records about router work (events, async jobs, log lines) and the commands the actions use."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests
from cs import CloudStack, CloudStackApiException

from devcloud.simulator.server import CONTROL_TOKEN_HEADER, RunningSimulator, start_simulator


def client(sim: RunningSimulator) -> CloudStack:
    return CloudStack(endpoint=sim.url, key=sim.api_key, secret=sim.secret_key)


def running_router(sim: RunningSimulator, **wanted: Any) -> dict[str, Any]:
    for router in sim.cloud.fleet.routers:
        if router.state == "Running" and all(router.data.get(k) == v for k, v in wanted.items()):
            return router.data
    raise AssertionError("no such router")


def wait_for_job(api: CloudStack, jobid: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while True:
        job = api.queryAsyncJobResult(jobid=jobid)
        if job["jobstatus"] != 0 or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def test_a_failed_start_leaves_a_failed_job_an_error_event_and_log_lines(tmp_path: Path) -> None:
    log = tmp_path / "management-server.log"
    with start_simulator(routers=20, seed=3, job_delay=0.1, management_log=log) as sim:
        router = running_router(sim)
        broken = sim.break_router(router["id"], "ssh-timeout")
        api = client(sim)
        assert broken["state"] == "Error" and "hostid" not in broken
        [job] = api.listAsyncJobs(listall=True)["asyncjobs"]
        assert job["cmd"].endswith("StartRouterCmd") and job["jobstatus"] == 2 and job["jobinstanceid"] == router["id"]
        assert job["jobresult"]["errortext"] == (
            f"Unable to start router {router['name']} due to: Timed out in waiting SSH execution result"
        )
        events = api.listEvents(listall=True, resourceid=router["id"], resourcetype="DomainRouter")["event"]
        assert [(e["level"], e["state"]) for e in events] == [
            ("ERROR", "Completed"),
            ("INFO", "Started"),
            ("INFO", "Scheduled"),
        ]
        assert events[0]["resourcename"] == router["name"] and events[0]["type"] == "ROUTER.START"
    text = log.read_text()
    assert f'"instanceName": "{router["name"]}"' in text and "\tat com.cloud.vm.VirtualMachineManagerImpl" in text


def test_events_filter_by_resource_from_4_17_only() -> None:
    with start_simulator(routers=10, seed=3, job_delay=0.1, version="4.16.1.0") as sim:
        first, second = [r.data for r in sim.cloud.fleet.routers if r.state == "Running"][:2]
        sim.break_router(first["id"])
        sim.break_router(second["id"])
        api = client(sim)
        # 4.16 does not know resourceid: the filter is ignored and the events carry no resource fields.
        events = api.listEvents(listall=True, resourceid=first["id"], resourcetype="DomainRouter")["event"]
        assert len(events) == 6 and "resourceid" not in events[0]


def test_every_router_job_records_scheduled_then_completed_or_error_events(cloudstack_sim: RunningSimulator) -> None:
    api = client(cloudstack_sim)
    router = running_router(cloudstack_sim)
    wait_for_job(api, api.rebootRouter(id=router["id"])["jobid"])
    wait_for_job(api, api.rebootRouter(id=router["id"])["jobid"])  # Running again: a second reboot succeeds
    cloudstack_sim.set_router(router["id"], state="Stopped")
    failed = wait_for_job(api, api.rebootRouter(id=router["id"])["jobid"])
    assert failed["jobresult"]["errortext"] == "Unable to reboot domR, it is not in right state Stopped"
    events = api.listEvents(listall=True, resourceid=router["id"], type="ROUTER.REBOOT")["event"]
    assert events[0]["level"] == "ERROR" and events[0]["description"].startswith("Error while rebooting router Vm")
    assert sum(1 for e in events if e["state"] == "Scheduled") == 3


def test_an_injected_failure_fails_the_next_job_with_its_text(cloudstack_sim: RunningSimulator) -> None:
    api = client(cloudstack_sim)
    network = cloudstack_sim.cloud.fleet.networks[0]
    headers = {CONTROL_TOKEN_HEADER: cloudstack_sim.control_token}
    order = {
        "action": "inject_failure",
        "command": "restartNetwork",
        "errortext": "Failed to implement network",
        "target": network["id"],
    }
    requests.post(cloudstack_sim.control_url, json=order, headers=headers, timeout=5).raise_for_status()
    job = wait_for_job(api, api.restartNetwork(id=network["id"])["jobid"])
    assert job["jobstatus"] == 2 and job["jobresult"] == {"errorcode": 530, "errortext": "Failed to implement network"}
    assert wait_for_job(api, api.restartNetwork(id=network["id"])["jobid"])["jobstatus"] == 1


def test_break_router_through_the_control_endpoint(cloudstack_sim: RunningSimulator) -> None:
    router = running_router(cloudstack_sim)
    headers = {CONTROL_TOKEN_HEADER: cloudstack_sim.control_token}
    order = {"action": "break_router", "id": router["name"], "failure": "host-down"}
    answer = requests.post(cloudstack_sim.control_url, json=order, headers=headers, timeout=5)
    assert answer.json()["router"]["state"] == "Error"
    bad = requests.post(cloudstack_sim.control_url, json={**order, "failure": "meteor"}, headers=headers, timeout=5)
    assert bad.status_code == 400 and "unknown start failure" in bad.json()["error"]


def test_upgrade_router_template_queues_a_reboot_only_for_routers_that_need_it(
    cloudstack_sim: RunningSimulator,
) -> None:
    api = client(cloudstack_sim)
    old = running_router(cloudstack_sim, requiresupgrade=True)
    current = running_router(cloudstack_sim, requiresupgrade=False)
    assert api.upgradeRouterTemplate(id=current["id"]) == {}
    [queued] = api.upgradeRouterTemplate(id=old["id"])["asyncjobs"]
    job = wait_for_job(api, queued["jobid"])
    assert job["cmd"].endswith("RebootRouterCmd") and job["jobstatus"] == 1
    assert job["jobresult"]["router"]["requiresupgrade"] is False


def test_the_offering_of_a_router_changes_only_when_stopped(cloudstack_sim: RunningSimulator) -> None:
    api = client(cloudstack_sim)
    router = running_router(cloudstack_sim, hypervisor="KVM")
    large = [
        o
        for o in api.listServiceOfferings(issystem=True, systemvmtype="domainrouter")["serviceoffering"]
        if "Large" in o["name"]
    ][0]
    with pytest.raises(CloudStackApiException) as refused:
        api.changeServiceForRouter(id=router["id"], serviceofferingid=large["id"])
    assert refused.value.error["errorcode"] == 431
    assert (
        "make sure the router is stopped and not in an error state before upgrading" in refused.value.error["errortext"]
    )
    cloudstack_sim.set_router(router["id"], state="Stopped")
    changed = api.changeServiceForRouter(id=router["id"], serviceofferingid=large["id"])["router"]
    assert changed["serviceofferingname"] == large["name"]


def test_scale_system_vm_scales_a_running_vmware_router_and_refuses_xenserver(cloudstack_sim: RunningSimulator) -> None:
    api = client(cloudstack_sim)
    router = running_router(cloudstack_sim, hypervisor="VMware")
    large = api.listServiceOfferings(issystem=True, systemvmtype="domainrouter")["serviceoffering"][1]
    job = wait_for_job(api, api.scaleSystemVm(id=router["id"], serviceofferingid=large["id"])["jobid"])
    assert job["jobstatus"] == 1 and job["jobresult"]["systemvm"]["serviceofferingid"] == large["id"]
    cloudstack_sim.cloud.find_router(router["id"]).data["hypervisor"] = "XenServer"
    with pytest.raises(CloudStackApiException) as refused:
        api.scaleSystemVm(id=router["id"], serviceofferingid=large["id"])
    assert (
        refused.value.error["errortext"]
        == "Dynamic Scaling operation is not permitted for this hypervisor on system vm"
    )
