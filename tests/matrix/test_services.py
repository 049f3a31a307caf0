"""The password server, userdata and systemd rules, on captured-format facts."""

from __future__ import annotations

from diagnostics.matrix.rules import api_state, processes, services
from tests.matrix.builders import changed, check, context, isolated_router, parsed


def _stopped(name: str) -> object:
    facts = parsed("processes", "healthy")
    return changed(
        facts, services=tuple(changed(s, running=False, pids=()) if s.name == name else s for s in facts.services)
    )


def _router() -> object:
    return isolated_router()


def test_it_reports_the_password_server_down_where_it_must_serve() -> None:
    [verdict] = services.PASSWORD_DOWN.check(context(_router(), {"processes": _stopped("password_server")}))
    assert (verdict.category, verdict.severity) == ("password", "critical")
    assert "expected on 10.1.1.2:8080" in verdict.evidence
    assert verdict.action == "restart-service:password-server"


def test_it_accepts_no_password_server_on_a_redundant_backup() -> None:
    router = isolated_router(is_redundant=True, redundant_state="BACKUP")
    facts = {"processes": _stopped("password_server"), "vrrp": parsed("vrrp", "isolated_backup")}
    assert services.PASSWORD_DOWN.check(context(router, facts)) == []


def test_it_reports_a_missing_token_file() -> None:
    facts = {
        "services": parsed("services", "token_missing_after_ip_change"),
        "processes": parsed("processes", "healthy"),
    }
    [verdict] = services.TOKEN_MISSING.check(context(_router(), facts))
    assert verdict.title == "password server token file missing: password saves fail"


def test_it_reports_a_guest_address_without_its_vhost() -> None:
    router = isolated_router(nics=(changed(_router().nics[0], ip_address="10.1.1.1"), *_router().nics[1:]))
    facts = {
        "services": parsed("services", "token_missing_after_ip_change"),
        "processes": parsed("processes", "healthy"),
    }
    [verdict] = services.VHOST_MISSING.check(context(router, facts))
    assert verdict.title == "no /etc/apache2/sites-enabled/vhost-10.1.1.1.conf for guest address 10.1.1.1"


def test_it_is_quiet_on_a_healthy_password_server_and_vhost() -> None:
    router = isolated_router(nics=(changed(_router().nics[0], ip_address="10.1.1.1"), *_router().nics[1:]))
    facts = {"services": parsed("services", "healthy"), "processes": parsed("processes", "healthy")}
    ctx = context(router, facts)
    assert [r.check(ctx) for r in services.RULES] == [[] for _ in services.RULES]


def test_it_reports_apache2_down_as_no_userdata_with_the_health_check_as_evidence() -> None:
    router = isolated_router(health_checks=(check("webserver.service", "service down at last check 1742334000"),))
    ctx = context(router, {"processes": _stopped("apache2")})
    [verdict] = services.APACHE_DOWN.check(ctx)
    assert verdict.category == "userdata"
    assert "CloudStack health check webserver.service failed: service down at last check 1742334000" in verdict.evidence
    assert api_state.HEALTH_CHECKS.check(ctx) == []


def test_it_keeps_a_failing_health_check_with_no_cause_found() -> None:
    router = isolated_router(health_checks=(check("webserver.service", "service down at last check 1742334000"),))
    [verdict] = api_state.HEALTH_CHECKS.check(context(router, {"processes": parsed("processes", "healthy")}))
    assert verdict.title == "CloudStack health check webserver.service failing"


def test_it_calls_a_silent_systemctl_unknown_not_keepalived_inactive() -> None:
    router = isolated_router(is_redundant=True, redundant_state="PRIMARY")
    facts = {"vrrp": parsed("vrrp", "isolated_systemd_unreachable"), "processes": parsed("processes", "healthy")}
    assert processes.KEEPALIVED_DOWN.check(context(router, facts)) == []
    [verdict] = services.SYSTEMD_SILENT.check(context(router, facts))
    assert verdict.title == "systemctl cannot talk to systemd"


def test_it_still_reports_keepalived_down_by_the_process_list_when_systemctl_is_silent() -> None:
    router = isolated_router(is_redundant=True, redundant_state="PRIMARY")
    facts = {"vrrp": parsed("vrrp", "isolated_systemd_unreachable"), "processes": _stopped("keepalived")}
    [verdict] = processes.KEEPALIVED_DOWN.check(context(router, facts))
    assert "ps: no keepalived process" in verdict.evidence


def test_it_reports_password_server_failures_from_messages() -> None:
    facts = {"logs": parsed("logs", "kernel_and_syslog_problems")}
    [verdict] = services.PASSWORD_ERRORS.check(
        context(_router(), facts, thresholds={"config_error_window_hours": 1_000_000})
    )
    assert verdict.evidence[0] == "2 password server failure line(s) in /var/log/messages"
