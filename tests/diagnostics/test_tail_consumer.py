"""Tests of the live tail socket through the real ASGI application, Redis and the channel layer.

Each test signs a user in with a real session cookie and opens `ws/routers/<id>/tail/<log>/`
with Channels' WebsocketCommunicator against vrconsole.asgi.application (origin check and
session auth included). Lines are published exactly as the tail worker publishes them (the
backlog append, then the group message) by `TailFeed`, so what is under test is the consumer:
who may watch, the start from the backlog, the live batches, resuming after a reconnect
without duplicates or gaps, holding back a viewer that does not acknowledge, and telling it
how many lines it skipped. The database is transactional because the consumer reads it from
another thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.test import Client

from diagnostics.models import Collection, CollectionStatus
from diagnostics.tails.store import TailKey, TailStore
from tests.vrconsole.router_factory import make_region, make_router, make_zone
from vrconsole import events
from vrconsole.asgi import application
from vrconsole.events import CLOSE_FORBIDDEN, CLOSE_NOT_FOUND, CLOSE_NOT_SIGNED_IN
from vrconsole.models import AuditEntry, Router
from vrconsole.roles import OPERATOR

pytestmark = pytest.mark.django_db(transaction=True)

# Bounds a wait for a message that should come; never reached when the code works.
WAIT_S = 5


@pytest.fixture(autouse=True)
def tail_settings(settings: Any) -> Any:
    settings.TAIL_BACKFILL_LINES = 5
    settings.TAIL_BACKLOG_LINES = 100
    settings.TAIL_VIEWER_WINDOW_LINES = 20
    settings.TAIL_VIEWER_LINES_PER_SECOND = 100_000
    return settings


@pytest.fixture(autouse=True)
def clean_keys(clean_tail_keys: None) -> None:
    """Router ids restart with every test database: no tail state may survive from an earlier run."""


@pytest.fixture
def router() -> Router:
    router = make_router(make_zone(make_region()), name="r-7-VM")
    Collection.objects.create(
        router=router,
        status=CollectionStatus.SUCCEEDED,
        facts={"logfiles": {"files": [{"path": "/var/log/cloud.log", "rotated": False}]}},
    )
    return router


def user(name: str, operator: bool) -> AbstractBaseUser:
    account = get_user_model().objects.create_user(name, password="socket-password-1")
    if operator:
        account.groups.add(Group.objects.get_or_create(name=OPERATOR)[0])
    return account


def signed_in(account: AbstractBaseUser | None) -> tuple[list[tuple[bytes, bytes]], Client]:
    client = Client()
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if account is not None:
        client.force_login(account)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return headers, client


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return async_to_sync(scenario)()


class TailFeed:
    """Publishes numbered lines of one tail as the tail worker does: backlog first, then the group."""

    def __init__(self, router: Router, log: str = "cloud") -> None:
        self.key = TailKey(router.pk, log)
        self.epoch = ""
        self.seq = 0

    async def begin(self) -> None:
        start = await TailStore().begin(self.key, 0)
        self.epoch, self.seq = start.epoch, start.last_seq

    async def lines(self, *texts: str) -> list[events.TailLine]:
        numbered: list[events.TailLine] = []
        for text in texts:
            self.seq += 1
            numbered.append({"s": self.seq, "t": text, "at": int(time.time() * 1000), "sev": "", "k": "line"})
        await TailStore().append(self.key, numbered)
        message: events.TailLines = {
            "type": "tail.lines",
            "router_id": self.key.router_id,
            "log": self.key.log,
            "epoch": self.epoch,
            "lines": numbered,
        }
        await get_channel_layer().group_send(self.key.group, message)
        return numbered

    async def status(self, status: str, reason: str = "", retry_in: float | None = None) -> None:
        message: events.TailStatus = {
            "type": "tail.status",
            "router_id": self.key.router_id,
            "log": self.key.log,
            "epoch": self.epoch,
            "status": status,
            "reason": reason,
            "retry_in": retry_in,
            "at": time.time(),
        }
        await get_channel_layer().group_send(self.key.group, message)


async def open_tail(headers: list[tuple[bytes, bytes]], router: Router, query: str = "") -> WebsocketCommunicator:
    socket = WebsocketCommunicator(application, f"/ws/routers/{router.pk}/tail/cloud/{query}", headers=headers)
    connected, _ = await socket.connect(timeout=WAIT_S)
    assert connected
    return socket


async def texts_until(socket: WebsocketCommunicator, last_text: str) -> list[dict[str, Any]]:
    """Every message up to the lines batch that ends with `last_text`."""
    messages = []
    while True:
        message = await socket.receive_json_from(timeout=WAIT_S)
        messages.append(message)
        if message["type"] == "tail.lines" and message["lines"][-1]["t"] == last_text:
            return messages


def line_texts(messages: list[dict[str, Any]]) -> list[str]:
    return [line["t"] for message in messages if message["type"] == "tail.lines" for line in message["lines"]]


async def closing_code(socket: WebsocketCommunicator) -> Any:
    closing = await socket.receive_output(timeout=WAIT_S)
    await socket.wait()
    return closing


def test_it_refuses_an_anonymous_visitor_with_4401(router):
    headers, _ = signed_in(None)

    async def scenario() -> Any:
        socket = WebsocketCommunicator(application, f"/ws/routers/{router.pk}/tail/cloud/", headers=headers)
        await socket.connect(timeout=WAIT_S)
        return await closing_code(socket)

    assert run(scenario) == {"type": "websocket.close", "code": CLOSE_NOT_SIGNED_IN}


def test_it_refuses_a_viewer_who_is_not_an_operator_with_4403(router):
    headers, _ = signed_in(user("viewer", operator=False))

    async def scenario() -> Any:
        socket = WebsocketCommunicator(application, f"/ws/routers/{router.pk}/tail/cloud/", headers=headers)
        await socket.connect(timeout=WAIT_S)
        return await closing_code(socket)

    assert run(scenario) == {"type": "websocket.close", "code": CLOSE_FORBIDDEN}


@pytest.mark.parametrize("log", ["dnsmasq", "etc-shadow", "agent"])
def test_it_refuses_a_log_the_router_does_not_have_or_the_allowlist_lacks_with_4404(router, log):
    headers, _ = signed_in(user("oncall", operator=True))

    async def scenario() -> Any:
        socket = WebsocketCommunicator(application, f"/ws/routers/{router.pk}/tail/{log}/", headers=headers)
        await socket.connect(timeout=WAIT_S)
        return await closing_code(socket)

    assert run(scenario) == {"type": "websocket.close", "code": CLOSE_NOT_FOUND}
    assert not AuditEntry.objects.filter(action="tail.opened").exists()


def test_it_refuses_a_socket_from_another_origin(router):
    headers, _ = signed_in(user("oncall", operator=True))
    headers = [(name, b"http://evil.example" if name == b"origin" else value) for name, value in headers]

    async def scenario() -> bool:
        socket = WebsocketCommunicator(application, f"/ws/routers/{router.pk}/tail/cloud/", headers=headers)
        connected, _ = await socket.connect(timeout=WAIT_S)
        return connected

    assert run(scenario) is False


def test_it_asks_for_the_tail_says_no_worker_runs_and_audits_who_opened_it(router):
    headers, _ = signed_in(user("oncall", operator=True))

    async def scenario() -> tuple[dict[str, Any], int, dict[str, str]]:
        socket = await open_tail(headers, router)
        state = await socket.receive_json_from(timeout=WAIT_S)
        key = TailKey(router.pk, "cloud")
        viewers = (await TailStore().viewer_counts([key]))[key]
        wanted = [k.id for k in await TailStore().wanted()]
        await socket.disconnect()
        return state, viewers, {"wanted": ",".join(wanted)}

    state, viewers, wanted = run(scenario)
    assert state["type"] == "tail.state"
    assert (state["status"], state["workers"], state["latest"], state["path"]) == (
        "waiting",
        0,
        0,
        "/var/log/cloud.log",
    )
    assert viewers == 1 and f"{router.pk}:cloud" in wanted["wanted"]
    opened = AuditEntry.objects.get(action="tail.opened")
    assert (opened.username, opened.router_id, opened.detail) == (
        "oncall",
        router.pk,
        "live tail of /var/log/cloud.log",
    )
    closed = AuditEntry.objects.get(action="tail.closed")
    assert "watched for" in closed.detail and closed.username == "oncall"


def test_it_forgets_the_viewer_when_the_socket_closes(router):
    headers, _ = signed_in(user("oncall", operator=True))

    async def scenario() -> int:
        socket = await open_tail(headers, router)
        await socket.receive_json_from(timeout=WAIT_S)
        await socket.disconnect()
        key = TailKey(router.pk, "cloud")
        return (await TailStore().viewer_counts([key]))[key]

    assert run(scenario) == 0


def test_it_starts_a_new_viewer_with_the_last_backfill_lines_then_relays_live_lines(router):
    headers, _ = signed_in(user("oncall", operator=True))
    feed = TailFeed(router)

    async def scenario() -> list[str]:
        await feed.begin()
        await feed.lines(*[f"old {n}" for n in range(1, 9)])
        socket = await open_tail(headers, router)
        messages = await texts_until(socket, "old 8")
        await feed.lines("new 1", "new 2")
        messages += await texts_until(socket, "new 2")
        await socket.disconnect()
        return line_texts(messages)

    assert run(scenario) == ["old 4", "old 5", "old 6", "old 7", "old 8", "new 1", "new 2"]


def test_it_relays_the_tails_status_with_its_reason(router):
    headers, _ = signed_in(user("oncall", operator=True))
    feed = TailFeed(router)

    async def scenario() -> dict[str, Any]:
        await feed.begin()
        socket = await open_tail(headers, router)
        await socket.receive_json_from(timeout=WAIT_S)
        await feed.status("retrying", "router_unreachable: r-7-VM cannot be reached", retry_in=4.0)
        status = await socket.receive_json_from(timeout=WAIT_S)
        await socket.disconnect()
        return status

    status = run(scenario)
    assert (status["type"], status["status"], status["retry_in"]) == ("tail.status", "retrying", 4.0)
    assert status["reason"] == "router_unreachable: r-7-VM cannot be reached"


def test_it_resumes_after_a_reconnect_without_duplicates_or_gaps(router):
    headers, _ = signed_in(user("oncall", operator=True))
    feed = TailFeed(router)

    async def scenario() -> tuple[list[str], dict[str, Any]]:
        await feed.begin()
        socket = await open_tail(headers, router)
        first = await texts_until(socket, "a") if await feed.lines("a") else []
        await feed.lines("b", "c")
        first += await texts_until(socket, "c")
        state = first[0]
        last_seq = max(line["s"] for m in first if m["type"] == "tail.lines" for line in m["lines"])
        await socket.disconnect()
        # Written while the page was away.
        await feed.lines("d", "e")
        again = await open_tail(headers, router, f"?after={last_seq}&epoch={state['epoch'] or feed.epoch}")
        second = await texts_until(again, "e")
        await feed.lines("f")
        second += await texts_until(again, "f")
        await again.disconnect()
        return line_texts(first) + line_texts(second), second[0]

    texts, state = run(scenario)
    assert texts == ["a", "b", "c", "d", "e", "f"]
    assert state["type"] == "tail.state" and state["resumed"] is True


def test_it_holds_back_a_viewer_that_does_not_acknowledge_and_catches_it_up_when_it_does(router):
    headers, _ = signed_in(user("oncall", operator=True))
    feed = TailFeed(router)

    async def scenario() -> tuple[int, dict[str, Any], list[str]]:
        await feed.begin()
        socket = await open_tail(headers, router)
        await socket.receive_json_from(timeout=WAIT_S)
        await feed.lines(*[f"line {n}" for n in range(1, 31)])
        received = []
        held = None
        while held is None:
            message = await socket.receive_json_from(timeout=WAIT_S)
            if message["type"] == "tail.position":
                held = message
            else:
                received.append(message)
        shown = sum(len(m["lines"]) for m in received if m["type"] == "tail.lines")
        last = max(line["s"] for m in received for line in m.get("lines", []))
        await socket.send_json_to({"ack": last})
        rest = await texts_until(socket, "line 30")
        await socket.disconnect()
        return shown, held, line_texts(received) + line_texts(rest)

    shown, held, texts = run(scenario)
    assert shown == 20  # the window: TAIL_VIEWER_WINDOW_LINES unacknowledged at most
    assert held["latest"] == 30
    assert texts == [f"line {n}" for n in range(1, 31)]


def test_it_tells_a_viewer_exactly_how_many_lines_it_skipped_beyond_the_backlog(router, tail_settings):
    tail_settings.TAIL_BACKLOG_LINES = 100
    headers, _ = signed_in(user("oncall", operator=True))
    feed = TailFeed(router)

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        await feed.begin()
        socket = await open_tail(headers, router)
        await socket.receive_json_from(timeout=WAIT_S)
        await feed.lines("first")
        first = await texts_until(socket, "first")
        # The page stops acknowledging (a frozen tab) while a flood far bigger than the backlog passes.
        for batch in range(10):
            await feed.lines(*[f"flood {batch}-{n}" for n in range(50)])
        await asyncio.sleep(0.3)
        await socket.send_json_to({"ack": first[-1]["lines"][-1]["s"]})
        messages = []
        while True:
            message = await socket.receive_json_from(timeout=WAIT_S)
            messages.append(message)
            if message["type"] == "tail.lines" and message["lines"][-1]["t"] == "flood 9-49":
                break
            if message["type"] == "tail.lines":
                await socket.send_json_to({"ack": message["lines"][-1]["s"]})
        await socket.disconnect()
        skipped = next(m for m in messages if m["type"] == "tail.skipped")
        return messages, skipped

    messages, skipped = run(scenario)
    delivered = [line["s"] for m in messages if m["type"] == "tail.lines" for line in m["lines"]]
    # Every number is accounted for: delivered, or inside the one skipped range, none twice.
    assert skipped["count"] == skipped["before"] - skipped["after"] - 1 > 0
    assert "keeps the last 100 lines" in skipped["reason"]
    assert sorted(delivered) == delivered and len(set(delivered)) == len(delivered)
    accounted = set(delivered) | set(range(skipped["after"] + 1, skipped["before"]))
    assert accounted == set(range(2, 502))


def test_it_ignores_garbage_from_the_page(router):
    headers, _ = signed_in(user("oncall", operator=True))
    feed = TailFeed(router)

    async def scenario() -> list[str]:
        await feed.begin()
        socket = await open_tail(headers, router)
        await socket.receive_json_from(timeout=WAIT_S)
        for garbage in ("not json", '{"ack": "1; drop"}', '{"ack": -5}', '{"ack": true}', "[1,2]", "x" * 5000):
            await socket.send_to(text_data=garbage)
        await feed.lines("still here")
        messages = await texts_until(socket, "still here")
        await socket.disconnect()
        return line_texts(messages)

    assert run(scenario) == ["still here"]


def test_it_closes_the_socket_when_the_session_is_logged_out(router, settings):
    settings.LIVE_SESSION_CHECK_SECONDS = 0.2
    headers, client = signed_in(user("oncall", operator=True))

    async def scenario() -> Any:
        socket = await open_tail(headers, router)
        await socket.receive_json_from(timeout=WAIT_S)
        await database_sync_to_async(client.logout)()
        return await closing_code(socket)

    assert run(scenario) == {"type": "websocket.close", "code": CLOSE_NOT_SIGNED_IN}
