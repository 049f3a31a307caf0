"""Every test module that builds a lab takes its own base block and lab name.

Two modules on one base block would build their labs on the same addresses whenever they run at
once (two checkouts shift apart by whole strides only).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

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
