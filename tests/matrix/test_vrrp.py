"""The VRRP rules: split brain, no PRIMARY, FAULT, CloudStack disagreeing with the router."""

from __future__ import annotations

from diagnostics.matrix.rules import vrrp
from tests.matrix.builders import context, isolated_router, parsed, peer


def _member(name: str, state: str, **changes: object) -> object:
    return isolated_router(name=name, is_redundant=True, redundant_state=state, **changes)


def test_it_reports_both_members_primary_as_split_brain() -> None:
    mine = {"vrrp": parsed("vrrp", "isolated_primary"), "logs": parsed("logs", "dhcp_and_daemon_problems")}
    ctx = context(
        _member("r-12-VM", "PRIMARY"),
        mine,
        peers=(peer(_member("r-13-VM", "PRIMARY"), {"vrrp": parsed("vrrp", "isolated_primary")}),),
    )
    [verdict] = vrrp.SPLIT_BRAIN.check(ctx)
    assert verdict.severity == "critical"
    assert (
        "r-13-VM: checkrouter logic says PRIMARY (eth0 carries its own address and the guest gateway VIP)"
        in verdict.evidence
    )
    assert any("received an unexpected ip number count 2, expected 1!" in e for e in verdict.evidence)


def test_it_says_nothing_of_a_primary_and_a_backup() -> None:
    ctx = context(
        _member("r-12-VM", "PRIMARY"),
        {"vrrp": parsed("vrrp", "isolated_primary")},
        peers=(peer(_member("r-13-VM", "BACKUP"), {"vrrp": parsed("vrrp", "isolated_backup")}),),
    )
    assert vrrp.SPLIT_BRAIN.check(ctx) == []


def test_it_reads_an_uncollected_peer_from_the_api() -> None:
    ctx = context(
        _member("r-12-VM", "PRIMARY"),
        {"vrrp": parsed("vrrp", "isolated_primary")},
        peers=(peer(_member("r-13-VM", "PRIMARY")),),
    )
    [verdict] = vrrp.SPLIT_BRAIN.check(ctx)
    assert "r-13-VM: listRouters redundantstate PRIMARY" in verdict.evidence


def test_it_reports_a_pair_with_no_primary() -> None:
    ctx = context(
        _member("r-12-VM", "BACKUP"),
        {"vrrp": parsed("vrrp", "isolated_backup")},
        peers=(peer(_member("r-13-VM", "BACKUP"), {"vrrp": parsed("vrrp", "isolated_backup")}),),
    )
    [verdict] = vrrp.NO_PRIMARY.check(ctx)
    assert verdict.title == "no redundant router is PRIMARY: no gateway, NAT, DHCP, DNS or passwords"
    assert verdict.categories == ("vrrp", "nat", "dhcp", "dns", "password")


def test_it_does_not_call_an_unknown_peer_no_primary() -> None:
    ctx = context(
        _member("r-12-VM", "BACKUP"),
        {"vrrp": parsed("vrrp", "isolated_backup")},
        peers=(peer(_member("r-13-VM", "UNKNOWN")),),
    )
    assert vrrp.NO_PRIMARY.check(ctx) == []


def test_it_reports_a_member_in_fault() -> None:
    [verdict] = vrrp.FAULT.check(context(_member("r-12-VM", "FAULT")))
    assert verdict.severity == "critical"


def test_it_softens_a_fault_the_router_has_recovered_from() -> None:
    [verdict] = vrrp.FAULT.check(context(_member("r-12-VM", "FAULT"), {"vrrp": parsed("vrrp", "isolated_primary")}))
    assert verdict.severity == "warning"


def test_it_says_nothing_of_a_member_not_in_fault() -> None:
    assert vrrp.FAULT.check(context(_member("r-12-VM", "BACKUP"))) == []


def test_it_reports_cloudstack_disagreeing_with_the_router() -> None:
    [verdict] = vrrp.DISAGREES.check(
        context(_member("r-12-VM", "PRIMARY"), {"vrrp": parsed("vrrp", "isolated_backup")})
    )
    assert verdict.title == "CloudStack says PRIMARY, the router is BACKUP"
    assert (
        "on the router, checkrouter logic says BACKUP: eth0 carries 1 IPv4 address(es), not 2 (no VIP)"
        in verdict.evidence
    )


def test_it_says_nothing_when_cloudstack_agrees_with_the_router() -> None:
    assert (
        vrrp.DISAGREES.check(context(_member("r-12-VM", "BACKUP"), {"vrrp": parsed("vrrp", "isolated_backup")})) == []
    )


def test_it_reports_rejected_adverts_from_a_vip_list_mismatch() -> None:
    ctx = context(_member("r-12-VM", "PRIMARY"), {"logs": parsed("logs", "dhcp_and_daemon_problems")})
    [verdict] = vrrp.VIP_MISMATCH.check(ctx)
    assert (
        "Mar 18 22:01:02 r-12-VM Keepalived_vrrp[2211]: (inside_network) received an unexpected ip number count 2, expected 1!"
        in verdict.evidence
    )


def test_it_says_nothing_of_adverts_accepted() -> None:
    assert (
        vrrp.VIP_MISMATCH.check(context(_member("r-12-VM", "PRIMARY"), {"logs": parsed("logs", "benign_errors_only")}))
        == []
    )
