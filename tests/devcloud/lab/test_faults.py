"""Tests that each fault is visible with a plain command after injection and gone after clearing."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

import pytest

from devcloud import lab
from devcloud.lab.lifecycle import mount_file
from devcloud.lab.topology import LabPlan, Router
from tests.devcloud.lab.conftest import LAB_BLOCK, LAB_NAME, in_router, router_of_kind

pytestmark = pytest.mark.lab


def _dnsmasq_running(router: Router) -> bool:
    return '"dnsmasq"' in in_router(router, "ss", "-H", "-lunp", "sport", "=", ":67")


def _sshd_running(router: Router) -> bool:
    return '"sshd"' in in_router(router, "ss", "-H", "-ltnp", "sport", "=", ":3922")


def _var_log_full(router: Router) -> bool:
    return in_router(router, "df", "--output=avail", "/var/log").split()[-1] == "0"


def _snat_present(router: Router) -> bool:
    return f"-j SNAT --to-source {router.public.ipaddress}" in in_router(router, "iptables-save", "-t", "nat")


def _guest_mtu(router: Router) -> int:
    return json.loads(
        subprocess.run(
            ["ip", "-j", "-n", router.namespace, "link", "show", "eth0"], capture_output=True, text=True, check=True
        ).stdout
    )[0]["mtu"]


def _apply_failure_logged(router: Router) -> bool:
    log = in_router(router, "tail", "-n", "200", "/var/log/cloud.log")
    last_apply = [line for line in log.splitlines() if " : VR config: " in line][-1]
    return "VR config: executing failed" in last_apply


def _zombie_haproxy(router: Router) -> bool:
    processes = in_router(router, "ps", "-e", "-o", "stat=,comm=")
    return any(line.split() == ["Z", "haproxy"] for line in processes.splitlines())


def _stale_lease(router: Router) -> bool:
    vm = router.vms[0]
    leases = in_router(router, "cat", "/var/lib/misc/dnsmasq.leases")
    return f"{vm.ipaddress}" in leases and f"{vm.macaddress} {vm.ipaddress}" not in leases


def _outdated(router: Router) -> bool:
    return in_router(router, "cat", "/etc/cloudstack-release").startswith("Cloudstack Release 4.18.0")


def _cloud_log_unrotated(router: Router) -> bool:
    size = int(in_router(router, "stat", "-c", "%s", "/var/log/cloud.log"))
    siblings = in_router(router, "ls", "/var/log").split()
    return size > 10 * 1024 * 1024 and not [name for name in siblings if name.startswith("cloud.log.")]


def _conntrack_near_limit(router: Router) -> bool:
    count = int(in_router(router, "cat", "/proc/sys/net/netfilter/nf_conntrack_count"))
    maximum = int(in_router(router, "cat", "/proc/sys/net/netfilter/nf_conntrack_max"))
    return count > 0.85 * maximum


def _both_primary(router: Router) -> bool:
    plan = lab.plan_lab(LAB_NAME, LAB_BLOCK)
    pair = [member for member in plan.routers if member.redundant]
    return all(in_router(member, "/opt/cloud/bin/checkrouter.sh").strip() == "Status: PRIMARY" for member in pair)


def _tap_failure(router: Router) -> bool:
    plan = lab.plan_lab(LAB_NAME, LAB_BLOCK)
    log = subprocess.run(
        [
            "nsenter",
            f"--net=/run/netns/{plan.host_namespace}",
            f"--mount={mount_file(LAB_NAME, plan.host_namespace)}",
            "tail",
            "-n",
            "2",
            f"/var/log/libvirt/qemu/{router.name}.log",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return "could not configure /dev/net/tun" in log


FAULT_CHECKS: dict[str, tuple[str, Callable[[Router], bool]]] = {
    "dnsmasq-down": ("isolated", lambda router: not _dnsmasq_running(router)),
    "sshd-down": ("isolated", lambda router: not _sshd_running(router)),
    "var-log-full": ("isolated", _var_log_full),
    "snat-missing": ("vpc", lambda router: not _snat_present(router)),
    "mtu-mismatch": ("isolated", lambda router: _guest_mtu(router) != 1500),
    "config-apply-failed": ("direct", _apply_failure_logged),
    "zombie-haproxy": ("isolated", _zombie_haproxy),
    "stale-lease": ("isolated", _stale_lease),
    "outdated-template": ("vpc", _outdated),
    "log-not-rotating": ("direct", _cloud_log_unrotated),
    "split-brain": ("redundant", _both_primary),
    "qemu-tap-failure": ("isolated", _tap_failure),
    "conntrack-near-limit": ("direct", _conntrack_near_limit),
}


@pytest.mark.parametrize("fault", sorted(FAULT_CHECKS))
def test_it_shows_a_fault_while_injected_and_not_after_clearing(running_lab: LabPlan, fault: str) -> None:
    kind, visible = FAULT_CHECKS[fault]
    router = router_of_kind(running_lab, kind)
    assert not visible(router)
    lab.inject_fault(router.name, fault, lab=LAB_NAME)
    try:
        assert visible(router)
    finally:
        lab.clear_fault(router.name, fault, lab=LAB_NAME)
    assert not visible(router)


def test_it_marks_an_outdated_router_as_requiring_upgrade(running_lab: LabPlan) -> None:
    router = router_of_kind(running_lab, "vpc")
    lab.inject_fault(router.name, "outdated-template", lab=LAB_NAME)
    try:
        registration = json.loads(lab.registration_path(LAB_NAME).read_text())
        item = next(item for item in registration["routers"] if item["name"] == router.name)
        assert item["requiresupgrade"] is True
    finally:
        lab.clear_fault(router.name, "outdated-template", lab=LAB_NAME)


def test_it_rejects_an_unknown_fault_spec() -> None:
    with pytest.raises(lab.LabError):
        lab.parse_fault_spec("r-10-VM:cosmic-rays")
