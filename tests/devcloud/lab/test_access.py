"""Tests for reaching lab routers over real SSH: through the KVM host, or directly (VMware)."""

from __future__ import annotations

import subprocess

import pytest

from devcloud.lab.topology import LabPlan
from tests.devcloud.lab.conftest import key_files, router_of_kind, ssh_options

pytestmark = pytest.mark.lab


def _ssh(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout


def test_it_reaches_a_kvm_router_through_the_host(running_lab: LabPlan) -> None:
    host_key, vr_key = key_files()
    router = router_of_kind(running_lab, "isolated")
    jump = " ".join(["ssh", *ssh_options(), "-i", str(host_key), "-W", "%h:%p", f"root@{running_lab.host_ip}"])
    output = _ssh(
        [
            "ssh",
            *ssh_options(),
            "-o",
            f"ProxyCommand={jump}",
            "-i",
            str(vr_key),
            "-p",
            "3922",
            f"root@{router.control.ipaddress}",
            "hostname",
        ]
    )
    assert output.strip() == router.name


def test_it_attaches_kvm_control_nics_only_to_the_hosts_cloud0(running_lab: LabPlan) -> None:
    router = router_of_kind(running_lab, "isolated")
    output = subprocess.run(
        ["ip", "-n", running_lab.host_namespace, "-o", "link", "show", "master", "cloud0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f" {router.control.peer_name}@" in output


def test_it_reaches_a_direct_router_on_its_control_address(running_lab: LabPlan) -> None:
    _, vr_key = key_files()
    router = router_of_kind(running_lab, "direct")
    output = _ssh(
        ["ssh", *ssh_options(), "-i", str(vr_key), "-p", "3922", f"root@{router.control.ipaddress}", "hostname"]
    )
    assert output.strip() == router.name


def test_it_answers_virsh_on_the_host_from_the_lab(running_lab: LabPlan) -> None:
    host_key, _ = key_files()
    output = _ssh(["ssh", *ssh_options(), "-i", str(host_key), f"root@{running_lab.host_ip}", "virsh", "list", "--all"])
    assert router_of_kind(running_lab, "vpc").name in output
    assert router_of_kind(running_lab, "direct").name not in output


def test_it_answers_virsh_domstate_with_its_reason_on_the_host(running_lab: LabPlan) -> None:
    host_key, _ = key_files()
    router = router_of_kind(running_lab, "vpc")
    output = _ssh(
        [
            "ssh",
            *ssh_options(),
            "-i",
            str(host_key),
            f"root@{running_lab.host_ip}",
            f"virsh domstate --reason {router.name} 2>&1 | head -n 5",
        ]
    )
    assert output.strip() == "running (booted)"
