"""SSH_ALLOWED_NETWORKS: no packet leaves for an address outside the allowed networks."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from django.test import override_settings

from diagnostics.access import plan_access
from diagnostics.ssh import AccessError, AccessReason
from tests.diagnostics.conftest import HOST_ADDRESS
from vrconsole.models import Router

pytestmark = pytest.mark.django_db

ELSEWHERE = [ipaddress.ip_network("10.99.0.0/16")]
ROOT = Path(__file__).resolve().parents[2]


def test_a_kvm_router_behind_a_host_outside_the_allowed_networks_is_refused(
    ssh_settings: object, kvm_router: Router
) -> None:
    with override_settings(SSH_ALLOWED_NETWORKS=ELSEWHERE), pytest.raises(AccessError) as caught:
        plan_access(kvm_router)
    assert caught.value.reason == AccessReason.NOT_ALLOWED
    assert HOST_ADDRESS in str(caught.value) and "nothing was sent" in str(caught.value)
    assert caught.value.retryable is False


def test_a_direct_router_outside_the_allowed_networks_is_refused(ssh_settings: object, direct_router: Router) -> None:
    with override_settings(SSH_ALLOWED_NETWORKS=ELSEWHERE), pytest.raises(AccessError) as caught:
        plan_access(direct_router)
    assert caught.value.reason == AccessReason.NOT_ALLOWED


def test_addresses_inside_the_allowed_networks_pass(ssh_settings: object, kvm_router: Router) -> None:
    with override_settings(SSH_ALLOWED_NETWORKS=[ipaddress.ip_network("127.0.0.0/8")]):
        assert plan_access(kvm_router).host is not None


def test_no_allowed_networks_means_no_restriction(ssh_settings: object, direct_router: Router) -> None:
    with override_settings(SSH_ALLOWED_NETWORKS=[]):
        assert plan_access(direct_router).host is None


def test_a_host_is_never_asked_to_forward_outside_the_control_network(ssh_settings: object, kvm_router: Router) -> None:
    control_only = [ipaddress.ip_network("169.254.0.0/16")]
    with override_settings(SSH_FORWARD_ALLOWED_NETWORKS=control_only), pytest.raises(AccessError) as caught:
        plan_access(kvm_router)  # its "link-local" address is a loopback sshd here
    assert caught.value.reason == AccessReason.NOT_ALLOWED
    assert "SSH_FORWARD_ALLOWED_NETWORKS" in str(caught.value) and "nothing was sent" in str(caught.value)


def test_the_forward_allow_list_is_link_local_by_default() -> None:
    import subprocess
    import sys

    code = (
        "from django.conf import settings; import django; django.setup(); print(settings.SSH_FORWARD_ALLOWED_NETWORKS)"
    )
    env = {"DJANGO_SETTINGS_MODULE": "vrconsole.settings", "SECRET_KEY": "s" * 40, "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.stdout.strip() == "[IPv4Network('169.254.0.0/16')]", out.stderr
