"""The access rule: Running but unmanageable, with a remedy per reason the collection failed."""

from __future__ import annotations

import pytest

from diagnostics.matrix.rules import access
from tests.matrix.builders import collection, context, isolated_router


def _failed(reason: str, error: str = "no route") -> object:
    return context(isolated_router(), current=collection({}, status="failed", reason=reason, error=error))


@pytest.mark.parametrize(
    "reason",
    ["host_unreachable", "host_auth_refused", "host_key_changed", "router_unreachable", "auth_refused", "timeout"],
)
def test_it_reports_each_failure_reason_with_its_own_remedy(reason: str) -> None:
    [verdict] = access.UNMANAGEABLE.check(_failed(reason))
    others = [r for r in access._REASONS if r != reason]
    assert verdict.remediation not in {access._REASONS[r][2] for r in others}
    assert f"collection failed ({reason}) via host: no route" in verdict.evidence


def test_it_makes_a_dead_link_local_path_critical_and_points_at_cloud0() -> None:
    [verdict] = access.UNMANAGEABLE.check(_failed("router_unreachable"))
    assert verdict.severity == "critical"
    assert "cloud0" in verdict.remediation


def test_it_treats_a_changed_host_key_as_a_possible_security_incident() -> None:
    [verdict] = access.UNMANAGEABLE.check(_failed("host_key_changed"))
    assert "security incident" in verdict.remediation


def test_it_says_nothing_when_the_collection_succeeded() -> None:
    assert access.UNMANAGEABLE.check(context(isolated_router(), {})) == []


def test_it_says_nothing_of_a_stopped_router_that_cannot_be_reached() -> None:
    ctx = context(
        isolated_router(state="Stopped"), current=collection({}, status="failed", reason="router_unreachable")
    )
    assert access.UNMANAGEABLE.check(ctx) == []


def test_it_says_nothing_of_a_router_never_collected() -> None:
    assert access.UNMANAGEABLE.check(context(isolated_router())) == []


def test_it_points_a_xenserver_router_at_dom0_not_cloud0_or_virsh() -> None:
    ctx = context(
        isolated_router(hypervisor="XenServer"),
        current=collection({}, status="failed", reason="router_unreachable", error="no route"),
    )
    [verdict] = access.UNMANAGEABLE.check(ctx)
    assert "router_proxy.sh on dom0" in verdict.remediation
    assert "cloud0" not in verdict.remediation and "virsh" not in verdict.remediation


def test_it_names_the_hosts_hypervisor_when_the_host_cannot_be_reached() -> None:
    ctx = context(
        isolated_router(hypervisor="XenServer"),
        current=collection({}, status="failed", reason="host_unreachable", error="no route"),
    )
    [verdict] = access.UNMANAGEABLE.check(ctx)
    assert "its XenServer host" in verdict.title
