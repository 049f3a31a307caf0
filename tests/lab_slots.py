"""Lab names and address blocks for the tests, distinct per checkout and per xdist worker.

Each test module that builds a lab gives it a short name and a 198.19.<block>.0/24 block. Two
test runs on one machine (two checkouts of the repository, or two pytest-xdist workers) would
fight over labs of the same name and addresses, so both are shifted by VRCONSOLE_TEST_SLOT
(0-5, one per run). Left unset, a run claims the first free slot itself: it holds an exclusive
lock on /run/lock/vrconsole-test-slot-<n> for its whole life, so a second run started while the
first is still going (a CI beside an engineer's run) takes the next slot instead of tearing
down the first run's labs. The test settings also give each slot its own test database and
Redis database. Lab tests run on one process per run (scripts/test runs them without -n):
`require_serial` refuses a second xdist worker, which would share the slot.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

# Base blocks of the test modules lie in 61..92, one per module (a module that builds a second
# lab takes a second block): a shift of 32 per slot keeps them apart (slot 5 ends at block 252).
BLOCK_STRIDE = 32
SLOTS = 6
LOCK_DIRECTORY = Path("/run/lock")

# The open lock file of the slot this process claimed: held (never closed) until the process ends.
_held: IO[str] | None = None


def claim_slot() -> int:
    """This run's slot: VRCONSOLE_TEST_SLOT when set, else the first slot no other run holds.

    The claim is written back to VRCONSOLE_TEST_SLOT, so the xdist workers and the lab commands
    this process starts inherit it rather than claiming their own.
    """
    global _held
    given = os.environ.get("VRCONSOLE_TEST_SLOT")
    if given is not None:
        return _index()
    directory = LOCK_DIRECTORY if LOCK_DIRECTORY.is_dir() else Path("/tmp")
    for slot in range(SLOTS):
        handle = open(directory / f"vrconsole-test-slot-{slot}", "a")  # noqa: SIM115 - held for the process's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _held = handle
        os.environ["VRCONSOLE_TEST_SLOT"] = str(slot)
        os.environ["VRCONSOLE_TEST_SLOT_LOCKED"] = "1"
        return slot
    raise RuntimeError(f"lab slots: all {SLOTS} test slots are held by other runs on this machine")


def _index() -> int:
    slot = int(os.environ.get("VRCONSOLE_TEST_SLOT", "0"))
    if not 0 <= slot < SLOTS:
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
