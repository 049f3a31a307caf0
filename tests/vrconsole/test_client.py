"""The CloudStack client's inventory read against the simulator over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devcloud.simulator.server import RunningSimulator, start_simulator
from vrconsole.cloudstack.client import INVENTORY_READS, ApiFailure, CloudStackClient
from vrconsole.cloudstack.regions import RegionConfig


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    running = start_simulator(routers=60, seed=3)
    try:
        yield running
    finally:
        running.stop()


def _client(sim: RunningSimulator, page_size: int) -> CloudStackClient:
    return CloudStackClient(RegionConfig("lab", sim.url, sim.api_key, sim.secret_key, timeout=5), page_size=page_size)


def test_an_inventory_read_pages_through_every_router_once(sim: RunningSimulator) -> None:
    inventory = _client(sim, page_size=7).fetch_inventory()
    ids = [router["id"] for router in inventory.routers]
    assert sorted(ids) == sorted(r.id for r in sim.cloud.fleet.routers)
    assert len(ids) == len(set(ids)), "the project pass must not repeat the account pass"


def test_pages_come_in_dependency_order(sim: RunningSimulator) -> None:
    kinds = [kind for kind, _ in _client(sim, page_size=25).inventory_pages()]
    order = [kind for kind, *_ in INVENTORY_READS]
    assert [kind for n, kind in enumerate(kinds) if n == 0 or kinds[n - 1] != kind] == order
    assert order.index("templates") < order.index("zones") < order.index("networks") < order.index("routers")


def test_a_failure_on_a_later_page_is_raised_to_the_reader(sim: RunningSimulator) -> None:
    sim.fail("error530", command="listRouters")
    pages = _client(sim, page_size=25).inventory_pages()
    read = []
    with pytest.raises(ApiFailure, match="HTTP 530"):
        for kind, _items in pages:
            read.append(kind)
    assert "networks" in read and "routers" not in read
