"""Integration: a fault on a real lab router pages the on-call webhook, and its repair says so.

A lab of its own (name `vrcn`, base block 76). `manage.py triage` collects the router over
real SSH, the real rules judge it, and the notifications it decides are delivered from the
command to a real HTTP receiver on 127.0.0.1 before it exits (the API sync is replaced: the
lab's routers are not in a simulator here).
"""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from devcloud import lab
from devcloud.lab.topology import LabPlan
from tests.diagnostics.lab_inventory import fresh_lab, isolated_router_rows
from tests.diagnostics.webhook_receiver import Receiver, webhook_receiver
from tests.lab_slots import lab_block, lab_name
from vrconsole.models import Router

pytestmark = [pytest.mark.lab, pytest.mark.slow]

LAB_NAME = lab_name("vrcn")
LAB_BLOCK = lab_block(76)


@pytest.fixture(scope="module")
def notify_lab() -> Iterator[LabPlan]:
    with fresh_lab(LAB_NAME, LAB_BLOCK) as plan:
        yield plan


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    with webhook_receiver() as running:
        settings.NOTIFY_WEBHOOKS = [running.url + "/hooks/oncall"]
        settings.NOTIFY_EMAILS = []
        settings.NOTIFY_RETRY_SECONDS = []
        settings.CONSOLE_URL = "https://console.example.org"
        yield running


@pytest.fixture
def lab_router(notify_lab: LabPlan, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Router:
    settings.SSH_KNOWN_HOSTS_FILE = str(tmp_path / "known_hosts")
    settings.SSH_OVERRIDES = {}
    monkeypatch.setattr("vrconsole.sync.sync_router", lambda router: router)
    return isolated_router_rows(notify_lab, "lab-notify", account="acme")


def triage(router: Router) -> str:
    err = StringIO()
    call_command("triage", router.uuid, stdout=StringIO(), stderr=err)
    return err.getvalue()


@pytest.mark.django_db
def test_a_full_var_log_on_a_lab_router_pages_once_and_its_repair_is_told(
    lab_router: Router, receiver: Receiver
) -> None:
    lab.inject_fault(lab_router.name, "var-log-full", lab=LAB_NAME)
    try:
        said = triage(lab_router)
        triage(lab_router)  # still broken: no second page
    finally:
        lab.clear_fault(lab_router.name, "var-log-full", lab=LAB_NAME)
    opened = [body for body in receiver.bodies if body["finding"]["rule"] == "filesystem-near-full"]
    assert [body["event"] for body in opened] == ["opened"]
    message = opened[0]
    assert message["router"]["name"] == lab_router.name
    assert message["router"]["account"] == "acme"
    assert message["router"]["network"] == "lab-guest"
    assert any("/var/log" in line for line in message["finding"]["evidence"]), message["finding"]["evidence"]
    assert message["finding"]["remediation"]
    assert message["link"].endswith("#finding-filesystem-near-full")
    assert "notification opened filesystem-near-full: webhook 127.0.0.1" in said
    triage(lab_router)
    events = [body["event"] for body in receiver.bodies if body["finding"]["rule"] == "filesystem-near-full"]
    assert events == ["opened", "resolved"]
