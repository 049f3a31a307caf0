"""Integration: how the lab's routers are reached, and every way of not reaching one, over real SSH.

One lab for the module (name `vrca`, base block 74 (tests/lab_slots.py)), synced from the simulator. A
KVM router is collected through the lab host, the VMware one directly; then real failures
are set up and each must end as a failed Collection with the right reason, returned within
the collection's time bound: a host port nobody listens on, a key the router does not know,
a pinned host key that is not the router's, and an sshd that accepts TCP and never speaks
(stopped with SIGSTOP).
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devcloud.lab import daemons
from devcloud.lab.lifecycle import mount_file
from diagnostics.hostkeys import fingerprint
from diagnostics.jobs import collection_time_bound
from diagnostics.models import Collection, CollectionReason, CollectionStatus, HostKeyPin
from tests.diagnostics.lab_inventory import SyncedLab, collect, synced_lab
from tests.lab_slots import lab_block, lab_name

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.django_db]

LAB_NAME = lab_name("vrca")
LAB_BLOCK = lab_block(74)
# Short bounds keep the failure cases quick; they are what the settings would say in production.
CONNECT_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def access_lab(django_db_setup: Any, django_db_blocker: Any) -> Iterator[SyncedLab]:
    with django_db_blocker.unblock(), synced_lab(LAB_NAME, LAB_BLOCK) as synced:
        yield synced


@pytest.fixture
def ssh_settings(settings: Any, tmp_path: Path) -> Any:
    settings.SSH_KNOWN_HOSTS_FILE = str(tmp_path / "known_hosts")
    settings.SSH_OVERRIDES = {}
    settings.SSH_CONNECT_TIMEOUT = CONNECT_TIMEOUT
    return settings


def timed_collect(access_lab: SyncedLab, name: str) -> tuple[Collection, float]:
    started = time.monotonic()
    collection = collect(access_lab.router(name))
    return collection, time.monotonic() - started


def assert_failed(collection: Collection, reason: str, elapsed: float) -> None:
    assert (collection.status, collection.reason) == (CollectionStatus.FAILED, reason), collection.error
    assert elapsed < collection_time_bound(), "a failing collection must never outlive its bound"


def test_it_collects_a_kvm_router_through_its_host(access_lab: SyncedLab, ssh_settings: Any) -> None:
    collection, _ = timed_collect(access_lab, access_lab.first_of_kind("isolated"))
    assert collection.status == CollectionStatus.SUCCEEDED, collection.error
    assert collection.access_path.startswith(f"via host {access_lab.plan.host_name}")
    assert collection.probe_results.filter(scope="host", ok=True).exists()
    assert collection.probe_errors == 0, list(collection.probe_results.filter(ok=False).values_list("name", "error"))


def test_it_collects_a_vmware_router_directly_on_its_control_address(access_lab: SyncedLab, ssh_settings: Any) -> None:
    name = access_lab.first_of_kind("direct")
    collection, _ = timed_collect(access_lab, name)
    assert collection.status == CollectionStatus.SUCCEEDED, collection.error
    assert collection.access_path == f"direct {access_lab.plan.router(name).control.ipaddress}:3922"
    assert not collection.probe_results.filter(scope="host").exists()
    assert collection.probe_errors == 0, list(collection.probe_results.filter(ok=False).values_list("name", "error"))


def test_it_records_an_unreachable_host(access_lab: SyncedLab, ssh_settings: Any) -> None:
    # Port 9 on the lab host: the address answers, nothing listens, the connect is refused.
    ssh_settings.SSH_OVERRIDES = {f"host:{access_lab.plan.host_name}": {"HOST_SSH_PORT": 9}}
    collection, elapsed = timed_collect(access_lab, access_lab.first_of_kind("isolated"))
    assert_failed(collection, CollectionReason.HOST_UNREACHABLE, elapsed)


def test_it_records_a_key_the_router_refuses(access_lab: SyncedLab, ssh_settings: Any, tmp_path: Path) -> None:
    stranger = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    ssh_settings.SSH_OVERRIDES = {f"host:{access_lab.plan.host_name}": {"VR_SSH_KEY_FILE": str(stranger)}}
    collection, elapsed = timed_collect(access_lab, access_lab.first_of_kind("isolated"))
    assert_failed(collection, CollectionReason.AUTH_REFUSED, elapsed)


def test_it_refuses_a_router_whose_host_key_changed(access_lab: SyncedLab, ssh_settings: Any) -> None:
    router = access_lab.router(access_lab.first_of_kind("direct"))
    # The key the router had "before": any other ed25519 key pinned to its CloudStack identity.
    old_key = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + os.urandom(32)).decode()
    HostKeyPin.objects.create(
        kind="router",
        identity=router.uuid,
        key_type="ssh-ed25519",
        key_base64=old_key,
        fingerprint=fingerprint(old_key),
    )
    collection, elapsed = timed_collect(access_lab, router.name)
    assert_failed(collection, CollectionReason.HOST_KEY_CHANGED, elapsed)
    assert HostKeyPin.objects.get(kind="router", identity=router.uuid).mismatch_seen_at is not None


def test_it_times_out_on_an_sshd_that_accepts_and_never_speaks(access_lab: SyncedLab, ssh_settings: Any) -> None:
    planned = access_lab.plan.router(access_lab.first_of_kind("direct"))
    sshd = daemons.read_pid(planned.namespace, mount_file(LAB_NAME, planned.namespace), "sshd")
    assert sshd is not None
    os.kill(sshd, signal.SIGSTOP)
    try:
        collection, elapsed = timed_collect(access_lab, planned.name)
    finally:
        os.kill(sshd, signal.SIGCONT)
    assert_failed(collection, CollectionReason.TIMEOUT, elapsed)
