"""Integration: `manage.py triage` on a real lab router, with a real fault injected and then cleared.

A lab of its own (name `vrcv`, base block 72 (tests/lab_slots.py)) so it can run beside the other lab
tests. The API sync is replaced (the lab's routers are not in a simulator here); the SSH
collection, the probes and the real rule registry all run for real.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from devcloud import lab
from devcloud.lab.topology import LabPlan
from diagnostics.models import Finding
from tests.diagnostics.lab_inventory import fresh_lab, isolated_router_rows
from tests.lab_slots import lab_block, lab_name
from vrconsole.models import Router

pytestmark = [pytest.mark.lab, pytest.mark.slow]

LAB_NAME = lab_name("vrcv")
LAB_BLOCK = lab_block(72)


@pytest.fixture(scope="module")
def triage_lab() -> Iterator[LabPlan]:
    with fresh_lab(LAB_NAME, LAB_BLOCK) as plan:
        yield plan


@pytest.fixture
def lab_router(triage_lab: LabPlan, settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Router:
    settings.SSH_KNOWN_HOSTS_FILE = str(tmp_path / "known_hosts")
    settings.SSH_OVERRIDES = {}
    monkeypatch.setattr("vrconsole.sync.sync_router", lambda router: router)
    return isolated_router_rows(triage_lab, "lab-triage")


def triage_json(router: Router) -> dict[str, Any]:
    out = StringIO()
    call_command("triage", router.uuid, "--json", stdout=out, stderr=StringIO())
    return json.loads(out.getvalue().strip().splitlines()[-1])


@pytest.mark.django_db
def test_it_finds_a_full_var_log_on_a_lab_router_and_sees_it_fixed(lab_router: Router) -> None:
    # /var/log is the router's own (mount namespace): unlike processes, which lab routers share
    # with every other lab on the machine, a full /var/log is seen on this router only.
    lab.inject_fault(lab_router.name, "var-log-full", lab=LAB_NAME)
    try:
        broken = triage_json(lab_router)
    finally:
        lab.clear_fault(lab_router.name, "var-log-full", lab=LAB_NAME)
    assert broken["collection"]["status"] == "succeeded", broken["collection"]
    assert "filesystem-near-full" in [v["rule"] for v in broken["verdicts"]]
    assert broken["status"] == "critical"
    assert broken["router"]["name"] == lab_router.name
    fixed = triage_json(lab_router)
    assert "filesystem-near-full" not in [v["rule"] for v in fixed["verdicts"]]
    assert Finding.objects.get(router=lab_router, rule="filesystem-near-full").resolved_at is not None
