"""The API-state rules: Error, stuck, requires upgrade, version mismatches, live patch, zone template, health checks."""

from __future__ import annotations

from datetime import timedelta

from diagnostics.matrix.rules import api_state
from tests.matrix.builders import (
    NOW,
    changed,
    check,
    context,
    healthy_isolated_facts,
    isolated_router,
    parsed,
    vpc_router,
)


def test_it_reports_a_router_in_error_with_restart_network_cleanup_first() -> None:
    [verdict] = api_state.ERROR_STATE.check(context(isolated_router(state="Error")))
    assert verdict.severity == "critical"
    assert "restartNetwork id=<network uuid> cleanup=true" in verdict.remediation
    assert "listRouters state: Error (router r-12-VM, host kvm-1)" in verdict.evidence


def test_it_tells_a_vpc_router_in_error_to_restart_the_vpc() -> None:
    [verdict] = api_state.ERROR_STATE.check(context(vpc_router(state="Error")))
    assert "restartVPC id=<vpc uuid> cleanup=true" in verdict.remediation


def test_it_never_suggests_destroying_a_lone_router_in_error() -> None:
    [verdict] = api_state.ERROR_STATE.check(context(isolated_router(state="Error")))
    assert "destroyRouter" not in verdict.remediation


def test_it_says_nothing_of_a_running_router_state() -> None:
    assert api_state.ERROR_STATE.check(context(isolated_router())) == []


def test_it_reports_a_router_starting_beyond_the_threshold() -> None:
    router = isolated_router(state="Starting", state_since=NOW - timedelta(minutes=45))
    [verdict] = api_state.STUCK.check(context(router))
    assert verdict.title == "r-12-VM stuck in Starting for 45 min"


def test_it_leaves_a_router_starting_for_less_than_the_threshold() -> None:
    router = isolated_router(state="Starting", state_since=NOW - timedelta(minutes=5))
    assert api_state.STUCK.check(context(router)) == []


def test_it_reports_a_router_that_requires_upgrade() -> None:
    [verdict] = api_state.REQUIRES_UPGRADE.check(context(isolated_router(requires_upgrade=True)))
    assert "minreq.sysvmtemplate.version" in verdict.remediation


def test_it_says_nothing_when_no_upgrade_is_required() -> None:
    assert api_state.REQUIRES_UPGRADE.check(context(isolated_router())) == []


def test_it_reports_a_template_version_other_than_the_api_lists() -> None:
    [verdict] = api_state.TEMPLATE_MISMATCH.check(
        context(isolated_router(template_version="4.19.0"), healthy_isolated_facts())
    )
    assert "/etc/cloudstack-release: Cloudstack Release 4.20.1 Tue Jun 10 09:12:44 UTC 2025" in verdict.evidence


def test_it_accepts_a_template_version_equal_to_the_api() -> None:
    assert api_state.TEMPLATE_MISMATCH.check(context(isolated_router(), healthy_isolated_facts())) == []


def test_it_takes_4_20_1_0_for_4_20_1() -> None:
    assert (
        api_state.TEMPLATE_MISMATCH.check(
            context(isolated_router(template_version="4.20.1.0"), healthy_isolated_facts())
        )
        == []
    )


def test_it_skips_the_template_comparison_when_the_release_file_is_missing() -> None:
    facts = {"versions": parsed("versions", "release_missing")}
    assert api_state.TEMPLATE_MISMATCH.check(context(isolated_router(template_version="4.19.0"), facts)) == []


def test_it_reports_a_scripts_signature_other_than_the_api_lists() -> None:
    router = isolated_router(scripts_version="ffffffffffffffffffffffffffffffff")
    [verdict] = api_state.SCRIPTS_MISMATCH.check(context(router, healthy_isolated_facts()))
    assert "/var/cache/cloud/cloud-scripts-signature: 3c9d7f1e0b2a4c6d8e0f1a2b3c4d5e6f" in verdict.evidence


def test_it_accepts_a_scripts_signature_equal_to_the_api() -> None:
    assert api_state.SCRIPTS_MISMATCH.check(context(isolated_router(), healthy_isolated_facts())) == []


def test_it_notes_a_live_patched_software_version() -> None:
    [verdict] = api_state.LIVE_PATCHED.check(context(isolated_router(software_version="4.20.2")))
    assert verdict.severity == "info"


def test_it_says_nothing_when_the_software_version_is_the_template() -> None:
    assert api_state.LIVE_PATCHED.check(context(isolated_router(software_version="4.20.1"))) == []


def test_it_reports_a_zone_whose_system_template_is_not_ready() -> None:
    [verdict] = api_state.TEMPLATE_NOT_READY.check(context(isolated_router(zone_system_template_ready=False)))
    assert verdict.severity == "warning"
    assert "cannot create a router" in verdict.remediation


def test_it_makes_the_unready_template_critical_for_a_router_in_error() -> None:
    router = isolated_router(state="Error", zone_system_template_ready=False)
    [verdict] = api_state.TEMPLATE_NOT_READY.check(context(router))
    assert verdict.severity == "critical"


def test_it_says_nothing_when_the_zone_template_readiness_is_unknown() -> None:
    assert api_state.TEMPLATE_NOT_READY.check(context(isolated_router(zone_system_template_ready=None))) == []


def test_it_reports_a_failed_health_check_from_the_results() -> None:
    router = isolated_router(
        health_checks=(check("router_version_check.py", "Template Version mismatch. Expected: 4.20.1, found: 4.19.0"),)
    )
    [verdict] = api_state.HEALTH_CHECKS.check(context(router))
    assert verdict.severity == "warning"
    assert "details: Template Version mismatch. Expected: 4.20.1, found: 4.19.0" in verdict.evidence


def test_it_ignores_passing_health_checks() -> None:
    router = isolated_router(health_checks=(check("cpu_usage_check.py", "CPU Usage within limits", success=True),))
    assert api_state.HEALTH_CHECKS.check(context(router)) == []


def test_it_downgrades_gateways_check_on_a_backup_to_info() -> None:
    router = isolated_router(
        is_redundant=True,
        redundant_state="BACKUP",
        health_checks=(check("gateways_check.py", "Unreachable gateways found-"),),
    )
    [verdict] = api_state.HEALTH_CHECKS.check(context(router))
    assert verdict.severity == "info"
    assert "#4163" in verdict.remediation


def test_it_makes_a_failed_connectivity_test_critical() -> None:
    router = isolated_router(health_checks=(check("connectivity.test", "Communication failed"),))
    [verdict] = api_state.HEALTH_CHECKS.check(context(router))
    assert verdict.severity == "critical"


def test_it_uses_the_results_not_the_api_flag() -> None:
    facts = healthy_isolated_facts()
    router = changed(
        isolated_router(), health_checks=(check("disk_space_check.py", "Insufficient free space is 40 MB"),)
    )
    assert [v.rule for v in api_state.HEALTH_CHECKS.check(context(router, facts))] == [
        "cloudstack-health-check-failing"
    ]
