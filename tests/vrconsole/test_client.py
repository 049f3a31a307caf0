"""The CloudStack client's inventory read against the simulator over real HTTP."""

from __future__ import annotations

import http.server
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from devcloud.simulator.server import RunningSimulator, start_simulator
from vrconsole.cloudstack.client import INVENTORY_READS, RAW_INVENTORY_KINDS, ApiFailure, CloudStackClient, ListedItem
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


@contextmanager
def _odd_api(body: bytes) -> Iterator[CloudStackClient]:
    """A client of an API endpoint that answers every call with `body`, over real HTTP."""
    handler = type("Handler", (_OddJson,), {"BODY": body})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/client/api"
        yield CloudStackClient(RegionConfig("odd", url, "key", "secret", timeout=5))
    finally:
        server.shutdown()
        server.server_close()


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
    with _odd_api(body) as client:
        zones = client.list_all("listZones")
    value = zones[0]["n"]
    if expected == "nan":
        assert math.isnan(value)
    elif expected == "latin":
        assert value == "caf\ufffd"
    elif expected == "big":
        assert value == float(123456789012345678901234567890)
    else:
        assert value == 1


def test_a_raw_read_gives_the_same_items_as_their_text(sim: RunningSimulator) -> None:
    # What a sync reads (hosts, VPCs, networks and routers as text) parses to exactly what a
    # parsed read gives, in the same order; zones and templates come parsed either way.
    parsed = list(_client(sim, page_size=25).inventory_pages())
    raw = list(_client(sim, page_size=25).inventory_pages(raw=True))
    assert [kind for kind, _ in raw] == [kind for kind, _ in parsed]
    for (kind, items), (_, texts) in zip(parsed, raw, strict=True):
        if kind in RAW_INVENTORY_KINDS:
            assert all(isinstance(item, ListedItem) for item in texts)
            assert [item.parsed() for item in texts] == items
            assert [item.id for item in texts] == [item["id"] for item in items]
            assert [item.type for item in texts] == [item.get("type") for item in items]
        else:
            assert texts == items


def test_a_listed_item_reads_its_few_fields_without_being_built(sim: RunningSimulator) -> None:
    client = _client(sim, page_size=25)
    routers = [item for kind, items in client.inventory_pages(raw=True) if kind == "routers" for item in items]
    first = routers[0]
    assert first._item is None  # noqa: SLF001 - nothing built yet
    assert (first.id, first.state, first.addressed) == (
        first.parsed()["id"],
        first.parsed()["state"],
        "linklocalip" in first.parsed() or "nic" in first.parsed(),
    )
    # The same router asked for alone is the same text, so the same fingerprint.
    alone = client.listed_router(first.id)
    assert alone is not None and alone.digest == first.digest and bytes(alone.text) == bytes(first.text)
    # A parsed item listed gives the same fields.
    again = ListedItem.of(first.parsed())
    assert (again.id, again.state, again.type, again.addressed) == (first.id, first.state, first.type, first.addressed)
    assert client.listed_router("no-such-router") is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # Non-objects in a list are dropped, as the parsed read drops them.
        (b'{"listroutersresponse": {"count": 3, "router": [{"id": "r-1", "n": 1}, 1, "x", null]}}', 1),
        # Spaces anywhere, and an empty answer.
        (b' { "listroutersresponse" : { "count" : 1 , "router" : [ { "id" : "r-1" , "n" : 1 } ] } } ', 1),
        (b'{"listroutersresponse": {}}', None),
        # What the splitter refuses (NaN) is parsed whole, leniently.
        (b'{"listroutersresponse": {"count": 1, "router": [{"id": "r-1", "n": NaN}]}}', "nan"),
        # Bytes that are not UTF-8 inside a string: the splitter passes them, the item's parse
        # replaces them as requests' lenient parse would.
        (
            '{"listroutersresponse": {"count": 1, "router": [{"id": "r-1", "n": "caf\u00e9"}]}}'.encode("latin-1"),
            "caf\ufffd",
        ),
    ],
)
def test_odd_answers_read_as_text_give_what_a_parsed_read_gives(body: bytes, expected: object) -> None:
    with _odd_api(body) as client:
        listed = client.listed_routers_of(networkid="n-1")
        plain = client.routers_of(networkid="n-1")
    if expected is None:
        assert listed == plain == []
        return
    assert len(listed) == len(plain) == 1  # the project pass's copy is dropped by id
    item = listed[0].parsed()
    assert item["id"] == listed[0].id == "r-1"
    if expected == "nan":
        assert math.isnan(item["n"]) and math.isnan(plain[0]["n"])
    else:
        assert item == plain[0] and item["n"] == expected


def _nested(depth: int) -> bytes:
    return (
        b'{"listroutersresponse": {"count": 1, "router": [{"id": "r-1", "n": ' + b"[" * depth + b"]" * depth + b"}]}}"
    )


@pytest.mark.parametrize("raw", [False, True])
def test_an_answer_nested_too_deeply_is_a_malformed_answer_not_a_crash(raw: bool) -> None:
    # Parsers refuse nesting beyond a limit with RecursionError, which is no ValueError.
    with _odd_api(_nested(100_000)) as client, pytest.raises(ApiFailure, match="malformed response.*nested"):
        list(client.pages("listRouters", raw=raw))


def test_nesting_orjson_takes_but_the_splitter_refuses_is_parsed_whole() -> None:
    # msgspec stops at a shallower depth than orjson: such an answer is parsed whole, as before,
    # and its item, too deep to be written back as text (and fingerprinted), is refused clearly.
    with _odd_api(_nested(1010)) as client:
        assert len(client.routers_of(networkid="n-1")) == 1
        with pytest.raises(ApiFailure, match="malformed response.*nested"):
            client.listed_routers_of(networkid="n-1")


def test_an_error_answer_read_as_text_is_the_same_failure(sim: RunningSimulator) -> None:
    sim.fail("error530", command="listRouters")
    with pytest.raises(ApiFailure, match="HTTP 530"):
        list(_client(sim, page_size=25).inventory_pages(raw=True))
