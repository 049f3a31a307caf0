"""Bulk inserts and upserts into PostgreSQL (vrconsole.bulk)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from vrconsole import bulk
from vrconsole.models import Region, Router, RouterStateChange

pytestmark = pytest.mark.django_db


def _row(region: Region, uuid: str, **values: object) -> dict[str, object]:
    """A whole router row (bulk writes every column it is given, and the table has no defaults)."""
    row = {f.attname: f.get_default() for f in Router._meta.concrete_fields if f.attname != "id"}
    return row | {"region_id": region.pk, "uuid": uuid} | values


def test_nul_characters_are_taken_out_of_every_string() -> None:
    assert bulk.without_nuls({"k\x00": ["v\x00", 1, None], "n": {"x": "a\x00b"}}) == {
        "k": ["v", 1, None],
        "n": {"x": "ab"},
    }


def test_an_upsert_stores_a_row_whose_api_data_holds_a_nul() -> None:
    region = Region.objects.create(name="r", endpoint="http://127.0.0.1:9/client/api")
    row = _row(region, "u-1", name="r-1-VM", api_data={"name": "r-1\x00-VM"})
    ids = bulk.upsert(Router, [row], unique=("region_id", "uuid"))
    router = Router.objects.get(pk=ids[(region.pk, "u-1")])
    assert router.api_data == {"name": "r-1-VM"}


def test_an_upsert_updates_the_row_with_the_same_key_and_keeps_the_kept_columns() -> None:
    region = Region.objects.create(name="r", endpoint="http://127.0.0.1:9/client/api")
    first = bulk.upsert(Router, [_row(region, "u-1", name="old", state="Running")], ("region_id", "uuid"))
    again = bulk.upsert(
        Router,
        [_row(region, "u-1", name="new", state="Stopped")],
        ("region_id", "uuid"),
        keep=("name",),
    )
    assert first == again
    router = Router.objects.get()
    assert (router.name, router.state) == ("old", "Stopped")


def test_insert_writes_every_row() -> None:
    region = Region.objects.create(name="r", endpoint="http://127.0.0.1:9/client/api")
    ids = bulk.upsert(Router, [_row(region, "u-1", name="r")], ("region_id", "uuid"))
    pk = ids[(region.pk, "u-1")]
    bulk.insert(
        RouterStateChange,
        [
            {"router_id": pk, "kind": "state", "from_state": "", "to_state": f"s{n}", "at": timezone.now()}
            for n in range(3)
        ],
    )
    assert sorted(RouterStateChange.objects.values_list("to_state", flat=True)) == ["s0", "s1", "s2"]
