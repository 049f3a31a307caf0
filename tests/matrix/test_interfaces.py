"""The interface rules: NICs missing, down, with other addresses or MACs, MTU, VXLAN headroom."""

from __future__ import annotations

from diagnostics.matrix.rules import interfaces
from tests.matrix.builders import changed, context, healthy_vpc_facts, isolated_router, nic, parsed, vpc_router


def _without(name: str) -> object:
    facts = parsed("interfaces", "isolated_primary")
    return changed(facts, interfaces=tuple(i for i in facts.interfaces if i.name != name))


def _with(name: str, **changes: object) -> object:
    facts = parsed("interfaces", "isolated_primary")
    return changed(facts, interfaces=tuple(changed(i, **changes) if i.name == name else i for i in facts.interfaces))


def test_it_reports_the_missing_public_interface_of_an_isolated_router() -> None:
    [verdict] = interfaces.MISSING.check(context(isolated_router(), {"interfaces": _without("eth2")}))
    assert verdict.title == "Public interface eth2 missing"
    assert verdict.evidence[1] == "ip addr on the router shows: eth0, eth1"


def test_it_finds_every_interface_of_a_healthy_isolated_router() -> None:
    assert (
        interfaces.MISSING.check(context(isolated_router(), {"interfaces": parsed("interfaces", "isolated_primary")}))
        == []
    )


def test_it_finds_a_vpc_tier_by_its_mac() -> None:
    router = vpc_router(nics=(*vpc_router().nics, nic("Guest", "10.10.2.1", "8a:c9:c6:b4:c6:e8")))
    facts = healthy_vpc_facts()
    assert interfaces.MISSING.check(context(router, facts)) == []


def test_it_reports_a_down_guest_interface() -> None:
    [verdict] = interfaces.DOWN.check(
        context(isolated_router(), {"interfaces": _with("eth0", operstate="DOWN", admin_up=False)})
    )
    assert verdict.evidence[0].startswith("eth0 (Guest NIC 10.1.1.2 (de:86:87:c1:de:db)): state DOWN, admin down")


def test_it_accepts_the_public_nic_down_on_a_redundant_backup() -> None:
    router = vpc_router(is_redundant=True, redundant_state="BACKUP")
    facts = {"interfaces": parsed("interfaces", "vpc_backup_eth1_down"), "vrrp": parsed("vrrp", "vpc_backup_eth1_down")}
    assert interfaces.DOWN.check(context(router, facts)) == []


def test_it_reports_the_public_nic_down_on_a_router_that_is_not_redundant() -> None:
    [verdict] = interfaces.DOWN.check(
        context(vpc_router(), {"interfaces": parsed("interfaces", "vpc_backup_eth1_down")})
    )
    assert verdict.title == "Public interface eth1 is down"


def test_it_reports_an_interface_with_another_address() -> None:
    router = isolated_router(nics=(nic("Guest", "10.1.1.5", "de:86:87:c1:de:db"), *isolated_router().nics[1:]))
    [verdict] = interfaces.ADDRESS.check(context(router, {"interfaces": parsed("interfaces", "isolated_primary")}))
    assert verdict.evidence == ("CloudStack: eth0 10.1.1.5; router: 10.1.1.2, 10.1.1.1",)


def test_it_reports_an_interface_with_another_mac() -> None:
    router = isolated_router(nics=(nic("Guest", "10.1.1.2", "02:00:00:00:00:01"), *isolated_router().nics[1:]))
    [verdict] = interfaces.ADDRESS.check(context(router, {"interfaces": parsed("interfaces", "isolated_primary")}))
    assert verdict.evidence == ("CloudStack: eth0 MAC 02:00:00:00:00:01; router: de:86:87:c1:de:db",)


def test_it_accepts_interfaces_matching_cloudstack() -> None:
    assert (
        interfaces.ADDRESS.check(context(isolated_router(), {"interfaces": parsed("interfaces", "isolated_primary")}))
        == []
    )


def test_it_reports_an_mtu_other_than_cloudstack_lists() -> None:
    router = vpc_router(nics=(*vpc_router().nics[:2], nic("Guest", "10.10.1.1", "8a:c9:c6:b4:c6:e8", mtu=1500)))
    [verdict] = interfaces.MTU.check(context(router, healthy_vpc_facts()))
    assert verdict.title == "eth2 MTU 1450, CloudStack says 1500"


def test_it_accepts_the_mtu_cloudstack_lists() -> None:
    assert interfaces.MTU.check(context(vpc_router(), healthy_vpc_facts())) == []


def test_it_advises_on_a_1500_guest_mtu_over_vxlan() -> None:
    router = isolated_router(
        nics=(nic("Guest", "10.1.1.2", "de:86:87:c1:de:db", broadcast_uri="vxlan://5001"), *isolated_router().nics[1:])
    )
    [verdict] = interfaces.ENCAPSULATION.check(
        context(router, {"interfaces": parsed("interfaces", "isolated_primary")})
    )
    assert verdict.severity == "info"
    assert "at least 1550" in verdict.remediation


def test_it_says_nothing_of_a_vlan_guest_network() -> None:
    router = isolated_router(
        nics=(nic("Guest", "10.1.1.2", "de:86:87:c1:de:db", broadcast_uri="vlan://100"), *isolated_router().nics[1:])
    )
    assert (
        interfaces.ENCAPSULATION.check(context(router, {"interfaces": parsed("interfaces", "isolated_primary")})) == []
    )
