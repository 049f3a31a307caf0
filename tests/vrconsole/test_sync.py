"""The inventory sync against the CloudStack simulator over real HTTP, into PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

import orjson
import pytest
from django.core.management import call_command
from django.db import DataError, connection
from django.utils import timezone

from devcloud.simulator.server import RunningSimulator, start_simulator
from vrconsole.cloudstack.client import ListedItem
from vrconsole.cloudstack.regions import RegionConfig
from vrconsole.models import Host, Network, Region, Router, RouterNic, RouterStateChange, SyncRun, SyncStatus, Vpc, Zone
from vrconsole.sync import RegionBusy, _RegionApply, _RouterWriter, sync_region, sync_router

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    running = start_simulator(routers=100, seed=7)
    try:
        yield running
    finally:
        running.stop()


def _region(sim: RunningSimulator, timeout: int = 5, secret: str | None = None) -> RegionConfig:
    return RegionConfig("lab", sim.url, sim.api_key, secret or sim.secret_key, timeout=timeout)


def _api_routers(sim: RunningSimulator) -> list[dict]:
    """What a root admin's listRouters shows of every router, health checks included."""
    return [
        r.view(admin=True, with_checks=True, legacy_master=False, report_failed_checks=False)
        for r in sim.cloud.fleet.routers
    ]


def _running_single(routers: Iterable[dict]) -> list[dict]:
    """The Running routers that are not one of a redundant pair: a state flip there is one change."""
    return [r for r in routers if r["state"] == "Running" and not r.get("isredundantrouter")]


def test_first_sync_mirrors_every_router_of_every_account_and_project(sim: RunningSimulator) -> None:
    result = sync_region(_region(sim))
    assert result.status == SyncStatus.OK, result.error
    api = _api_routers(sim)
    assert result.routers == len(api) == result.created
    assert set(Router.objects.values_list("uuid", flat=True)) == {r["id"] for r in api}
    assert any(r.get("projectid") for r in api), "the fleet should hold project routers"
    assert Router.objects.exclude(project="").exists()
    assert Router.objects.values("account").distinct().count() > 2


def test_it_mirrors_hosts_zones_networks_vpcs_and_nics(sim: RunningSimulator) -> None:
    sync_region(_region(sim))
    assert Zone.objects.count() == len(sim.cloud.fleet.zones)
    assert Host.objects.count() >= 1 and Host.objects.exclude(ipaddress=None).exists()
    assert Network.objects.exists() and Vpc.objects.exists()
    router = Router.objects.filter(router_type="vpc").first()
    assert router is not None and router.vpc is not None
    api = next(r for r in _api_routers(sim) if r["id"] == router.uuid)
    nics = list(router.nics.order_by("position"))
    assert [n.traffic_type for n in nics] == [n["traffictype"] for n in api["nic"]]
    assert [n.mtu for n in nics] == [n.get("mtu") for n in api["nic"]]
    kvm = Router.objects.filter(hypervisor="KVM", state="Running").select_related("host").first()
    assert kvm is not None and kvm.host is not None and kvm.host.ipaddress
    assert kvm.link_local_ip.startswith("169.254.")


def test_health_check_failures_are_computed_from_results(sim: RunningSimulator) -> None:
    sync_region(_region(sim))
    failing = [r for r in _api_routers(sim) if any(c.get("success") is False for c in r.get("healthcheckresults", []))]
    assert failing, "the fleet should hold routers with failed checks"
    flagged = set(Router.objects.filter(health_checks_failed=True).values_list("uuid", flat=True))
    assert flagged == {r["id"] for r in failing}


def test_resync_without_changes_writes_nothing(sim: RunningSimulator) -> None:
    sync_region(_region(sim))
    result = sync_region(_region(sim))
    assert (result.created, result.updated, result.removed, result.state_changes) == (0, 0, 0, 0)


def test_resync_records_state_flips_removals_and_new_routers(sim: RunningSimulator) -> None:
    sync_region(_region(sim))
    running = _running_single(_api_routers(sim))[0]
    gone = next(r for r in _api_routers(sim) if r["id"] != running["id"])
    sim.set_router(running["id"], state="Error")
    sim.remove_router(gone["id"])
    added = sim.add_router()

    result = sync_region(_region(sim))

    assert (result.created, result.removed, result.state_changes) == (1, 1, 1)
    flipped = Router.objects.get(uuid=running["id"])
    assert flipped.state == "Error"
    change = flipped.state_changes.get(kind=RouterStateChange.Kind.STATE)
    assert (change.from_state, change.to_state) == ("Running", "Error")
    assert flipped.state_since == change.at
    removed = Router.objects.get(uuid=gone["id"])
    assert removed.removed_at is not None
    assert removed.state_changes.filter(kind="presence", to_state="removed").exists()
    assert Router.objects.present().filter(uuid=added["id"]).exists()
    assert result.routers == Router.objects.present().count()


def test_redundant_state_changes_are_history_too(sim: RunningSimulator) -> None:
    sync_region(_region(sim))
    primary = next(r for r in _api_routers(sim) if r.get("redundantstate") == "PRIMARY")
    sim.set_router(primary["id"], redundantstate="BACKUP")
    result = sync_region(_region(sim))
    assert result.state_changes == 1
    change = Router.objects.get(uuid=primary["id"]).state_changes.get(kind=RouterStateChange.Kind.REDUNDANT)
    assert (change.from_state, change.to_state) == ("PRIMARY", "BACKUP")


def test_master_from_an_old_cloudstack_is_stored_as_primary() -> None:
    old = start_simulator(routers=30, seed=3, version="4.15.2.0")
    try:
        assert any(r.data.get("redundantstate") == "PRIMARY" for r in old.cloud.fleet.routers)
        result = sync_region(_region(old))
    finally:
        old.stop()
    assert result.status == SyncStatus.OK
    assert Router.objects.filter(redundant_state="PRIMARY").exists()
    assert not Router.objects.filter(redundant_state="MASTER").exists()


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("unauthorized", "authentication refused (HTTP 401)"),
        ("param_error", "rejected a parameter (HTTP 431)"),
        ("error530", "internal error (HTTP 530)"),
        ("bad_gateway", "HTTP 502"),
        ("unavailable", "HTTP 503"),
        ("malformed", "malformed response"),
        ("hang", "timed out after 1 s"),
    ],
)
def test_an_api_failure_keeps_the_inventory_and_marks_the_region_failed(
    sim: RunningSimulator, fault: str, reason: str
) -> None:
    sync_region(_region(sim))
    before = set(Router.objects.present().values_list("uuid", "state"))
    nics_before = RouterNic.objects.count()
    sim.set_router(_api_routers(sim)[0]["id"], state="Stopped")
    sim.fail(fault, command="listRouters", seconds=3)

    result = sync_region(_region(sim, timeout=1))

    assert result.status == SyncStatus.FAILED
    assert reason in result.error
    assert set(Router.objects.present().values_list("uuid", "state")) == before
    assert RouterNic.objects.count() == nics_before
    region = Region.objects.get(name="lab")
    assert region.last_sync_status == SyncStatus.FAILED and reason in region.last_sync_error
    assert region.last_success is not None
    assert SyncRun.objects.filter(status=SyncStatus.FAILED).count() == 1
    assert sim.api_key not in result.error and sim.secret_key not in result.error


def test_a_wrong_secret_is_a_401_with_a_readable_reason(sim: RunningSimulator) -> None:
    result = sync_region(_region(sim, secret="not-the-secret"))
    assert result.status == SyncStatus.FAILED
    assert "check the API key and secret key" in result.error
    assert "not-the-secret" not in result.error


def test_an_unreachable_endpoint_fails_cleanly() -> None:
    result = sync_region(RegionConfig("gone", "http://127.0.0.1:9/client/api", "k", "s", timeout=2))
    assert result.status == SyncStatus.FAILED
    assert "cannot connect to http://127.0.0.1:9/client/api" in result.error


def test_an_empty_answer_does_not_wipe_a_known_fleet(sim: RunningSimulator) -> None:
    sync_region(_region(sim))
    for router in list(_api_routers(sim)):
        sim.remove_router(router["id"])
    result = sync_region(_region(sim))
    assert result.status == SyncStatus.FAILED
    assert "--allow-mass-removal" in result.error
    assert Router.objects.present().count() == result.routers > 0


def test_mass_removal_can_be_forced(sim: RunningSimulator) -> None:
    sync_region(_region(sim))
    known = Router.objects.count()
    for router in list(_api_routers(sim)):
        sim.remove_router(router["id"])
    result = sync_region(_region(sim), allow_mass_removal=True)
    assert result.status == SyncStatus.OK
    assert result.removed == known
    assert Router.objects.present().count() == 0
    assert Router.objects.count() == known


def test_a_removed_router_that_returns_is_listed_again(sim: RunningSimulator) -> None:
    sync_region(_region(sim))
    router = _api_routers(sim)[3]
    sim.remove_router(router["id"])
    sync_region(_region(sim))
    sim.add_router(dict(router))
    sync_region(_region(sim))
    row = Router.objects.get(uuid=router["id"])
    assert row.removed_at is None
    assert list(row.state_changes.filter(kind="presence").values_list("to_state", flat=True)) == [
        "listed",
        "removed",
        "listed",
    ]


def test_sync_command_prints_one_json_object_last(sim: RunningSimulator, settings, capsys) -> None:
    settings.CLOUDSTACK_CONFIG = None
    settings.CLOUDSTACK_URL = sim.url
    settings.CLOUDSTACK_API_KEY = sim.api_key
    settings.CLOUDSTACK_SECRET_KEY = sim.secret_key
    settings.CLOUDSTACK_REGION = "lab"
    call_command("sync_routers", "--region", "lab", "--json")
    last = capsys.readouterr().out.strip().splitlines()[-1]
    data = json.loads(last)
    assert data["region"] == "lab"
    assert data["routers"] == len(_api_routers(sim)) == data["created"]
    for key in ("updated", "removed", "state_changes", "duration_s"):
        assert key in data


def test_sync_command_exits_non_zero_when_the_sync_fails(sim: RunningSimulator, settings) -> None:
    settings.CLOUDSTACK_CONFIG = None
    settings.CLOUDSTACK_URL = sim.url
    settings.CLOUDSTACK_API_KEY = sim.api_key
    settings.CLOUDSTACK_SECRET_KEY = sim.secret_key
    settings.CLOUDSTACK_REGION = "lab"
    sim.fail("error530")
    with pytest.raises(SystemExit) as exit_info:
        call_command("sync_routers", "--json")
    assert exit_info.value.code == 1


def test_odd_api_data_costs_a_field_not_the_sync(sim: RunningSimulator) -> None:
    sim.add_router(
        name="r-9999-VM\x00<script>",
        linklocalip="not-an-ip",
        created="yesterday",
        nic=[{"traffictype": "Guest", "ipaddress": "10.9.9.9", "mtu": "big", "macaddress": ["not", "text"]}],
        healthcheckresults="none",
        version=None,
    )
    result = sync_region(_region(sim))
    assert result.status == SyncStatus.OK, result.error
    odd = Router.objects.get(name="r-9999-VM<script>")
    assert odd.link_local_ip is None and odd.created_in_cloudstack is None
    assert list(odd.nics.values_list("ip_address", "mtu")) == [("10.9.9.9", None)]


def test_zones_carry_their_system_vm_templates(sim: RunningSimulator) -> None:
    sync_region(_region(sim))
    zone = Zone.objects.exclude(system_templates=[]).first()
    assert zone is not None
    template = zone.system_template_for("KVM")
    assert template is not None and template["isready"] is True and template["name"].startswith("systemvm-")


def _configure(settings, sim: RunningSimulator) -> None:
    settings.CLOUDSTACK_CONFIG = None
    settings.CLOUDSTACK_URL = sim.url
    settings.CLOUDSTACK_API_KEY = sim.api_key
    settings.CLOUDSTACK_SECRET_KEY = sim.secret_key
    settings.CLOUDSTACK_REGION = "lab"


def test_sync_router_refreshes_just_that_router(sim: RunningSimulator, settings) -> None:
    _configure(settings, sim)
    sync_region(_region(sim))
    target, other = _running_single(_api_routers(sim))[:2]
    sim.set_router(target["id"], state="Error")
    sim.set_router(other["id"], state="Error")

    row = sync_router(Router.objects.get(uuid=target["id"]))

    assert row is not None and row.state == "Error"
    assert row.state_changes.filter(kind="state", from_state="Running", to_state="Error").exists()
    assert Router.objects.get(uuid=other["id"]).state == "Running"
    assert row.nics.count() == len(target["nic"])


def test_sync_router_gives_up_on_a_region_whose_sync_holds_the_lock(sim: RunningSimulator, settings) -> None:
    """Triage does not stand behind a long region sync: it goes on with the stored row, which is unchanged."""
    import psycopg
    from django.db import connection

    _configure(settings, sim)
    sync_region(_region(sim))
    target = next(r for r in _api_routers(sim) if r["state"] == "Running")
    sim.set_router(target["id"], state="Error")
    region = Region.objects.get(name="lab")
    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}) as holder:
        holder.execute("SELECT 1 FROM vrconsole_region WHERE id = %s FOR UPDATE", [region.pk])
        with pytest.raises(RegionBusy, match="being synced"):
            sync_router(Router.objects.get(uuid=target["id"]))
        holder.rollback()
    assert Router.objects.get(uuid=target["id"]).state == "Running"
    refreshed = sync_router(Router.objects.get(uuid=target["id"]))
    assert refreshed is not None and refreshed.state == "Error"


def test_sync_router_marks_a_vanished_router_removed(sim: RunningSimulator, settings) -> None:
    _configure(settings, sim)
    sync_region(_region(sim))
    target = _api_routers(sim)[5]
    sim.remove_router(target["id"])
    assert sync_router(Router.objects.get(uuid=target["id"])) is None
    assert Router.objects.get(uuid=target["id"]).removed_at is not None


def test_api_calls_are_posted_so_keys_stay_out_of_access_logs(sim: RunningSimulator) -> None:
    sync_region(_region(sim))
    requests_seen = sim.stats()["requests"]
    assert requests_seen.get("http-POST", 0) >= 6
    assert requests_seen.get("http-GET", 0) == 0


def test_changed_routers_written_during_the_read_come_out_as_in_one_write(
    sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every few routers are written while the pages are still being read (WRITE_AHEAD_ROWS);
    # the rows, NICs and history are the same as a single write at the end would give.
    monkeypatch.setattr("vrconsole.sync.WRITE_AHEAD_ROWS", 7)
    first = sync_region(_region(sim))
    assert first.status == SyncStatus.OK, first.error
    api = {r["id"]: r for r in _api_routers(sim)}
    assert first.created == len(api) == Router.objects.count()
    assert RouterNic.objects.count() == sum(len(r.get("nic", [])) for r in api.values())
    assert RouterStateChange.objects.filter(kind="presence", to_state="listed").count() == len(api)
    flipped = [r["id"] for r in _running_single(api.values())][:12]
    for uuid in flipped:
        sim.set_router(uuid, state="Stopped")

    again = sync_region(_region(sim))

    assert (again.updated, again.state_changes) == (len(flipped), len(flipped))
    assert set(Router.objects.filter(state="Stopped", uuid__in=flipped).values_list("uuid", flat=True)) == set(flipped)
    assert RouterStateChange.objects.filter(kind="state", to_state="Stopped").count() == len(flipped)
    assert RouterNic.objects.count() == sum(len(r.get("nic", [])) for r in _api_routers(sim))


def test_a_resync_builds_only_the_items_that_changed(sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    # Unchanged items are known by the fingerprint of their text and never parsed: a re-sync of
    # a fleet where one router changed builds that one router's item, nothing else.
    sync_region(_region(sim))
    built: list[str] = []
    parse = ListedItem.parsed

    def counted(item: ListedItem) -> dict:
        value = parse(item)
        built.append(value.get("id"))
        return value

    monkeypatch.setattr(ListedItem, "parsed", counted)
    running = _running_single(_api_routers(sim))[0]
    sim.set_router(running["id"], state="Stopped")

    result = sync_region(_region(sim))

    assert (result.updated, result.state_changes) == (1, 1)
    assert set(built) == {running["id"]}


def test_a_shared_network_router_keeps_its_type_when_only_the_router_changes(sim: RunningSimulator) -> None:
    # The type of an unchanged network (never parsed on a re-sync) comes from its row.
    router = next(
        r for r in sim.cloud.fleet.routers if r.synthetic and not r.data.get("vpcid") and r.data.get("guestnetworkid")
    )
    sim.cloud.set_network(router.data["guestnetworkid"], type="Shared")
    sync_region(_region(sim))
    assert Router.objects.get(uuid=router.id).router_type == "shared"
    sim.set_router(router.id, state="Error" if router.data["state"] != "Error" else "Running")

    result = sync_region(_region(sim))

    assert result.updated == 1
    assert Router.objects.get(uuid=router.id).router_type == "shared"


@pytest.mark.parametrize(
    ("routers", "warned"),
    [
        # A root admin's listRouters carries link-local IPs and NICs; another key's does not.
        ([{"state": "Running"}, {"state": "Running"}], True),
        ([{"state": "Stopped"}, {"state": "Running", "linklocalip": "169.254.3.4"}], False),
        ([{"state": "Running"}, {"state": "Running", "nic": []}], False),
        ([{"state": "Stopped"}], False),
    ],
)
def test_a_key_that_sees_no_router_addresses_is_warned_about(routers: list[dict], warned: bool) -> None:
    region = Region.objects.create(name="lab", endpoint="http://127.0.0.1:9/client/api")
    apply = _RegionApply(region, timezone.now())
    for kind in ("templates", "zones", "hosts", "vpcs", "networks"):
        apply.add(kind, [])
    # As a raw read gives them: text, read without being built.
    apply.add(
        "routers", [ListedItem(orjson.dumps({"id": f"r-{n}", "name": f"r-{n}", **r})) for n, r in enumerate(routers)]
    )
    result = apply.finish(allow_mass_removal=False)
    assert result.routers == len(routers)
    assert ("root-admin key" in result.warnings) is warned


def test_a_new_fingerprint_of_unchanged_content_keeps_the_api_changed_time(sim: RunningSimulator) -> None:
    # Fingerprints from before (another definition, or the API writing the same item another
    # way) differ from today's: the rows are rewritten once, their "API data changed" stays.
    sync_region(_region(sim))
    before = dict(Router.objects.values_list("uuid", "api_changed_at"))
    Router.objects.update(api_digest="0" * 32)
    running = _running_single(_api_routers(sim))[0]
    sim.set_router(running["id"], state="Stopped")

    result = sync_region(_region(sim))

    assert result.updated == len(before) and result.state_changes == 1
    after = dict(Router.objects.values_list("uuid", "api_changed_at"))
    assert {uuid for uuid in before if after[uuid] != before[uuid]} == {running["id"]}
    assert sync_region(_region(sim)).updated == 0


@pytest.mark.parametrize("first_sync", [True, False])
def test_a_failed_write_midway_rolls_the_whole_sync_back(
    sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch, first_sync: bool
) -> None:
    # Changed routers are written while the pages are read: the database's error on the
    # second batch (before its rows go in) is the one raised, and nothing of the sync is committed.
    monkeypatch.setattr("vrconsole.sync.WRITE_AHEAD_ROWS", 7)
    if not first_sync:
        sync_region(_region(sim))
        for router in _running_single(_api_routers(sim))[:20]:
            sim.set_router(router["id"], state="Stopped")
    before = sorted(Router.objects.values_list("uuid", "state", "api_digest"))
    write = _RouterWriter.write_changed
    calls = []

    def failing(self: _RouterWriter) -> None:
        if self.changed:
            calls.append(1)
            if len(calls) == 2:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT 1 / 0")
        write(self)

    monkeypatch.setattr(_RouterWriter, "write_changed", failing)

    with pytest.raises(DataError, match="division by zero"):
        sync_region(_region(sim))

    assert sorted(Router.objects.values_list("uuid", "state", "api_digest")) == before
    assert Region.objects.get(name="lab").last_sync_status == SyncStatus.FAILED
