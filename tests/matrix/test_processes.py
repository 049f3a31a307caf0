"""The process rules: defunct haproxy children, haproxy down where LB is configured, keepalived not active."""

from __future__ import annotations

from diagnostics.matrix.rules import processes
from diagnostics.probes import config
from tests.matrix.builders import FIXTURES, changed, context, isolated_router, parsed


def _config_without_lb() -> object:
    text = (FIXTURES / "config" / "isolated_redundant.txt").read_text()
    return config.parse(text.replace("|listen 198_51_100_10-80", "|"))


def _haproxy_stopped() -> object:
    facts = parsed("processes", "healthy")
    return changed(
        facts, services=tuple(changed(s, running=False, pids=()) if s.name == "haproxy" else s for s in facts.services)
    )


def test_it_reports_defunct_haproxy_children() -> None:
    [verdict] = processes.DEFUNCT.check(context(facts={"processes": parsed("processes", "haproxy_defunct")}))
    assert verdict.title == "2 defunct haproxy children"


def test_it_says_nothing_without_defunct_children() -> None:
    assert processes.DEFUNCT.check(context(facts={"processes": parsed("processes", "healthy")})) == []


def test_it_reports_haproxy_down_where_load_balancing_is_configured() -> None:
    [verdict] = processes.HAPROXY_DOWN.check(
        context(facts={"processes": _haproxy_stopped(), "config": parsed("config", "isolated_redundant")})
    )
    assert verdict.severity == "critical"
    assert "/etc/haproxy/haproxy.cfg: listen 198_51_100_10-80" in verdict.evidence


def test_it_accepts_haproxy_down_without_load_balancer_rules() -> None:
    facts = {"processes": _haproxy_stopped(), "config": _config_without_lb()}
    assert processes.HAPROXY_DOWN.check(context(facts=facts)) == []


def test_it_only_notes_haproxy_down_on_a_redundant_backup() -> None:
    router = isolated_router(is_redundant=True, redundant_state="BACKUP")
    facts = {
        "processes": _haproxy_stopped(),
        "config": parsed("config", "isolated_redundant"),
        "vrrp": parsed("vrrp", "isolated_backup"),
    }
    [verdict] = processes.HAPROXY_DOWN.check(context(router, facts))
    assert verdict.severity == "info"


def test_it_reports_keepalived_inactive_on_a_redundant_router() -> None:
    router = isolated_router(is_redundant=True, redundant_state="PRIMARY")
    [verdict] = processes.KEEPALIVED_DOWN.check(context(router, {"vrrp": parsed("vrrp", "isolated_keepalived_down")}))
    assert "systemctl is-active keepalived: inactive" in verdict.evidence


def test_it_says_nothing_of_keepalived_on_a_router_that_is_not_redundant() -> None:
    assert (
        processes.KEEPALIVED_DOWN.check(context(isolated_router(), {"vrrp": parsed("vrrp", "isolated_not_redundant")}))
        == []
    )


def test_it_only_notes_keepalived_down_on_a_vpc_router_without_tiers() -> None:
    router = isolated_router(router_type="vpc", is_redundant=True, redundant_state="UNKNOWN")
    vrrp = changed(parsed("vrrp", "vpc_no_guest_nics_unknown"), keepalived_active=False, keepalived_status="inactive")
    [verdict] = processes.KEEPALIVED_DOWN.check(context(router, {"vrrp": vrrp}))
    assert verdict.severity == "info"
