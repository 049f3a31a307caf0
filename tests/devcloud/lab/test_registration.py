"""Tests that the registration file (what the API simulator serves) matches the real lab."""

from __future__ import annotations

import json
import subprocess

import pytest

from devcloud import lab
from devcloud.lab.topology import LabPlan
from tests.devcloud.lab.conftest import in_router

pytestmark = pytest.mark.lab


def _registration(plan: LabPlan) -> dict:
    return json.loads(lab.registration_path(plan.name).read_text())


def test_it_registers_every_lab_router(running_lab: LabPlan) -> None:
    names = {item["name"] for item in _registration(running_lab)["routers"]}
    assert names == {router.name for router in running_lab.routers}


def test_it_registers_the_ips_macs_and_mtus_the_kernel_has(running_lab: LabPlan) -> None:
    for item in _registration(running_lab)["routers"]:
        router = running_lab.router(item["name"])
        links = json.loads(
            subprocess.run(
                ["ip", "-j", "-n", router.namespace, "addr"], capture_output=True, text=True, check=True
            ).stdout
        )
        kernel = {
            (link["address"], info["local"], link["mtu"])
            for link in links
            for info in link.get("addr_info", [])
            if info["family"] == "inet" and link["ifname"] != "lo"
        }
        registered = {(nic["macaddress"], nic["ipaddress"], nic["mtu"]) for nic in item["nic"]}
        assert registered <= kernel


def test_it_registers_the_redundant_states_checkrouter_reports(running_lab: LabPlan) -> None:
    for item in _registration(running_lab)["routers"]:
        router = running_lab.router(item["name"])
        if router.redundant:
            status = in_router(router, "/opt/cloud/bin/checkrouter.sh").strip()
            assert status == f"Status: {item['redundantstate']}"


def test_it_registers_the_host_at_its_management_address(running_lab: LabPlan) -> None:
    kvm = next(host for host in _registration(running_lab)["hosts"] if host["hypervisor"] == "KVM")
    assert (kvm["ipaddress"], kvm["state"], kvm["type"]) == (running_lab.host_ip, "Up", "Routing")


def test_it_registers_link_local_control_addresses_for_kvm_routers(running_lab: LabPlan) -> None:
    for item in _registration(running_lab)["routers"]:
        if item["hypervisor"] == "KVM":
            assert item["linklocalip"].startswith("169.254.")
            assert item["linklocalmacaddress"].startswith("0e:00:a9:fe:")
