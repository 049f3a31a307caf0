"""The `any` lookup: one array parameter for a list of any length, on real PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from vrconsole.models import Region, Router, RouterNic

pytestmark = pytest.mark.django_db


def test_it_matches_a_list_longer_than_postgresqls_parameter_limit() -> None:
    region = Region.objects.create(name="r")
    wanted = [Router.objects.create(region=region, uuid=f"u-{n}", name=f"r-{n}-VM").pk for n in range(3)]
    values = list(range(-70_000, 0)) + wanted
    with CaptureQueriesContext(connection) as queries:
        found = sorted(Router.objects.filter(pk__any=values).values_list("pk", flat=True))
    assert found == sorted(wanted)
    assert "= ANY(" in queries[0]["sql"]


def test_it_works_through_a_foreign_key_and_on_text_columns() -> None:
    region = Region.objects.create(name="r")
    router = Router.objects.create(region=region, uuid="u-1", name="r-1-VM")
    RouterNic.objects.create(router=router, uuid="nic-1")
    assert RouterNic.objects.filter(router_id__any=[router.pk, 10**12]).count() == 1
    assert list(Router.objects.filter(uuid__any=["u-1", "nope"]).values_list("name", flat=True)) == ["r-1-VM"]


def test_an_empty_list_matches_nothing() -> None:
    Region.objects.create(name="r")
    assert not Region.objects.filter(pk__any=[]).exists()
