"""Integration: every lab fault is visible in the collected facts of its router, absent on a healthy one.

One lab for the module (name `vrcf`, base block 73 (tests/lab_slots.py), the default six routers), synced
from the simulator. Healthy routers are collected first; then the faults are injected for
real and the faulty routers collected with the real probes over real SSH:

- r-10 (isolated, KVM): snat-missing, zombie-haproxy, mtu-mismatch, outdated-template,
  stale-lease, qemu-tap-failure, log-not-rotating, config-apply-failed, then var-log-full
  (last, since it leaves no room in /var/log for the others' writes);
- r-12 (vpc): dnsmasq-down and conntrack-near-limit;
- r-13 / r-14 (redundant pair): split-brain;
- r-15 (direct): sshd-down.

The healthy counterparts are r-11 (isolated), the pair and r-15 before their faults.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import override_settings

from devcloud import lab
from diagnostics.models import Collection, CollectionReason, CollectionStatus
from tests.diagnostics.lab_inventory import SyncedLab, collect, synced_lab
from tests.lab_slots import lab_block, lab_name
from vrconsole.models import RouterNic

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.django_db]

LAB_NAME = lab_name("vrcf")
LAB_BLOCK = lab_block(73)
FAULTY = "r-10-VM"
HEALTHY = "r-11-VM"
VPC = "r-12-VM"
PAIR = ("r-13-VM", "r-14-VM")
DIRECT = "r-15-VM"
# Order matters on FAULTY: /var/log is filled last, and the apply failure is written after the
# log growth so it stays in the tail the logs probe reads.
FAULTS_IN_ORDER: tuple[tuple[str, str], ...] = (
    (FAULTY, "snat-missing"),
    (FAULTY, "zombie-haproxy"),
    (FAULTY, "mtu-mismatch"),
    (FAULTY, "outdated-template"),
    (FAULTY, "stale-lease"),
    (FAULTY, "qemu-tap-failure"),
    (FAULTY, "log-not-rotating"),
    (FAULTY, "config-apply-failed"),
    (FAULTY, "var-log-full"),
    (VPC, "dnsmasq-down"),
    (VPC, "conntrack-near-limit"),
    (PAIR[0], "split-brain"),
    (DIRECT, "sshd-down"),
)


@dataclass
class FaultCollections:
    """Collections of the lab's routers before (healthy) and after (faulty) the faults."""

    lab: SyncedLab
    healthy: dict[str, Collection]
    faulty: dict[str, Collection]


@pytest.fixture(scope="module")
def collections(django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: Any) -> Iterator[FaultCollections]:
    known_hosts = tmp_path_factory.mktemp("ssh") / "known_hosts"
    with (
        django_db_blocker.unblock(),
        override_settings(SSH_KNOWN_HOSTS_FILE=str(known_hosts), SSH_OVERRIDES={}),
        synced_lab(LAB_NAME, LAB_BLOCK) as synced,
    ):
        healthy = {name: collect(synced.router(name)) for name in (HEALTHY, *PAIR, DIRECT)}
        for router_name, fault in FAULTS_IN_ORDER:
            lab.inject_fault(router_name, fault, lab=LAB_NAME)
        faulty = {name: collect(synced.router(name)) for name in (FAULTY, VPC, *PAIR, DIRECT)}
        yield FaultCollections(lab=synced, healthy=healthy, faulty=faulty)


def facts(collection: Collection, probe: str) -> Any:
    """One probe's facts; a missing probe fails the test with the collection's own story."""
    assert collection.status == CollectionStatus.SUCCEEDED, collection.error
    assert probe in collection.facts, f"{probe} failed: {collection.probe_results.filter(name=probe).first()}"
    return collection.facts[probe]


def service(collection: Collection, name: str) -> dict[str, Any]:
    return next(s for s in facts(collection, "processes")["services"] if s["name"] == name)


def test_it_sees_dnsmasq_down_in_the_processes_of_its_router(collections: FaultCollections) -> None:
    assert service(collections.faulty[VPC], "dnsmasq")["running"] is False
    assert service(collections.healthy[HEALTHY], "dnsmasq")["running"] is True


def test_it_sees_var_log_full_in_the_disk_facts(collections: FaultCollections) -> None:
    def log_percent(collection: Collection) -> int:
        return next(f["used_percent"] for f in facts(collection, "disk")["filesystems"] if f["path"] == "/var/log")

    assert log_percent(collections.faulty[FAULTY]) >= 95
    assert log_percent(collections.healthy[HEALTHY]) < 95


def test_it_sees_conntrack_near_its_limit(collections: FaultCollections) -> None:
    def ratio(collection: Collection) -> float:
        conntrack = facts(collection, "conntrack")
        return conntrack["count"] / conntrack["max"]

    assert ratio(collections.faulty[VPC]) >= 0.85
    assert ratio(collections.healthy[HEALTHY]) < 0.5


def test_it_sees_the_missing_snat_rule_in_the_nat_table(collections: FaultCollections) -> None:
    def public_snat(name: str, collection: Collection) -> list[dict[str, Any]]:
        public_ip = collections.lab.plan.router(name).public.ipaddress
        rules = facts(collection, "iptables_nat")["rules"]
        return [rule for rule in rules if rule["target"] == "SNAT" and rule["to_source"] == public_ip]

    assert public_snat(FAULTY, collections.faulty[FAULTY]) == []
    assert public_snat(HEALTHY, collections.healthy[HEALTHY]) != []


def test_it_sees_split_brain_as_both_members_primary(collections: FaultCollections) -> None:
    before = sorted(facts(collections.healthy[name], "vrrp")["state"] for name in PAIR)
    after = [facts(collections.faulty[name], "vrrp")["state"] for name in PAIR]
    assert after == ["PRIMARY", "PRIMARY"]
    assert before == ["BACKUP", "PRIMARY"]


def cloud_log_lines(collection: Collection) -> list[str]:
    files = facts(collection, "logs")["files"]
    return [line["text"] for f in files if f["path"] == "/var/log/cloud.log" for line in f["lines"]]


def test_it_sees_the_failed_config_apply_in_cloud_log(collections: FaultCollections) -> None:
    assert any("VR config: executing failed" in line for line in cloud_log_lines(collections.faulty[FAULTY]))
    assert not any("executing failed" in line for line in cloud_log_lines(collections.healthy[HEALTHY]))


def test_it_counts_the_defunct_haproxy_children(collections: FaultCollections) -> None:
    assert service(collections.faulty[FAULTY], "haproxy")["defunct"] > 0
    assert service(collections.healthy[HEALTHY], "haproxy")["defunct"] == 0


def test_it_records_sshd_down_as_a_failed_collection_with_its_reason(collections: FaultCollections) -> None:
    down = collections.faulty[DIRECT]
    assert (down.status, down.reason) == (CollectionStatus.FAILED, CollectionReason.ROUTER_UNREACHABLE)
    assert collections.healthy[DIRECT].status == CollectionStatus.SUCCEEDED


def test_it_sees_the_guest_mtu_differ_from_the_api_mtu(collections: FaultCollections) -> None:
    def guest_mtus(name: str, collection: Collection) -> tuple[int, int | None]:
        router = collections.lab.router(name)
        nic = RouterNic.objects.get(router=router, traffic_type="Guest")
        interface = next(i for i in facts(collection, "interfaces")["interfaces"] if i["mac"] == nic.mac_address)
        return interface["mtu"], nic.mtu

    seen, api = guest_mtus(FAULTY, collections.faulty[FAULTY])
    assert api is not None and seen != api
    seen, api = guest_mtus(HEALTHY, collections.healthy[HEALTHY])
    assert seen == api


def test_it_sees_the_stale_lease_and_the_refused_discover(collections: FaultCollections) -> None:
    def dnsmasq_log_kinds(collection: Collection) -> set[str]:
        files = facts(collection, "logs")["files"]
        return {line["kind"] for f in files if f["path"] == "/var/log/dnsmasq.log" for line in f["lines"]}

    assert facts(collections.faulty[FAULTY], "dnsmasq")["stale_leases"] != []
    assert "dhcp-no-address" in dnsmasq_log_kinds(collections.faulty[FAULTY])
    assert facts(collections.healthy[HEALTHY], "dnsmasq")["stale_leases"] == []
    assert "dhcp-no-address" not in dnsmasq_log_kinds(collections.healthy[HEALTHY])


def test_it_sees_a_template_older_than_the_api_says(collections: FaultCollections) -> None:
    def version(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in text.split(".")[:3])

    for name, collection, older in (
        (FAULTY, collections.faulty[FAULTY], True),
        (HEALTHY, collections.healthy[HEALTHY], False),
    ):
        api_version = collections.lab.router(name).template_version
        seen = facts(collection, "versions")["template_version"]
        assert (version(seen) < version(api_version)) is older, (name, seen, api_version)


def test_it_sees_a_cloud_log_that_does_not_rotate(collections: FaultCollections) -> None:
    def cloud_log(collection: Collection) -> tuple[int, int]:
        files = facts(collection, "logfiles")["files"]
        size = next(f["size"] for f in files if f["path"] == "/var/log/cloud.log")
        rotated = sum(1 for f in files if f["base"] == "/var/log/cloud.log" and f["rotated"])
        return size, rotated

    size, rotated = cloud_log(collections.faulty[FAULTY])
    assert size > 10 * 1024 * 1024 and rotated == 0
    assert cloud_log(collections.healthy[HEALTHY])[0] < 10 * 1024 * 1024


def test_it_sees_the_tap_failure_in_the_host_qemu_log(collections: FaultCollections) -> None:
    assert facts(collections.faulty[FAULTY], "host_qemu_log")["error_lines"] != []
    assert facts(collections.healthy[HEALTHY], "host_qemu_log")["error_lines"] == []
