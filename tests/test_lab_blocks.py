"""Every test module that builds a lab takes its own base block and lab name.

Two modules on one base block would build their labs on the same addresses whenever they run at
once (two checkouts shift apart by whole strides only).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from django.conf import settings

from tests.lab_slots import BLOCK_STRIDE

TESTS = Path(__file__).resolve().parent
BLOCK = re.compile(r"lab_block\((\d+)\)")
NAME = re.compile(r"lab_name\([\"'](\w+)[\"']\)")


def _uses(pattern: re.Pattern[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for path in TESTS.rglob("*.py"):
        if path.name == "lab_slots.py":
            continue
        for match in pattern.finditer(path.read_text(encoding="utf-8")):
            found[match.group(1)].add(str(path.relative_to(TESTS)))
    return found


def test_each_base_block_belongs_to_one_module() -> None:
    shared = {block: paths for block, paths in _uses(BLOCK).items() if len(paths) > 1}
    assert not shared, f"base blocks used by more than one test module: {shared}"


def test_base_blocks_lie_within_one_stride() -> None:
    blocks = sorted(int(block) for block in _uses(BLOCK))
    assert blocks, "no lab blocks found: the pattern no longer matches the tests"
    assert blocks[-1] - blocks[0] < BLOCK_STRIDE, blocks


def test_each_lab_name_belongs_to_one_module() -> None:
    shared = {name: paths for name, paths in _uses(NAME).items() if len(paths) > 1}
    assert not shared, f"lab names used by more than one test module: {shared}"


def test_a_second_run_on_the_machine_claims_another_slot() -> None:
    # This run holds its slot (tests/settings.py claimed it, or VRCONSOLE_TEST_SLOT gave it); a
    # process that claims one while this run goes on gets another, with its own test database.
    if "VRCONSOLE_TEST_SLOT_LOCKED" not in os.environ:
        pytest.skip("this run's slot was given by VRCONSOLE_TEST_SLOT, not claimed: nothing holds it")
    environment = {key: value for key, value in os.environ.items() if not key.startswith("VRCONSOLE_TEST_SLOT")}
    claimed = subprocess.run(
        [sys.executable, "-c", "import tests.lab_slots as s; print(s.claim_slot())"],
        cwd=TESTS.parent,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert int(claimed.stdout) != settings.TEST_SLOT
