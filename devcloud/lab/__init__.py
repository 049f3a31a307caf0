"""The lab: virtual routers built from real software in network and mount namespaces.

Public API for the command, the tests and the benchmarks: `up`, `down`, `status`,
`inject_fault`, `inject_faults`, `clear_fault`, `registration_path` and `plan_lab`. See
lifecycle.py for what `up` builds and faults.py for what each fault does to a router.
"""

from devcloud.lab.faults import FAULTS, clear_fault, inject_fault, inject_faults, parse_fault_spec
from devcloud.lab.lifecycle import LabError, down, status, up
from devcloud.lab.registration import registration_path
from devcloud.lab.topology import plan_lab

__all__ = [
    "FAULTS",
    "LabError",
    "clear_fault",
    "down",
    "inject_fault",
    "inject_faults",
    "parse_fault_spec",
    "plan_lab",
    "registration_path",
    "status",
    "up",
]
