"""A router's API item and health checks kept as JSON text (vrconsole.fields), and the row's storage."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from vrconsole import bulk
from vrconsole.fields import dumps, loads
from vrconsole.models import Region, Router

pytestmark = pytest.mark.django_db


@pytest.fixture
def region() -> Region:
    return Region.objects.create(name="r", endpoint="http://127.0.0.1:9/client/api")


def _row(region: Region, uuid: str, **values: object) -> dict[str, object]:
    row = {f.attname: f.get_default() for f in Router._meta.concrete_fields if f.attname != "id"}
    return row | {"region_id": region.pk, "uuid": uuid, "first_seen": timezone.now()} | values


def test_a_saved_router_reads_back_its_api_item_and_checks_as_they_were(region: Region) -> None:
    item = {"id": "u-1", "nic": [{"ipaddress": "10.1.1.1", "isdefault": True}], "count": 2**40, "note": "é ✓"}
    checks = [{"checkname": "dhcp.service", "success": False, "details": "service down at last check 1764000000"}]
    Router.objects.create(region=region, uuid="u-1", name="r-1-VM", api_data=item, health_checks=checks)
    router = Router.objects.get(uuid="u-1")
    assert router.api_data == item
    assert router.health_checks == checks
    assert router.failed_health_checks == checks


def test_the_column_holds_the_json_text(region: Region) -> None:
    Router.objects.create(region=region, uuid="u-1", name="r-1-VM", api_data={"state": "Running"})
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_data, health_checks FROM vrconsole_router")
        assert cursor.fetchone() == ('{"state":"Running"}', "[]")


def test_values_orjson_refuses_go_through_json_and_come_back(region: Region) -> None:
    huge = 2**70 + 1
    assert dumps({"n": huge}) == '{"n": 1180591620717411303425}'  # stored exactly
    Router.objects.create(region=region, uuid="u-1", name="r-1-VM", api_data={"n": huge})
    Router.objects.create(region=region, uuid="u-2", name="r-2-VM", api_data={"s": "lone \ud800"})
    # Read back, the huge integer is the nearest float (orjson) and the lone surrogate is kept (json).
    assert Router.objects.get(uuid="u-1").api_data == {"n": float(huge)}
    assert Router.objects.get(uuid="u-2").api_data == {"s": "lone \ud800"}
    assert loads('{"n": NaN}')["n"] != loads('{"n": NaN}')["n"]  # NaN, through json


def test_nul_characters_are_taken_out_of_the_text(region: Region) -> None:
    assert dumps({"a\x00": "b\x00c"}) == '{"a":"bc"}'
    Router.objects.create(region=region, uuid="u-1", name="r-1-VM", api_data={"name": "r-1\x00-VM"})
    assert Router.objects.get(uuid="u-1").api_data == {"name": "r-1-VM"}


def test_text_that_is_not_json_is_shown_as_it_is_not_a_crash(region: Region) -> None:
    Router.objects.create(region=region, uuid="u-1", name="r-1-VM")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE vrconsole_router SET api_data = 'not json {'")
    assert Router.objects.get(uuid="u-1").api_data == "not json {"


def test_bulk_insert_and_upsert_write_the_items_as_text(region: Region) -> None:
    item = {"id": "u-1", "healthcheckresults": [{"checkname": "a", "success": True}]}
    bulk.insert(Router, [_row(region, "u-1", name="r-1-VM", api_data=item, health_checks=[{"checkname": "a"}])])
    assert Router.objects.get(uuid="u-1").api_data == item
    changed = {**item, "state": "Stopped"}
    bulk.upsert(Router, [_row(region, "u-1", name="r-1-VM", api_data=changed)], unique=("region_id", "uuid"))
    router = Router.objects.get(uuid="u-1")
    assert router.api_data == changed
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_data FROM vrconsole_router")
        # The exact text orjson wrote, not jsonb's re-rendering of it.
        assert cursor.fetchone() == (dumps(changed),)


def test_a_routers_short_columns_stay_in_the_row() -> None:
    # toast_tuple_target = 128 (migration 0006) would otherwise push the uuid and the digest out
    # of line, one TOAST lookup per row read by a search or a sync (migration 0008).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname, attstorage FROM pg_attribute WHERE attrelid = 'vrconsole_router'::regclass "
            "AND attname IN ('uuid', 'name', 'api_digest', 'account', 'api_data')"
        )
        storage = dict(cursor.fetchall())
    assert storage == {"uuid": "p", "name": "p", "api_digest": "p", "account": "p", "api_data": "x"}


def test_connections_run_without_jit() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone() == ("off",)
