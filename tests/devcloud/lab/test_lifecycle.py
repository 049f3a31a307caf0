"""Tests for lab up/down/status on real namespaces (root only)."""

from __future__ import annotations

import subprocess

import pytest

from devcloud import lab
from devcloud.lab.lifecycle import LabError
from devcloud.lab.topology import LabPlan
from tests.devcloud.lab.conftest import lab_available
from tests.lab_slots import lab_block, lab_name

pytestmark = pytest.mark.lab


def _namespaces() -> set[str]:
    return set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout.split())


def test_it_reports_every_namespace_it_created(running_lab: LabPlan) -> None:
    report = lab.status(running_lab.name)
    assert set(report["namespaces"]) <= _namespaces()
    assert {router["name"] for router in report["routers"]} == {router.name for router in running_lab.routers}


def test_it_runs_sshd_in_every_router(running_lab: LabPlan) -> None:
    report = lab.status(running_lab.name)
    assert all(router["pids"]["sshd"] for router in report["routers"])


def test_it_refuses_a_second_up_of_the_same_lab(running_lab: LabPlan) -> None:
    with pytest.raises(LabError):
        lab.up(name=running_lab.name, block=running_lab.block)


def test_it_refuses_a_block_another_lab_uses(running_lab: LabPlan) -> None:
    with pytest.raises(LabError):
        lab.up(name=lab_name("vrco"), block=running_lab.block, router_count=1)


def test_it_leaves_nothing_behind_after_down() -> None:
    if not lab_available():
        pytest.skip("the lab needs Linux and root")
    state = lab.up(name=lab_name("vrcd"), block=lab_block(62), router_count=1)
    lab.down(lab_name("vrcd"))
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    addresses = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    processes = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert not set(state.namespaces) & _namespaces()
    assert not [link for link in state.root_links if f" {link}:" in links or f" {link}@" in links]
    assert "198.19.62." not in addresses
    assert f"/lab/{lab_name('vrcd')}/" not in processes
    assert lab.status(lab_name("vrcd")) == {"name": lab_name("vrcd"), "up": False}
