"""Tests of one collection against the loopback sshds: facts, health, snapshots, failures, events."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import override_settings

from diagnostics.collect import ProbeOutcome, run_collection, snapshot_contents
from diagnostics.models import Collection, CollectionStatus, ConfigSnapshot, HealthSample, ProbeResult
from diagnostics.probes.base import Probe
from diagnostics.samples import health_numbers
from diagnostics.ssh import Endpoint
from tests.diagnostics.conftest import SILENT_ADDRESS, make_router
from tests.diagnostics.probe_doubles import parse_load, probe_set, write_rules
from vrconsole.events import router_group
from vrconsole.models import AuditEntry, Host, Region, Router, Zone

pytestmark = pytest.mark.django_db

RULES = ["-A INPUT -i eth1 -p tcp --dport 3922 -j ACCEPT", "-A INPUT -i eth0 -p udp --dport 53 -j ACCEPT"]


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "filter.rules"
    write_rules(path, RULES)
    return path


@pytest.fixture
def probes(rules_file: Path) -> list[Probe]:
    return probe_set(rules_file)


class EventRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, group: str, message: dict[str, Any]) -> None:
        self.events.append((group, dict(message)))


def collect(router: Router, probes: list[Probe], **kwargs: Any) -> Collection:
    collection = Collection.objects.create(router=router)
    kwargs.setdefault("publish", EventRecorder())
    return run_collection(collection, probes, **kwargs)


def test_it_stores_a_succeeded_collection_with_the_facts_of_each_probe(
    ssh_settings: object, kvm_router: Router, probes: list[Probe]
) -> None:
    collection = collect(kvm_router, probes)
    collection.refresh_from_db()
    assert collection.status == CollectionStatus.SUCCEEDED
    assert collection.facts["conntrack"] == {"count": 250, "max": 1000, "used_percent": 25.0}
    assert collection.facts["iptables_filter"]["rules"] == RULES
    assert collection.started is not None and collection.finished is not None and collection.duration_s is not None


def test_it_keeps_each_probes_raw_output_and_timing(
    ssh_settings: object, kvm_router: Router, probes: list[Probe]
) -> None:
    collection = collect(kvm_router, probes)
    result = ProbeResult.objects.get(collection=collection, name="conntrack")
    assert (result.ok, result.exit_status, result.stdout) == (True, 0, "count=250 max=1000\n")
    assert result.duration_s is not None and result.duration_s >= 0


def test_it_writes_a_health_sample_from_the_facts(
    ssh_settings: object, kvm_router: Router, probes: list[Probe]
) -> None:
    collection = collect(kvm_router, probes)
    sample = HealthSample.objects.get(collection=collection)
    assert (sample.conntrack_count, sample.conntrack_max, sample.conntrack_percent) == (250, 1000, 25.0)
    assert sample.filter_rules == 2
    assert sample.load1 == collection.facts["system"]["load1"]
    # No probe reported memory or disk: those numbers stay empty rather than invented.
    assert sample.memory_percent is None and sample.disk_root_percent is None


def test_it_keeps_partial_results_when_some_probes_fail(
    ssh_settings: object, kvm_router: Router, probes: list[Probe]
) -> None:
    collection = collect(kvm_router, probes)
    errors = dict(ProbeResult.objects.filter(collection=collection, ok=False).values_list("name", "error"))
    assert collection.status == CollectionStatus.SUCCEEDED
    assert collection.probe_errors == 2
    assert errors["garbage"].startswith("unparseable output")
    assert errors["missing_file"].startswith("exit status 1")
    assert "garbage" not in collection.facts and "system" in collection.facts


def test_it_runs_host_probes_on_the_kvm_host_session(
    ssh_settings: object, kvm_router: Router, probes: list[Probe]
) -> None:
    collection = collect(kvm_router, probes)
    assert collection.facts["host_view"] == {"line": "r-10-VM 127.0.0.3"}
    assert ProbeResult.objects.get(collection=collection, name="host_view").scope == "host"


def test_it_skips_host_probes_for_a_router_reached_directly(
    ssh_settings: object, direct_router: Router, probes: list[Probe]
) -> None:
    collection = collect(direct_router, probes)
    assert collection.status == CollectionStatus.SUCCEEDED
    assert not ProbeResult.objects.filter(collection=collection, name="host_view").exists()


def test_it_stores_a_config_snapshot_only_when_the_content_changed(
    ssh_settings: object, kvm_router: Router, probes: list[Probe], rules_file: Path
) -> None:
    collect(kvm_router, probes)
    write_rules(rules_file, RULES, counters="[812:90210]")
    collect(kvm_router, probes)
    assert ConfigSnapshot.objects.filter(router=kvm_router, kind="iptables-filter").count() == 1
    write_rules(rules_file, RULES[:1])
    changed = collect(kvm_router, probes)
    snapshots = ConfigSnapshot.objects.filter(router=kvm_router, kind="iptables-filter")
    assert snapshots.count() == 2
    assert snapshots.first().collection_id == changed.pk
    assert "--dport 53" not in snapshots.first().content


def test_it_bounds_the_stored_raw_output(ssh_settings: object, kvm_router: Router, settings: Any) -> None:
    settings.RAW_OUTPUT_MAX_BYTES = 1024
    noisy = Probe("noisy", "head -c 5000 /dev/zero | tr '\\0' x; echo", lambda text: {"length": len(text)})
    collection = collect(kvm_router, [noisy])
    result = ProbeResult.objects.get(collection=collection, name="noisy")
    assert len(result.stdout) == 1024 and result.truncated is True
    assert collection.facts["noisy"] == {"length": 5001}


def test_it_fails_with_a_reason_when_the_router_is_unreachable(
    ssh_settings: object, region: Region, zone: Zone, kvm_host: Host, probes: list[Probe]
) -> None:
    router = make_router(region, zone, kvm_host, "r-30-VM", link_local_ip=SILENT_ADDRESS)
    collection = collect(router, probes)
    assert (collection.status, collection.reason) == (CollectionStatus.FAILED, "router_unreachable")
    assert not HealthSample.objects.filter(router=router).exists()


def test_it_fails_with_no_address_without_opening_a_session(
    ssh_settings: object, region: Region, zone: Zone, kvm_host: Host, probes: list[Probe]
) -> None:
    router = make_router(region, zone, kvm_host, "r-31-VM", link_local_ip=None)
    collection = collect(router, probes)
    assert (collection.status, collection.reason) == (CollectionStatus.FAILED, "no_address")
    assert not AuditEntry.objects.filter(router=router).exists()


def test_it_marks_a_bug_errored_keeps_the_traceback_and_reraises(
    ssh_settings: object, kvm_router: Router, probes: list[Probe]
) -> None:
    class BrokenVerifier:
        def check(self, endpoint: Endpoint, key_type: str, key_base64: str) -> None:
            raise RuntimeError("verifier bug")

    collection = Collection.objects.create(router=kvm_router)
    with pytest.raises(RuntimeError):
        run_collection(collection, probes, verifier=BrokenVerifier(), publish=EventRecorder())
    collection.refresh_from_db()
    assert collection.status == CollectionStatus.ERRORED
    assert "RuntimeError: verifier bug" in collection.traceback


def test_it_writes_one_audit_row_per_session(ssh_settings: object, kvm_router: Router, probes: list[Probe]) -> None:
    collect(kvm_router, probes)
    entries = AuditEntry.objects.filter(router=kvm_router)
    assert list(entries.values_list("action", "outcome")) == [("ssh.session", "ok")]
    assert "via host kvm-host-1" in entries.get().target


def test_it_audits_a_failed_session_with_its_reason(
    ssh_settings: object, region: Region, zone: Zone, kvm_host: Host, probes: list[Probe]
) -> None:
    router = make_router(region, zone, kvm_host, "r-32-VM", link_local_ip=SILENT_ADDRESS)
    collect(router, probes)
    assert AuditEntry.objects.get(router=router, action="ssh.session").outcome == "router_unreachable"


def test_it_fails_with_auth_refused_when_the_router_refuses_the_key(
    ssh_settings: Any, kvm_router: Router, probes: list[Probe], client_keys: Any
) -> None:
    ssh_settings.VR_SSH_KEY_FILE = str(client_keys.stranger)
    collection = collect(kvm_router, probes)
    assert (collection.status, collection.reason) == (CollectionStatus.FAILED, "auth_refused")


def test_it_publishes_progress_for_each_probe_and_a_finished_event(
    ssh_settings: object, kvm_router: Router, probes: list[Probe]
) -> None:
    recorder = EventRecorder()
    collect(kvm_router, probes[:2], publish=recorder)
    kinds = [(message["type"], message.get("probe"), message.get("status")) for _, message in recorder.events]
    assert kinds == [
        ("collection.progress", "system", "running"),
        ("collection.progress", "system", "ok"),
        ("collection.progress", "conntrack", "running"),
        ("collection.progress", "conntrack", "ok"),
        ("collection.finished", None, "succeeded"),
    ]
    assert {group for group, _ in recorder.events} == {router_group(kvm_router.pk)}


async def receive_types(layer: Any, channel: str, count: int) -> list[str]:
    # One event loop for all receives: channels_redis buffers per loop.
    return [(await layer.receive(channel))["type"] for _ in range(count)]


def test_it_delivers_events_to_the_routers_group_on_the_channel_layer(ssh_settings: object, kvm_router: Router) -> None:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(router_group(kvm_router.pk), channel)
    try:
        run_collection(Collection.objects.create(router=kvm_router), [Probe("system", "cat /proc/loadavg", parse_load)])
        received = async_to_sync(receive_types)(layer, channel, 3)
    finally:
        async_to_sync(layer.group_discard)(router_group(kvm_router.pk), channel)
    assert received == ["collection.progress", "collection.progress", "collection.finished"]


def test_it_saves_the_collection_when_the_channel_layer_is_down(ssh_settings: object, kvm_router: Router) -> None:
    unreachable_layer = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}
    }
    with override_settings(CHANNEL_LAYERS=unreachable_layer):
        collection = run_collection(
            Collection.objects.create(router=kvm_router), [Probe("system", "cat /proc/loadavg", parse_load)]
        )
    collection.refresh_from_db()
    assert collection.status == CollectionStatus.SUCCEEDED
    assert "system" in collection.facts


def facts_shaped_like_the_real_probes() -> dict[str, Any]:
    return {
        "conntrack": {"count": 900, "max": 1000, "used_percent": 90.0},
        "cpu": {"total": {"idle": 70.0, "softirq": 12.5, "interval_ticks": 200}},
        "system": {"load1": 0.42, "mem_used_percent": 61.3},
        "disk": {
            "filesystems": [
                {"path": "/", "used_percent": 40, "inodes_used_percent": 10},
                {"path": "/var/log", "used_percent": 97, "inodes_used_percent": 88},
            ]
        },
        "dnsmasq": {"leases": [{"ip": "10.1.1.10"}, {"ip": "10.1.1.11"}]},
        "iptables_nat": {"rules": [{"text": "-A POSTROUTING -o eth2 -j SNAT --to-source 203.0.113.5"}]},
    }


def test_it_takes_health_numbers_from_the_facts_of_the_real_probes() -> None:
    numbers = health_numbers(facts_shaped_like_the_real_probes())
    assert numbers["conntrack_percent"] == 90.0
    assert (numbers["cpu_percent"], numbers["softirq_percent"]) == (30.0, 12.5)
    assert (numbers["memory_percent"], numbers["load1"]) == (61.3, 0.42)
    assert (numbers["disk_root_percent"], numbers["disk_log_percent"]) == (40, 97)
    assert (numbers["inode_root_percent"], numbers["inode_log_percent"]) == (10, 88)
    assert (numbers["dhcp_leases"], numbers["nat_rules"]) == (2, 1)


def test_it_leaves_health_numbers_empty_for_probes_that_failed() -> None:
    numbers = health_numbers({"conntrack": {"count": 5, "max": 10, "used_percent": 50.0}})
    assert numbers["conntrack_count"] == 5
    assert all(numbers[name] is None for name in ("cpu_percent", "memory_percent", "disk_root_percent", "dhcp_leases"))


def test_it_groups_the_config_probes_files_into_snapshot_kinds() -> None:
    config = Probe("config", "true", lambda text: text)
    facts = {
        "files": [
            {"path": "/etc/dnsmasq.conf", "missing": False, "text": "domain-needed"},
            {"path": "/etc/dnsmasq.d/cloud.conf", "missing": False, "text": "dhcp-range=10.1.1.2,static"},
            {"path": "/etc/haproxy/haproxy.cfg", "missing": True, "text": ""},
            {"path": "/etc/keepalived/keepalived.conf", "missing": False, "text": "auth_pass <redacted>"},
        ]
    }
    contents = snapshot_contents([ProbeOutcome(probe=config, command="true", ok=True, facts=facts)])
    assert set(contents) == {"dnsmasq", "keepalived"}
    assert "domain-needed" in contents["dnsmasq"] and "dhcp-range" in contents["dnsmasq"]


def test_it_fails_with_host_key_changed_when_the_routers_key_changed(
    ssh_settings: Any, kvm_router: Router, own_router_sshd: Any
) -> None:
    ssh_settings.VR_SSH_PORT = own_router_sshd.port
    probes = [Probe("system", "cat /proc/loadavg", parse_load)]
    assert collect(kvm_router, probes).status == CollectionStatus.SUCCEEDED
    own_router_sshd.replace_host_key()
    collection = collect(kvm_router, probes)
    assert (collection.status, collection.reason) == (CollectionStatus.FAILED, "host_key_changed")


def _kvm_only(probes: list[Probe]) -> list[Probe]:
    return [replace(p, hypervisors=frozenset({"kvm"})) if p.scope == "host" else p for p in probes]


def test_it_records_kvm_host_probes_as_not_applicable_on_a_xenserver_router(
    ssh_settings: object, kvm_router: Router, probes: list[Probe]
) -> None:
    # XenServer routers are reached through dom0 like KVM ones, but dom0 has no virsh or cloud0.
    kvm_router.hypervisor = "XenServer"
    kvm_router.save()
    recorder = EventRecorder()
    collection = collect(kvm_router, _kvm_only(probes), publish=recorder)
    result = ProbeResult.objects.get(collection=collection, name="host_view")
    assert (result.ok, result.error, result.state) == (False, "", "not-applicable")
    assert result.not_applicable == "does not apply on XenServer: only KVM hosts have what it reads"
    assert collection.status == CollectionStatus.SUCCEEDED
    assert collection.probe_errors == 2  # garbage and missing_file only
    assert "host_view" not in collection.facts
    progress = [m for _, m in recorder.events if m.get("probe") == "host_view" and m["status"] != "running"]
    assert [m["status"] for m in progress] == ["not-applicable"]


def test_it_still_runs_kvm_host_probes_on_a_kvm_router(
    ssh_settings: object, kvm_router: Router, probes: list[Probe]
) -> None:
    collection = collect(kvm_router, _kvm_only(probes))
    assert ProbeResult.objects.get(collection=collection, name="host_view").state == "ok"
