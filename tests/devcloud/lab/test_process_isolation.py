"""Tests that each lab router has its own PID namespace: its own process list, init and pids."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from devcloud import lab
from devcloud.lab.topology import LabPlan, Router
from tests.devcloud.lab.conftest import in_router, key_files, router_of_kind, ssh_options

pytestmark = pytest.mark.lab


def _commands(router: Router) -> list[str]:
    return in_router(router, "ps", "-e", "-o", "comm=").split()


def _pidof(router: Router, program: str) -> list[str]:
    return in_router(router, "pidof", program, check=False).split()


def test_it_lists_only_the_routers_own_daemons(running_lab: LabPlan) -> None:
    commands = _commands(router_of_kind(running_lab, "isolated"))
    assert commands.count("sshd") == 1
    assert commands.count("dnsmasq") == 1
    assert "keepalived" not in commands


def test_it_shows_keepalived_only_in_redundant_routers(running_lab: LabPlan) -> None:
    assert "keepalived" in _commands(router_of_kind(running_lab, "redundant"))
    assert "keepalived" not in _commands(router_of_kind(running_lab, "vpc"))


def test_it_runs_the_lab_init_as_pid_one(running_lab: LabPlan) -> None:
    command_line = in_router(router_of_kind(running_lab, "isolated"), "cat", "/proc/1/cmdline")
    assert command_line.startswith("vrconsole-lab-init\0")


def test_it_writes_pid_files_with_the_routers_own_pids(running_lab: LabPlan) -> None:
    router = router_of_kind(running_lab, "isolated")
    pid = in_router(router, "cat", "/run/dnsmasq/dnsmasq.pid").strip()
    assert _pidof(router, "dnsmasq") == [pid]


def test_it_reports_the_machine_pid_of_the_routers_daemon_in_status(running_lab: LabPlan) -> None:
    router = router_of_kind(running_lab, "isolated")
    entry = next(item for item in lab.status(running_lab.name)["routers"] if item["name"] == router.name)
    status = Path(f"/proc/{entry['pids']['sshd']}/status").read_text()
    inner = next(line.split()[-1] for line in status.splitlines() if line.startswith("NSpid:"))
    assert _pidof(router, "sshd") == [inner]


def test_it_hides_other_routers_dnsmasq_after_dnsmasq_down(running_lab: LabPlan) -> None:
    faulty = router_of_kind(running_lab, "isolated")
    healthy = router_of_kind(running_lab, "vpc")
    lab.inject_fault(faulty.name, "dnsmasq-down", lab=running_lab.name)
    try:
        assert _pidof(faulty, "dnsmasq") == []
        assert len(_pidof(healthy, "dnsmasq")) == 1
    finally:
        lab.clear_fault(faulty.name, "dnsmasq-down", lab=running_lab.name)
    assert len(_pidof(faulty, "dnsmasq")) == 1


def test_it_reaps_orphaned_processes_inside_a_router(running_lab: LabPlan) -> None:
    router = router_of_kind(running_lab, "vpc")
    # The subshell exits at once, so the sleep is re-parented to the router's init.
    in_router(router, "/bin/sh", "-c", "(sleep 0.2 &)")
    deadline = time.monotonic() + 10
    while "sleep 0.2" in in_router(router, "ps", "-e", "-o", "args=") and time.monotonic() < deadline:
        time.sleep(0.2)
    states = in_router(router, "ps", "-e", "-o", "stat=").split()
    assert not [state for state in states if state.startswith("Z")]


def test_it_shows_an_ssh_session_only_its_routers_processes(running_lab: LabPlan) -> None:
    _, vr_key = key_files()
    router = router_of_kind(running_lab, "direct")
    output = subprocess.run(
        [
            "ssh",
            *ssh_options(),
            "-i",
            str(vr_key),
            "-p",
            "3922",
            f"root@{router.control.ipaddress}",
            "ps -e -o comm=",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    assert "keepalived" not in output
    assert output.count("dnsmasq") == 1
    assert "pytest" not in output
