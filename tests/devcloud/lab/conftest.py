"""Fixtures for the lab tests: one real lab for the whole run, torn down at the end.

The lab uses its own name and address block (vrct, 198.19.61.0/24, overridable with
VRCONSOLE_TEST_LAB_NAME / VRCONSOLE_TEST_LAB_BLOCK) so it can coexist with the demo lab. Lab tests need Linux and root; elsewhere they are skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devcloud import lab
from devcloud.lab.lifecycle import mount_file
from devcloud.lab.system_commands import inside
from devcloud.lab.topology import LabPlan, Router, plan_lab
from tests.lab_slots import lab_block, lab_name, require_serial

# Overridable so that two test runs on one machine do not fight over one lab.
LAB_NAME = os.environ.get("VRCONSOLE_TEST_LAB_NAME", lab_name("vrct"))
LAB_BLOCK = int(os.environ.get("VRCONSOLE_TEST_LAB_BLOCK", str(lab_block(61))))


def lab_available() -> bool:
    """Whether this machine can run the lab."""
    return sys.platform.startswith("linux") and os.geteuid() == 0


@pytest.fixture(scope="session")
def running_lab() -> Iterator[LabPlan]:
    """A default lab (one router of each kind), up for the whole session."""
    if not lab_available():
        pytest.skip("the lab needs Linux and root")
    require_serial()
    if lab.status(LAB_NAME).get("status") is not None:
        lab.down(LAB_NAME)
    lab.up(name=LAB_NAME, block=LAB_BLOCK)
    try:
        yield plan_lab(LAB_NAME, LAB_BLOCK)
    finally:
        lab.down(LAB_NAME)


def in_router(router: Router, *argv: str, check: bool = True) -> str:
    """Run a plain command inside a router's network, mount, UTS and PID namespaces."""
    pinned = mount_file(LAB_NAME, router.namespace)
    completed = subprocess.run(
        inside(router.namespace, pinned, argv),
        capture_output=True,
        text=True,
        timeout=30,
        check=check,
    )
    return completed.stdout


def router_of_kind(plan: LabPlan, kind: str) -> Router:
    """The first router of a kind (isolated, vpc, redundant, direct)."""
    return next(router for router in plan.routers if router.kind == kind)


def ssh_options() -> list[str]:
    """OpenSSH options for tests: lab host keys are fresh on every run, so they are not checked."""
    return [
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=5",
        "-o",
        "LogLevel=ERROR",
    ]


def key_files() -> tuple[Path, Path]:
    """(host login key, system-VM key)."""
    from django.conf import settings

    return Path(settings.HOST_SSH_KEY_FILE), Path(settings.VR_SSH_KEY_FILE)
