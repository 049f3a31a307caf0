"""Lab names and address blocks for the tests, distinct per checkout and per xdist worker.

Each test module that builds a lab gives it a short name and a 198.19.<block>.0/24 block. Two
test runs on one machine (two checkouts of the repository, or two pytest-xdist workers) would
fight over labs of the same name and addresses, so both are shifted by an index made of
VRCONSOLE_TEST_SLOT (0-5, one per checkout) and the xdist worker number (0-1).
"""

from __future__ import annotations

import os

# Base blocks of the test modules lie in 61..76, one per module (a module that builds a second
# lab takes a second block): a shift of 16 per index keeps them apart.
BLOCK_STRIDE = 16


def _index() -> int:
    slot = int(os.environ.get("VRCONSOLE_TEST_SLOT", "0"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or "0")
    if not (0 <= slot <= 5 and 0 <= worker <= 1):
        raise RuntimeError(
            f"lab slots: VRCONSOLE_TEST_SLOT must be 0-5 and at most 2 xdist workers run labs (slot {slot}, worker {worker})"
        )
    return slot * 2 + worker


def lab_name(base: str) -> str:
    """The lab name this run uses for a module's base name (at most 7 characters)."""
    index = _index()
    return base if index == 0 else f"{base}{index}"


def lab_block(base: int) -> int:
    """The address block this run uses for a module's base block."""
    return base + BLOCK_STRIDE * _index()
