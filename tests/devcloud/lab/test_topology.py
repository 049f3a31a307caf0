"""Tests for the lab plan: names, addresses and MACs (pure, no root needed)."""

from __future__ import annotations

import pytest

from devcloud.lab.topology import PlanError, fleet_kinds, link_local_mac, plan_lab


def test_it_derives_the_control_mac_from_the_link_local_ip() -> None:
    assert link_local_mac("169.254.3.93") == "0e:00:a9:fe:03:5d"


def test_it_plans_one_router_of_each_kind_by_default() -> None:
    kinds = [router.kind for router in plan_lab("vrc", 0).routers]
    assert sorted(set(kinds)) == ["direct", "isolated", "redundant", "vpc"]
    assert kinds.count("redundant") == 2


def test_it_keeps_interface_names_within_the_kernel_limit() -> None:
    plan = plan_lab("abcdefgh", 0, 240)
    names = [plan.root_bridge, plan.host_uplink] + [nic.peer_name for router in plan.routers for nic in router.nics]
    assert max(len(name) for name in names) <= 15


def test_it_gives_every_router_distinct_control_addresses() -> None:
    plan = plan_lab("vrc", 0, 100)
    controls = [router.control.ipaddress for router in plan.routers]
    assert len(set(controls)) == len(controls)


def test_it_lays_out_isolated_and_vpc_nics_as_cloudstack_does() -> None:
    plan = plan_lab("vrc", 0)
    isolated = next(router for router in plan.routers if router.kind == "isolated")
    vpc = next(router for router in plan.routers if router.kind == "vpc")
    assert [nic.traffictype for nic in isolated.nics] == ["Guest", "Control", "Public"]
    assert [nic.traffictype for nic in vpc.nics][:3] == ["Control", "Public", "Guest"]


def test_it_never_ends_a_fleet_with_half_a_pair() -> None:
    assert fleet_kinds(4)[-1] == "isolated"


def test_it_puts_direct_routers_in_the_lab_block() -> None:
    direct = next(router for router in plan_lab("vrc", 7).routers if router.kind == "direct")
    assert direct.control.ipaddress.startswith("198.19.7.")


def test_it_refuses_a_name_that_would_overflow_interface_names() -> None:
    with pytest.raises(PlanError):
        plan_lab("much-too-long", 0)
