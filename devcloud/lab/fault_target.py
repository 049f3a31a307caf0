"""What a fault of the lab acts on, named apart from devcloud.lab.faults.

devcloud.lab.faults merges the faults of faults_services, faults_dhcp, faults_network and
faults_vpn into FAULTS, so those modules cannot import its Target class; they type their
functions with this Protocol, which faults.Target satisfies.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from devcloud.lab.topology import LabPlan, Router


class FaultTarget(Protocol):
    """A router of a running lab: its lab, plan and namespace, and a way to run commands inside it."""

    lab: str
    plan: LabPlan
    router: Router
    namespace: str
    mount_file: Path

    def run(self, argv: list[str], stdin: bytes | None = None, check: bool = True) -> str:
        """Run a command inside the router."""
        ...


# A fault as its module lists it: inject, clear, and what it does (for `scripts/run --help`).
FaultSpec = tuple[Callable[[FaultTarget], None], Callable[[FaultTarget], None], str]
