"""checkrouter.sh's decision, for isolated and VPC routers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from diagnostics.probes import vrrp


def test_it_says_fault_when_keepalived_is_not_active() -> None:
    assert vrrp.decide("router", None, False, 2, "UP")[0] == "FAULT"


def test_it_says_primary_for_an_isolated_router_holding_the_vip() -> None:
    assert vrrp.decide("router", None, True, 2, "UP")[0] == "PRIMARY"


def test_it_says_backup_for_an_isolated_router_without_the_vip() -> None:
    assert vrrp.decide("router", None, True, 1, "UP")[0] == "BACKUP"


def test_it_says_backup_for_an_isolated_router_with_three_addresses() -> None:
    # checkrouter compares the inet line count with exactly 2.
    assert vrrp.decide("router", None, True, 3, "UP")[0] == "BACKUP"


def test_it_says_primary_for_a_vpc_router_with_eth1_up() -> None:
    assert vrrp.decide("vpcrouter", 2, True, 1, "UP")[0] == "PRIMARY"


def test_it_says_backup_for_a_vpc_router_with_eth1_down() -> None:
    assert vrrp.decide("vpcrouter", 2, True, 1, "DOWN")[0] == "BACKUP"


def test_it_says_unknown_for_a_vpc_router_without_guest_nics_even_if_keepalived_is_down() -> None:
    assert vrrp.decide("vpcrouter", 0, False, 1, "DOWN")[0] == "UNKNOWN"


def test_it_says_unknown_when_eth1_state_is_neither_up_nor_down() -> None:
    assert vrrp.decide("vpcrouter", 1, True, 1, "")[0] == "UNKNOWN"


def test_it_never_returns_the_router_password_from_cmdline() -> None:
    assert "router_password" not in vrrp.COMMAND


@pytest.mark.skipif(Path("/ramdisk/rrouter/keepalived.log").exists(), reason="this machine has a heartbeat log")
def test_it_exits_zero_when_a_router_has_no_heartbeat_log() -> None:
    # A router that is not redundant has no /ramdisk/rrouter: its answer is still meaningful.
    completed = subprocess.run(["sh", "-c", vrrp.COMMAND], capture_output=True, text=True, timeout=30)
    assert completed.returncode == 0
    assert vrrp.parse(completed.stdout).keepalived_log == ()
