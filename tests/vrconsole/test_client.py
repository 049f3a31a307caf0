"""The CloudStack client's inventory read against the simulator over real HTTP."""

from __future__ import annotations

import http.server
import math
import threading
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


class _OddJson(http.server.BaseHTTPRequestHandler):
    """An API endpoint answering every call with one odd but parseable body (the class's BODY)."""

    BODY = b""

    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(self.BODY)))
        self.end_headers()
        self.wfile.write(self.BODY)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # orjson refuses NaN and bytes that are not UTF-8; requests' parsing takes them (the second
        # with the replacement character, as it decodes the declared UTF-8).
        (b'{"listzonesresponse": {"count": 1, "zone": [{"id": "z-1", "n": NaN}]}}', "nan"),
        ('{"listzonesresponse": {"count": 1, "zone": [{"id": "z-1", "n": "caf\u00e9"}]}}'.encode("latin-1"), "latin"),
        # orjson reads an integer beyond 64 bits as the nearest float (the one difference left).
        (b'{"listzonesresponse": {"count": 1, "zone": [{"id": "z-1", "n": 123456789012345678901234567890}]}}', "big"),
        (b'{"listzonesresponse": {"count": 1, "zone": [{"id": "z-1", "n": 1}]}}', "plain"),
    ],
)
def test_answers_orjson_refuses_are_parsed_as_requests_would(body: bytes, expected: str) -> None:
    handler = type("Handler", (_OddJson,), {"BODY": body})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/client/api"
        zones = CloudStackClient(RegionConfig("odd", url, "key", "secret", timeout=5)).list_all("listZones")
    finally:
        server.shutdown()
        server.server_close()
    value = zones[0]["n"]
    if expected == "nan":
        assert math.isnan(value)
    elif expected == "latin":
        assert value == "caf\ufffd"
    elif expected == "big":
        assert value == float(123456789012345678901234567890)
    else:
        assert value == 1
