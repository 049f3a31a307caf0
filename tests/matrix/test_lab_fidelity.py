"""Issue 13's rules on facts collected from real lab routers: quiet on healthy ones, firing on real faults.

A lab of its own (name `vrfd`, base block 70). Lab routers run apache2 with a vhost per guest
address and the password server (stopped on a BACKUP), and write kern.log and messages as
rsyslog does; each fault below changes the router for real (a unit stopped through the
router's systemctl, the token file removed, systemctl cut off from "systemd", an OOM kill
written to kern.log), then the router is collected with the real probes and judged by the
whole registry, as diagnostics.evaluate does.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from devcloud import lab
from devcloud.lab.topology import LabPlan
from diagnostics import evaluate as evaluation
from diagnostics.matrix import evaluate
from diagnostics.matrix.base import PeerView, RouterContext, Verdict
from diagnostics.matrix.thresholds import DEFAULTS
from tests.diagnostics.lab_inventory import fresh_lab
from tests.lab_slots import lab_block, lab_name
from tests.matrix.lab_judging import collected, inventory

pytestmark = [pytest.mark.lab, pytest.mark.slow]

LAB_NAME = lab_name("vrfd")
LAB_BLOCK = lab_block(70)


@pytest.fixture(scope="module")
def fidelity_lab() -> Iterator[LabPlan]:
    with fresh_lab(LAB_NAME, LAB_BLOCK) as plan:
        yield plan


def _judge(plan: LabPlan, kind: str, member: int = 0, peers: tuple[PeerView, ...] = ()) -> list[Verdict]:
    router = inventory(plan, kind, member)
    ctx = RouterContext(
        router=evaluation.router_view(router),
        collection=collected(router),
        previous=None,
        peers=peers,
        thresholds={name: float(default) for name, (default, _, _) in DEFAULTS.items()},
        now=datetime.now(UTC),
    )
    return evaluate(ctx)


def _name(plan: LabPlan, kind: str, member: int = 0) -> str:
    return [router.name for router in plan.routers if router.kind == kind][member]


def _alarms(verdicts: list[Verdict]) -> list[tuple[str, str]]:
    return [(v.rule, v.title) for v in verdicts if v.severity != "info"]


@pytest.mark.django_db
def test_it_finds_nothing_wrong_with_healthy_lab_routers_running_apache2_and_the_password_server(
    fidelity_lab: LabPlan, lab_settings: Any
) -> None:
    alarms = {kind: _alarms(_judge(fidelity_lab, kind)) for kind in ("isolated", "vpc", "direct")}
    assert alarms == {"isolated": [], "vpc": [], "direct": []}


@pytest.mark.django_db
def test_it_accepts_a_backup_without_the_password_server_but_with_apache2(
    fidelity_lab: LabPlan, lab_settings: Any
) -> None:
    verdicts = {}
    for member in (0, 1):
        router = inventory(fidelity_lab, "redundant", member)
        seen = collected(router)
        services, processes = seen.fact("services"), seen.fact("processes")
        state = seen.fact("vrrp").state
        verdicts[state] = (
            processes.service("password_server").running,
            processes.service("apache2").running,
            [u.active for u in services.password_units],
            _alarms(_judge(fidelity_lab, "redundant", member)),
        )
    assert verdicts == {
        "PRIMARY": (True, True, ["active"], []),
        "BACKUP": (False, True, [], []),
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "fault", "rule_id"),
    [
        ("isolated", "password-server-down", "password-server-not-running"),
        ("vpc", "password-server-down", "password-server-not-running"),
        ("isolated", "password-token-missing", "password-token-missing"),
        ("isolated", "apache2-down", "apache2-not-running"),
        ("vpc", "systemd-unreachable", "systemd-not-answering"),
        ("isolated", "kernel-oom-kill", "kernel-oom-kill"),
        ("isolated", "dhcphosts-missing", "dhcphosts-file-missing"),
        ("vpc", "dhcphosts-vm-missing", "dhcphosts-differ-from-databag"),
        ("redundant", "ramdisk-full", "filesystem-near-full"),
        ("isolated", "password-server-wrong-address", "password-server-not-listening"),
        ("isolated", "userdata-vhost-missing", "userdata-vhost-missing"),
        ("vpc", "password-server-port-taken", "password-server-errors-logged"),
        ("isolated", "hosts-vm-missing", "hosts-differ-from-databag"),
        ("direct", "nic-link-flap-logged", "nic-link-down-logged"),
        ("isolated", "martian-source-storm", "martian-source-storm"),
        ("redundant", "ramdisk-unmounted", "ramdisk-not-mounted"),
        ("isolated", "dhcpopts-tag-missing", "dhcpopts-tag-missing"),
        ("vpc", "dhcpopts-tag-missing", "dhcpopts-tag-missing"),
    ],
)
def test_it_fires_on_a_fault_injected_into_a_lab_router(
    fidelity_lab: LabPlan, lab_settings: Any, kind: str, fault: str, rule_id: str
) -> None:
    name = _name(fidelity_lab, kind)
    lab.inject_fault(name, fault, lab=LAB_NAME)
    try:
        verdicts = _judge(fidelity_lab, kind)
    finally:
        lab.clear_fault(name, fault, lab=LAB_NAME)
    assert rule_id in {v.rule for v in verdicts if v.severity != "info"}


@pytest.mark.django_db
def test_it_calls_keepalived_unknown_not_inactive_when_systemctl_cannot_reach_systemd(
    fidelity_lab: LabPlan, lab_settings: Any
) -> None:
    name = _name(fidelity_lab, "redundant")
    lab.inject_fault(name, "systemd-unreachable", lab=LAB_NAME)
    try:
        router = inventory(fidelity_lab, "redundant")
        seen = collected(router)
        verdicts = _judge(fidelity_lab, "redundant")
    finally:
        lab.clear_fault(name, "systemd-unreachable", lab=LAB_NAME)
    vrrp = seen.fact("vrrp")
    assert (vrrp.systemd_answered, vrrp.state) == (False, "UNKNOWN")
    rules = {v.rule for v in verdicts if v.severity != "info"}
    assert "systemd-not-answering" in rules
    assert "keepalived-not-active" not in rules


@pytest.mark.django_db
def test_it_finds_the_lab_routers_healthy_again_once_every_fault_is_cleared(
    fidelity_lab: LabPlan, lab_settings: Any
) -> None:
    # Runs after the fault cases above: each clear must leave its router as it found it.
    alarms = {
        f"{kind}/{member}": _alarms(_judge(fidelity_lab, kind, member))
        for kind, member in (("isolated", 0), ("vpc", 0), ("direct", 0), ("redundant", 0), ("redundant", 1))
    }
    assert alarms == {name: [] for name in alarms}
