"""Lab names and address blocks for the tests, distinct per checkout and per xdist worker.

Each test module that builds a lab gives it a short name and a 198.19.<block>.0/24 block. Two
test runs on one machine (two checkouts of the repository, or two pytest-xdist workers) would
fight over labs of the same name and addresses, so both are shifted by VRCONSOLE_TEST_SLOT
(0-5, one per checkout). Lab tests run on one process per checkout (scripts/test runs them
without -n): `require_serial` refuses a second xdist worker, which would share the slot.
"""

from __future__ import annotations

import os

# Base blocks of the test modules lie in 61..92, one per module (a module that builds a second
# lab takes a second block): a shift of 32 per slot keeps them apart (slot 5 ends at block 252).
BLOCK_STRIDE = 32


def _index() -> int:
    slot = int(os.environ.get("VRCONSOLE_TEST_SLOT", "0"))
    if not 0 <= slot <= 5:
        raise RuntimeError(f"lab slots: VRCONSOLE_TEST_SLOT must be 0-5 (it is {slot})")
    return slot


def require_serial() -> None:
    """Refuse to build a lab on a second xdist worker: it would take the first one's names and blocks."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    if worker != "gw0":
        raise RuntimeError(f"lab tests run on one process per checkout (run them without -n); this is worker {worker}")


def lab_name(base: str) -> str:
    """The lab name this run uses for a module's base name (at most 7 characters)."""
    index = _index()
    return base if index == 0 else f"{base}{index}"


def lab_block(base: int) -> int:
    """The address block this run uses for a module's base block."""
    return base + BLOCK_STRIDE * _index()
