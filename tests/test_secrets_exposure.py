"""No secret leaves where it belongs: a full run against the lab, then every page, log line and audit row grepped.

A lab of its own (name `vrcx`, block 198.19.66.0/24, shifted per test slot) registered in a
CloudStack simulator: the inventory is synced, every router collected over SSH (the redundant
pair's keepalived.conf holds an `auth_pass`, haproxy a `stats auth` password), one router
triaged, one action run. Then every page an admin can open about them is rendered, and the
CloudStack keys, the console's SECRET_KEY, the private keys' material and the routers' own
passwords are searched for in those pages, in every log record of the run and in every audit
row, and in what the database keeps of the probes: zero hits.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from devcloud.simulator.server import RunningSimulator
from diagnostics.action_runner import execute_action
from diagnostics.actions import request_action
from diagnostics.jobs import collect_router
from diagnostics.models import Collection, ConfigSnapshot, ProbeResult
from tests.diagnostics.actions.support import REGION, Published, operator
from tests.diagnostics.lab_inventory import inside as inside_lab_router
from tests.diagnostics.lab_inventory import lab_simulator
from tests.lab_slots import lab_block, lab_name
from vrconsole.cloudstack.regions import RegionConfig
from vrconsole.models import AuditEntry, Router, SyncStatus
from vrconsole.sync import sync_region

pytestmark = [pytest.mark.lab, pytest.mark.slow]

LAB_NAME = lab_name("vrcx")
LAB_BLOCK = lab_block(66)


@pytest.fixture(scope="module")
def lab_cloud() -> Iterator[RunningSimulator]:
    with lab_simulator(LAB_NAME, LAB_BLOCK) as simulator:
        yield simulator


def inside(router: str, command: str) -> str:
    return inside_lab_router(LAB_NAME, router, command)


def key_material(path: str | None) -> list[str]:
    """The base64 lines of a private key file (each one alone would be a leak)."""
    if not path or not Path(path).is_file():
        return []
    lines = Path(path).read_text().splitlines()
    return [line.strip() for line in lines if len(line.strip()) >= 20 and not line.startswith("-----")]


def router_passwords() -> list[str]:
    found = []
    for name in ("r-13-VM", "r-14-VM"):
        for line in inside(
            name, "cat /etc/keepalived/keepalived.conf /etc/haproxy/haproxy.cfg 2>/dev/null"
        ).splitlines():
            words = line.split()
            if words[:1] == ["auth_pass"] and len(words) > 1:
                found.append(words[1])
            if words[:2] == ["stats", "auth"] and len(words) > 2:
                found.append(words[2].partition(":")[2])
    return [value for value in found if value]


@pytest.mark.django_db
def test_a_full_run_shows_no_secret_in_pages_logs_audit_or_stored_outputs(
    lab_cloud: RunningSimulator, settings: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings.CLOUDSTACK_CONFIG = None
    settings.CLOUDSTACK_URL = lab_cloud.url
    settings.CLOUDSTACK_API_KEY = lab_cloud.api_key
    settings.CLOUDSTACK_SECRET_KEY = lab_cloud.secret_key
    settings.CLOUDSTACK_REGION = REGION
    settings.ACTION_POLL_SECONDS = 0.05
    settings.ACTION_JOB_TIMEOUT_SECONDS = 30
    settings.SSH_KNOWN_HOSTS_FILE = str(tmp_path / "known_hosts")
    settings.SSH_OVERRIDES = {}

    # The run: sync, collect every router, triage one, act on one.
    result = sync_region(RegionConfig(REGION, lab_cloud.url, lab_cloud.api_key, lab_cloud.secret_key, timeout=10))
    assert result.status == SyncStatus.OK, result.error
    routers = list(Router.objects.present().filter(state="Running").order_by("name"))
    assert routers
    for router in routers:
        collect_router(router.pk)
    assert Collection.objects.filter(status="succeeded").count() >= len(routers) - 1
    call_command("triage", routers[0].uuid, "--json", stdout=io.StringIO(), stderr=io.StringIO())
    run = request_action(
        routers[0], "restart-service", "dnsmasq", reason="INC-SECRETS", user=operator(), acknowledged=True
    )
    execute_action(run, publish=Published())

    secrets = {
        "CloudStack API key": lab_cloud.api_key,
        "CloudStack secret key": lab_cloud.secret_key,
        "SECRET_KEY": django_settings.SECRET_KEY,
    }
    for index, line in enumerate(
        key_material(django_settings.VR_SSH_KEY_FILE) + key_material(django_settings.HOST_SSH_KEY_FILE)
    ):
        secrets[f"private key line {index}"] = line
    passwords = router_passwords()
    assert passwords, "the lab's redundant pair should hold an auth_pass"
    for index, value in enumerate(passwords):
        secrets[f"router password {index}"] = value

    # Every page an admin can open about this run.
    admin = get_user_model().objects.create_superuser("secrets-admin", password="secrets-admin-password-1")
    client = Client()
    client.force_login(admin)
    paths = ["/", "/trends/", "/matrix/", "/readyz", "/admin/", "/admin/status/", "/admin/vrconsole/auditentry/"]
    paths.append("/admin/vrconsole/auditentry/export.csv")
    for router in routers:
        paths += [
            f"/routers/{router.uuid}/",
            f"/routers/{router.uuid}/findings.json",
            f"/routers/{router.uuid}/history.json",
            f"/routers/{router.uuid}/samples.csv",
            f"/routers/{router.pk}/failure-evidence/",
        ]
    for collection in Collection.objects.all():
        paths += [f"/collections/{collection.pk}/", f"/admin/diagnostics/collection/{collection.pk}/change/"]
    for result_row in ProbeResult.objects.all():
        paths.append(f"/admin/diagnostics/proberesult/{result_row.pk}/change/")
    for snapshot in ConfigSnapshot.objects.all():
        paths.append(f"/admin/diagnostics/configsnapshot/{snapshot.pk}/change/")
    pages: dict[str, str] = {}
    for path in paths:
        response = client.get(path)
        assert response.status_code in {200, 404}, (path, response.status_code)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        pages[path] = body.decode("utf-8", "replace")

    logs = "\n".join(record.getMessage() for record in caplog.records)
    audit = "\n".join(str(row) for row in AuditEntry.objects.values_list())
    stored = "\n".join(ProbeResult.objects.values_list("stdout", flat=True)) + "\n".join(
        ConfigSnapshot.objects.values_list("content", flat=True)
    )
    assert "auth_pass" in stored, "the config probe's output should be stored (redacted)"
    hits = []
    for what, value in secrets.items():
        for path, body in pages.items():
            if value in body:
                hits.append(f"{what} in page {path}")
        if value in logs:
            hits.append(f"{what} in the logs")
        if value in audit:
            hits.append(f"{what} in the audit log")
        if value in stored:
            hits.append(f"{what} in stored probe output or snapshots")
    assert not hits, hits
    assert len(pages) > 20 and AuditEntry.objects.filter(action="ssh.session").exists()
