"""Tests of choosing the access path for a router row, and of opening it for real."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from diagnostics.access import open_router_connection, plan_access
from diagnostics.hostkeys import PinnedHostKeys
from diagnostics.ssh import AccessError, AccessReason
from tests.diagnostics.conftest import HOST_ADDRESS, ROUTER_ADDRESS, make_router
from vrconsole.models import Host, Region, Router, Zone

pytestmark = pytest.mark.django_db


def test_it_reaches_a_kvm_router_through_its_host(ssh_settings: object, kvm_router: Router) -> None:
    plan = plan_access(kvm_router)
    assert plan.host is not None
    assert (plan.host.address, plan.host.identity, plan.host.username) == (HOST_ADDRESS, "host-2222", "root")
    assert (plan.router.address, plan.router.identity, plan.router.username) == (ROUTER_ADDRESS, "uuid-r-10-VM", "root")


def test_it_reaches_a_vmware_router_directly_on_its_control_address(
    ssh_settings: object, direct_router: Router
) -> None:
    plan = plan_access(direct_router)
    assert plan.host is None
    assert plan.router.address == ROUTER_ADDRESS


def test_it_refuses_a_router_without_a_control_address(
    ssh_settings: object, region: Region, zone: Zone, kvm_host: Host
) -> None:
    router = make_router(region, zone, kvm_host, "r-11-VM", link_local_ip=None)
    with pytest.raises(AccessError) as caught:
        plan_access(router)
    assert caught.value.reason == AccessReason.NO_ADDRESS


def test_it_refuses_a_kvm_router_whose_host_has_no_address(ssh_settings: object, region: Region, zone: Zone) -> None:
    host = Host.objects.create(region=region, zone=zone, uuid="host-noip", name="kvm-host-2", ipaddress=None)
    router = make_router(region, zone, host, "r-12-VM")
    with pytest.raises(AccessError) as caught:
        plan_access(router)
    assert caught.value.reason == AccessReason.NO_ADDRESS


def test_it_applies_a_zone_override_and_lets_a_host_override_win(ssh_settings: object, kvm_router: Router) -> None:
    overrides = {
        "zone:zone-a": {"HOST_SSH_USER": "cloudops", "HOST_SSH_PORT": 2222},
        "host:host-2222": {"HOST_SSH_PORT": 2200},
    }
    with override_settings(SSH_OVERRIDES=overrides):
        plan = plan_access(kvm_router)
    assert plan.host is not None
    assert (plan.host.username, plan.host.port) == ("cloudops", 2200)


def test_it_lets_an_override_choose_the_direct_path(ssh_settings: object, kvm_router: Router) -> None:
    with override_settings(SSH_OVERRIDES={"zone:zone-1111": {"ACCESS_PATH": "direct"}}):
        assert plan_access(kvm_router).host is None


def test_it_refuses_an_override_with_an_unknown_setting(ssh_settings: object, kvm_router: Router) -> None:
    with override_settings(SSH_OVERRIDES={"zone:zone-a": {"PASSWORD": "x"}}):
        with pytest.raises(ImproperlyConfigured):
            plan_access(kvm_router)


def test_it_opens_the_kvm_path_end_to_end(ssh_settings: object, kvm_router: Router) -> None:
    with open_router_connection(plan_access(kvm_router), PinnedHostKeys()) as connection:
        on_router = connection.router.run("echo router", timeout=5)
        on_host = connection.host.run("echo host", timeout=5) if connection.host else None
    assert on_router.stdout == "router\n"
    assert on_host is not None and on_host.stdout == "host\n"
