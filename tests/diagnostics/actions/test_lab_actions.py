"""Integration: actions on real lab routers — service restarts over SSH, the BACKUP refusal, evidence before a cleanup.

A lab of its own (name `vrcq`, block 198.19.68.0/24, shifted per test slot) registered in a
CloudStack simulator that stays up for the module, so the API side (restart with cleanup,
re-sync) and the router side (sshd, systemctl, dnsmasq, checkrouter.sh) are both real.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devcloud import lab
from devcloud.simulator.server import RunningSimulator
from diagnostics.action_runner import execute_action
from diagnostics.actions import ActionRefused, request_action
from diagnostics.models import ActionStatus, CollectionStatus, ProbeResult
from tests.diagnostics.actions.support import REGION, Published, operator
from tests.diagnostics.lab_inventory import inside as inside_lab_router
from tests.diagnostics.lab_inventory import lab_simulator
from tests.lab_slots import lab_block, lab_name
from vrconsole.cloudstack.regions import RegionConfig
from vrconsole.models import AuditEntry, Router, SyncStatus
from vrconsole.sync import sync_region

pytestmark = [pytest.mark.lab, pytest.mark.slow]

LAB_NAME = lab_name("vrcq")
LAB_BLOCK = lab_block(63)


@pytest.fixture(scope="module")
def lab_cloud() -> Iterator[RunningSimulator]:
    with lab_simulator(LAB_NAME, LAB_BLOCK) as simulator:
        yield simulator


@pytest.fixture
def lab_region(lab_cloud: RunningSimulator, settings: Any, tmp_path: Path, django_db_blocker: Any) -> Any:
    settings.CLOUDSTACK_CONFIG = None
    settings.CLOUDSTACK_URL = lab_cloud.url
    settings.CLOUDSTACK_API_KEY = lab_cloud.api_key
    settings.CLOUDSTACK_SECRET_KEY = lab_cloud.secret_key
    settings.CLOUDSTACK_REGION = REGION
    settings.ACTION_POLL_SECONDS = 0.05
    settings.ACTION_JOB_TIMEOUT_SECONDS = 30
    settings.SSH_KNOWN_HOSTS_FILE = str(tmp_path / "known_hosts")
    settings.SSH_OVERRIDES = {}
    lab_cloud.reset_fleet()
    result = sync_region(RegionConfig(REGION, lab_cloud.url, lab_cloud.api_key, lab_cloud.secret_key, timeout=10))
    assert result.status == SyncStatus.OK, result.error
    return result


def lab_router(name: str) -> Router:
    return Router.objects.select_related("region", "zone", "host", "network", "vpc").get(name=name, removed_at=None)


def inside(router: str, command: str) -> str:
    return inside_lab_router(LAB_NAME, router, command)


def act(router: Router, name: str, argument: str = "", **options: Any) -> Any:
    run = request_action(router, name, argument, reason="INC-LAB", user=operator(), acknowledged=True, **options)
    return execute_action(run, publish=Published())


@pytest.mark.django_db
def test_dnsmasq_is_restarted_in_the_router_and_checked_active(lab_region: Any) -> None:
    router = lab_router("r-10-VM")
    before = inside("r-10-VM", "cat /run/dnsmasq/dnsmasq.pid").strip()
    done = act(router, "restart-service", "dnsmasq")
    assert done.status == ActionStatus.SUCCEEDED, done.error
    assert done.result["job_result"]["output"].strip().endswith("active")
    after = inside("r-10-VM", "cat /run/dnsmasq/dnsmasq.pid").strip()
    assert after and after != before
    assert inside("r-10-VM", "systemctl is-active dnsmasq").strip() == "active"
    assert AuditEntry.objects.filter(
        action="ssh.session", router=router, detail__contains="restart-service dnsmasq"
    ).exists()


@pytest.mark.django_db
def test_dnsmasq_is_refused_on_the_backup_and_when_the_router_itself_says_backup(lab_region: Any) -> None:
    # Which member is BACKUP is keepalived's choice: ask the routers themselves.
    name = next(
        n for n in ("r-13-VM", "r-14-VM") if inside(n, "/opt/cloud/bin/checkrouter.sh").strip() == "Status: BACKUP"
    )
    Router.objects.filter(name=name).update(redundant_state="BACKUP")
    with pytest.raises(ActionRefused, match="must not run on a redundant BACKUP"):
        request_action(lab_router(name), "restart-service", "dnsmasq", reason="INC-LAB", user=operator())
    # CloudStack's word lags (it polls every 30 s): the router's own checkrouter.sh decides at the last moment.
    Router.objects.filter(name=name).update(redundant_state="PRIMARY")
    done = act(lab_router(name), "restart-service", "dnsmasq")
    assert done.status == ActionStatus.FAILED
    assert "the router says BACKUP (checkrouter.sh)" in done.error
    assert inside(name, "pidof dnsmasq").strip() == ""


@pytest.mark.django_db
def test_a_stopped_apache2_is_started_again_and_checked_active(lab_region: Any) -> None:
    lab.inject_fault("r-11-VM", "apache2-down", lab=LAB_NAME)
    try:
        done = act(lab_router("r-11-VM"), "restart-service", "apache2")
        assert done.status == ActionStatus.SUCCEEDED, done.error
        assert done.result["job_result"]["output"].strip().endswith("active")
    finally:
        lab.clear_fault("r-11-VM", "apache2-down", lab=LAB_NAME)


@pytest.mark.django_db
def test_a_restart_systemd_cannot_carry_out_fails_with_systemctls_words(lab_region: Any) -> None:
    lab.inject_fault("r-11-VM", "systemd-unreachable", lab=LAB_NAME)
    try:
        done = act(lab_router("r-11-VM"), "restart-service", "apache2")
    finally:
        lab.clear_fault("r-11-VM", "systemd-unreachable", lab=LAB_NAME)
    assert done.status == ActionStatus.FAILED
    assert "Failed to connect to bus" in done.error


@pytest.mark.django_db
def test_evidence_with_every_log_tail_is_kept_before_a_cleanup(lab_region: Any) -> None:
    router = lab_router("r-11-VM")
    done = act(router, "restart-network-cleanup")
    assert done.status == ActionStatus.SUCCEEDED, done.error
    evidence = done.evidence_collection
    assert evidence.status == CollectionStatus.SUCCEEDED and evidence.keep is True
    tails = ProbeResult.objects.get(collection=evidence, name="log_tails")
    assert tails.ok and "==> /var/log/cloud.log <==" in tails.stdout and "|" in tails.stdout
    assert evidence.facts["log_tails"]["files"][0]["lines"] > 0
    # CloudStack replaced the router; the console followed: old row removed, the new one collected.
    assert Router.objects.get(pk=router.pk).removed_at is not None
    assert done.after_collection.status == CollectionStatus.SUCCEEDED
    assert done.after_collection.router.name != router.name
