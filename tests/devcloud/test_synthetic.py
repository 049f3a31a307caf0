"""The simulator's fleet: a realistic 10,000-router synthetic cloud and the lab file's objects."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from cs import CloudStack

from devcloud.simulator.server import start_simulator
from devcloud.simulator.synthetic import Fleet, generate_fleet


@pytest.fixture(scope="module")
def big_fleet() -> Fleet:
    return generate_fleet(10000, seed=1)


def test_it_generates_exactly_the_routers_asked_for(big_fleet: Fleet) -> None:
    assert len(big_fleet.routers) == 10000


def test_it_is_deterministic_for_a_seed() -> None:
    first, again = generate_fleet(300, seed=5), generate_fleet(300, seed=5)
    assert [r.data for r in first.routers] == [r.data for r in again.routers]


def test_different_seeds_give_different_fleets() -> None:
    assert generate_fleet(50, seed=1).routers[0].id != generate_fleet(50, seed=2).routers[0].id


def test_most_routers_run_and_a_few_do_not(big_fleet: Fleet) -> None:
    states = Counter(r.state for r in big_fleet.routers)
    assert states["Running"] > 9500
    assert all(states[s] > 0 for s in ("Stopped", "Error", "Starting"))


def test_redundant_pairs_share_a_network_with_one_primary_and_one_backup(big_fleet: Fleet) -> None:
    pairs: dict[str, list[str]] = {}
    for router in big_fleet.routers:
        if router.data["isredundantrouter"]:
            key = router.data.get("vpcid") or router.data["guestnetworkid"]
            pairs.setdefault(key, []).append(router.data["redundantstate"])
    healthy = [sorted(states) for states in pairs.values() if "UNKNOWN" not in states and "FAULT" not in states]
    assert len(pairs) > 1000 and all(len(states) == 2 for states in pairs.values())
    assert all(states == ["BACKUP", "PRIMARY"] for states in healthy)


def test_it_mixes_kvm_and_vmware_over_several_zones(big_fleet: Fleet) -> None:
    hypervisors = Counter(r.data["hypervisor"] for r in big_fleet.routers)
    assert hypervisors["KVM"] > 3000 and hypervisors["VMware"] > 1000
    assert len({r.data["zoneid"] for r in big_fleet.routers}) == 4


def test_some_routers_need_an_upgrade(big_fleet: Fleet) -> None:
    needing = [r for r in big_fleet.routers if r.data["requiresupgrade"]]
    assert 200 < len(needing) < 1500 and all(r.data["version"] != "4.20.1" for r in needing)


def test_some_routers_have_failing_health_checks(big_fleet: Fleet) -> None:
    assert 200 < sum(r.has_failing_checks() for r in big_fleet.routers) < 1000


def test_some_routers_belong_to_projects_and_a_couple_to_the_admin(big_fleet: Fleet) -> None:
    assert sum("projectid" in r.data for r in big_fleet.routers) > 300
    assert 2 <= sum(r.data["account"] == "admin" for r in big_fleet.routers) <= 4


def test_every_router_id_name_and_control_ip_is_unique(big_fleet: Fleet) -> None:
    for field in ("id", "name", "linklocalip"):
        assert len({r.data[field] for r in big_fleet.routers}) == 10000


def test_hosts_have_documentation_range_addresses(big_fleet: Fleet) -> None:
    assert all(h["ipaddress"].startswith(("198.51.100.", "203.0.113.")) for h in big_fleet.hosts)


def test_vpcs_list_their_tiers(big_fleet: Fleet) -> None:
    assert all(vpc["network"] and all(t["vpcid"] == vpc["id"] for t in vpc["network"]) for vpc in big_fleet.vpcs)


def _lab(router_name: str) -> dict[str, Any]:
    zone = {"id": "11111111-1111-4111-8111-111111111111", "name": "lab-zone", "networktype": "Advanced"}
    router = {
        "id": "22222222-2222-4222-8222-222222222222",
        "name": router_name,
        "state": "Running",
        "zoneid": zone["id"],
        "zonename": zone["name"],
        "account": "admin",
        "domainid": "6c0e6b4e-1f3b-4d39-9c43-000000000001",
        "domain": "ROOT",
        "hypervisor": "KVM",
        "linklocalip": "169.254.3.93",
        "isredundantrouter": False,
        "redundantstate": "UNKNOWN",
        "healthcheckresults": [
            {
                "checkname": "dns_check.py",
                "checktype": "advanced",
                "success": False,
                "lastupdated": "2025-03-06T14:21:10+0000",
                "details": "Missing entry in /etc/hosts - 10.1.1.25 vm-a",
            }
        ],
    }
    return {"zones": [zone], "hosts": [], "networks": [], "vpcs": [], "routers": [router], "templates": []}


def test_lab_objects_are_listed_first(tmp_path: Path) -> None:
    lab_file = tmp_path / "lab.json"
    lab_file.write_text(json.dumps(_lab("r-7-VM")))
    with start_simulator(routers=10, lab_file=lab_file, prewarm=False) as sim:
        api = CloudStack(endpoint=sim.url, key=sim.api_key, secret=sim.secret_key)
        routers = api.listRouters(fetch_list=True, listall=True, fetchhealthcheckresults=True)
        zones = api.listZones(fetch_list=True)
    assert routers[0]["name"] == "r-7-VM" and routers[0]["healthcheckresults"][0]["success"] is False
    assert zones[0]["name"] == "lab-zone" and len(zones) == 5


def test_lab_file_changes_are_picked_up(tmp_path: Path) -> None:
    lab_file = tmp_path / "lab.json"
    lab_file.write_text(json.dumps(_lab("r-7-VM")))
    with start_simulator(routers=10, lab_file=lab_file, prewarm=False) as sim:
        api = CloudStack(endpoint=sim.url, key=sim.api_key, secret=sim.secret_key)
        api.listRouters(listall=True)
        lab_file.write_text(json.dumps(_lab("r-8-VM")))
        stat = lab_file.stat()
        os.utime(lab_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        first = api.listRouters(listall=True, page=1, pagesize=1)["router"][0]
    assert first["name"] == "r-8-VM"


def test_synthetic_routers_avoid_lab_names_and_addresses(tmp_path: Path) -> None:
    lab = _lab("r-1000-VM")
    lab["routers"][0]["linklocalip"] = "169.254.128.2"
    lab_file = tmp_path / "lab.json"
    lab_file.write_text(json.dumps(lab))
    with start_simulator(routers=10, lab_file=lab_file, prewarm=False) as sim:
        routers = [r.data for r in sim.cloud.fleet.routers]
    assert [r["name"] for r in routers].count("r-1000-VM") == 1
    assert [r.get("linklocalip") for r in routers].count("169.254.128.2") == 1
