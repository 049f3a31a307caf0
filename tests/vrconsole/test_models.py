"""Tests of the inventory models' one-row logic: the ssh command, the uuid lookup, audit entries."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.utils import timezone

from tests.vrconsole.router_factory import make_host, make_region, make_router, make_zone
from vrconsole.models import AuditEntry, Router

pytestmark = pytest.mark.django_db


@pytest.fixture
def zone():
    return make_zone(make_region())


def test_it_builds_the_kvm_ssh_command_through_the_host(zone):
    host = make_host(zone, ipaddress="198.19.0.10")
    router = make_router(zone, host=host, hypervisor="KVM", link_local_ip="169.254.3.93")
    assert router.ssh_command() == "ssh -J root@198.19.0.10 -i /root/.ssh/id_rsa.cloud -p 3922 root@169.254.3.93"


def test_it_builds_the_vmware_ssh_command_to_the_control_ip(zone):
    router = make_router(zone, hypervisor="VMware", link_local_ip="10.20.0.15")
    assert router.ssh_command() == "ssh -i /var/cloudstack/management/.ssh/id_rsa -p 3922 root@10.20.0.15"


def test_the_ssh_command_honours_the_configured_ports_and_host_user(zone, settings):
    settings.VR_SSH_PORT = 2222
    settings.HOST_SSH_USER = "cloudops"
    settings.HOST_SSH_PORT = 2200
    host = make_host(zone, ipaddress="198.19.0.10")
    router = make_router(zone, host=host, hypervisor="KVM", link_local_ip="169.254.3.93")
    assert router.ssh_command() == (
        "ssh -J cloudops@198.19.0.10:2200 -i /root/.ssh/id_rsa.cloud -p 2222 root@169.254.3.93"
    )


def test_it_gives_no_ssh_command_without_a_control_ip(zone):
    assert make_router(zone, hypervisor="KVM").ssh_command() == ""


def test_with_uuid_puts_the_listed_router_before_a_removed_one(zone):
    removed = make_router(zone, name="r-1-VM", removed_at=timezone.now())
    other_region_zone = make_zone(make_region("prod-us"))
    listed = make_router(other_region_zone, name="r-1-VM", uuid=removed.uuid)
    assert list(Router.objects.with_uuid(removed.uuid)) == [listed, removed]


def test_an_audit_entry_names_the_signed_in_user(zone):
    user = User.objects.create_user("alice")
    router = make_router(zone, name="r-7-VM")
    entry = AuditEntry.record("collect.requested", user=user, router=router, detail="queued", outcome="queued")
    assert (entry.username, entry.user, entry.target, entry.router) == ("alice", user, "r-7-VM", router)


def test_an_audit_entry_without_a_user_is_the_systems(zone):
    entry = AuditEntry.record("ssh.session", user=AnonymousUser(), target="x" * 400)
    assert (entry.username, entry.user, len(entry.target)) == ("system", None, 255)
