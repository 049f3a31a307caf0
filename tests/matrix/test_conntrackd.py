"""conntrackd rules on facts captured from lab routers: a stopped daemon, a sync link that carries nothing."""

from __future__ import annotations

from typing import Any

from diagnostics.matrix.rules import conntrackd
from tests.matrix.builders import changed, context, isolated_router, parsed, peer


def _member(state: str = "PRIMARY") -> Any:
    return isolated_router(is_redundant=True, redundant_state=state)


def _facts(case: str, **more: Any) -> dict[str, Any]:
    return {"conntrackd": parsed("conntrackd", case), "interfaces": parsed("interfaces", "isolated_primary"), **more}


def test_it_reports_conntrackd_not_running_on_a_redundant_router() -> None:
    [verdict] = conntrackd.NOT_RUNNING.check(context(_member(), _facts("not_running")))
    assert verdict.title == "conntrackd not running on this PRIMARY router"
    assert "conntrackd.conf: multicast 225.0.0.50 group 3780 on eth0 (10.1.4.2)" in verdict.evidence


def test_it_reports_conntrackd_not_running_on_a_backup_too() -> None:
    [verdict] = conntrackd.NOT_RUNNING.check(context(_member("BACKUP"), _facts("not_running")))
    assert "BACKUP" in verdict.title


def test_it_accepts_conntrackd_stopped_on_a_fault_router() -> None:
    assert conntrackd.NOT_RUNNING.check(context(_member("FAULT"), _facts("not_running"))) == []


def test_it_ignores_a_router_that_is_not_redundant() -> None:
    assert conntrackd.NOT_RUNNING.check(context(isolated_router(), _facts("not_running"))) == []


def test_it_says_nothing_about_a_router_without_conntrackd_conf() -> None:
    ctx = context(_member(), _facts("not_redundant"))
    assert conntrackd.NOT_RUNNING.check(ctx) == conntrackd.NOT_SYNCING.check(ctx) == []


def test_it_finds_a_healthy_pair_member_syncing() -> None:
    ctx = context(_member(), _facts("healthy"))
    assert conntrackd.NOT_RUNNING.check(ctx) == conntrackd.NOT_SYNCING.check(ctx) == []


def test_it_reports_a_member_that_hears_nothing_from_its_peer() -> None:
    [verdict] = conntrackd.NOT_SYNCING.check(context(_member(), _facts("not_syncing")))
    assert verdict.title == (
        "conntrackd not syncing with its peer: received no sync message from the peer in 3 s while sending 3 "
        "(Pckts recv stayed at 2)"
    )


def test_it_reports_send_errors_that_grow() -> None:
    facts = parsed("conntrackd", "healthy")
    later = changed(facts.later, errors_send=facts.first.errors_send + 4)
    [verdict] = conntrackd.NOT_SYNCING.check(
        context(_member(), _facts("healthy", conntrackd=changed(facts, later=later)))
    )
    assert "4 multicast send error(s) in 3 s" in verdict.evidence


def test_it_reports_a_sync_interface_that_is_missing() -> None:
    facts = changed(parsed("conntrackd", "healthy"), multicast_interface="eth7")
    [verdict] = conntrackd.NOT_SYNCING.check(context(_member(), _facts("healthy", conntrackd=facts)))
    assert verdict.evidence[0] == "the sync interface eth7 does not exist on the router"


def test_it_reports_an_empty_external_cache_while_the_peer_is_busy() -> None:
    mine = parsed("conntrackd", "healthy")
    mine = changed(mine, later=changed(mine.later, external_active=0))
    theirs = parsed("conntrackd", "healthy")
    theirs = changed(theirs, later=changed(theirs.later, internal_active=5000))
    other = peer(isolated_router(name="r-14-VM", is_redundant=True, redundant_state="BACKUP"), {"conntrackd": theirs})
    [verdict] = conntrackd.NOT_SYNCING.check(context(_member(), _facts("healthy", conntrackd=mine), peers=(other,)))
    assert "the external cache is empty while r-14-VM tracks 5,000 connection(s) of its own" in verdict.evidence


def test_it_says_nothing_when_conntrackd_did_not_answer_its_stats() -> None:
    facts = changed(parsed("conntrackd", "healthy"), first=None, later=None, stats_error="cannot connect")
    assert conntrackd.NOT_SYNCING.check(context(_member(), _facts("healthy", conntrackd=facts))) == []
