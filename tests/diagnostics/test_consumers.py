"""Tests of the router and fleet sockets through the real ASGI application and the Redis channel layer.

Each test signs a user in with a real session cookie, opens the socket with Channels'
WebsocketCommunicator against vrconsole.asgi.application (origin check and session auth
included), and publishes events with group_send exactly as the workers do. The database is
transactional because the consumer reads it from another thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client
from django.utils import timezone

from diagnostics.models import Collection, CollectionStatus, Finding, ProbeResult, RouterHealth, RouterStatus
from tests.vrconsole.router_factory import make_region, make_router, make_zone
from vrconsole.asgi import application
from vrconsole.events import CLOSE_NOT_FOUND, CLOSE_NOT_SIGNED_IN, FLEET_GROUP
from vrconsole.events import router_group as group_name
from vrconsole.models import Router

pytestmark = pytest.mark.django_db(transaction=True)

# Bounds a wait for a message that should come; never reached when the code works.
WAIT_S = 5


@pytest.fixture
def router() -> Router:
    return make_router(make_zone(make_region()), name="r-7-VM")


@pytest.fixture
def viewer() -> AbstractBaseUser:
    return get_user_model().objects.create_user("viewer", password="viewer-password-1")


def session_cookie(user: AbstractBaseUser | None) -> list[tuple[bytes, bytes]]:
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if user is not None:
        client = Client()
        client.force_login(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return headers


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    """Run an async scenario from a plain test; sync ORM calls inside it run on this thread."""
    return async_to_sync(scenario)()


def publish(group: str, event: dict[str, Any]) -> Callable[[], Awaitable[None]]:
    async def send() -> None:
        await get_channel_layer().group_send(group, event)

    return send


def test_it_refuses_an_anonymous_visitor_with_4401(router):
    headers = session_cookie(None)

    async def scenario() -> Any:
        socket = WebsocketCommunicator(application, f"/ws/routers/{router.pk}/", headers=headers)
        connected, _ = await socket.connect(timeout=WAIT_S)
        closing = await socket.receive_output(timeout=WAIT_S)
        await socket.wait()
        return connected, closing

    connected, closing = run(scenario)
    assert connected
    assert closing == {"type": "websocket.close", "code": CLOSE_NOT_SIGNED_IN}


def test_it_refuses_an_unknown_router_with_4404(viewer):
    headers = session_cookie(viewer)

    async def scenario() -> Any:
        socket = WebsocketCommunicator(application, "/ws/routers/999999/", headers=headers)
        await socket.connect(timeout=WAIT_S)
        closing = await socket.receive_output(timeout=WAIT_S)
        await socket.wait()
        return closing

    assert run(scenario) == {"type": "websocket.close", "code": CLOSE_NOT_FOUND}


def test_it_sends_an_empty_state_when_the_router_was_never_collected(router, viewer):
    headers = session_cookie(viewer)

    async def scenario() -> Any:
        socket = WebsocketCommunicator(application, f"/ws/routers/{router.pk}/", headers=headers)
        await socket.connect(timeout=WAIT_S)
        state = await socket.receive_json_from(timeout=WAIT_S)
        await socket.disconnect()
        return state

    assert run(scenario) == {
        "type": "state",
        "router_id": router.pk,
        "status": "unknown",
        "findings": [],
        "collection": None,
        "probes": [],
    }


def test_it_sends_the_routers_status_and_open_findings_worst_first_on_connect(router, viewer):
    headers = session_cookie(viewer)
    RouterHealth.objects.create(router=router, status=RouterStatus.CRITICAL)
    Finding.objects.create(router=router, rule="var-log-nearly-full", category="disk", severity="warning", title="97%")
    Finding.objects.create(
        router=router, rule="dnsmasq-not-running", category="dhcp", severity="critical", title="gone"
    )
    Finding.objects.create(
        router=router, rule="old-one", category="disk", severity="critical", title="x", resolved_at=timezone.now()
    )

    async def scenario() -> Any:
        socket = WebsocketCommunicator(application, f"/ws/routers/{router.pk}/", headers=headers)
        await socket.connect(timeout=WAIT_S)
        state = await socket.receive_json_from(timeout=WAIT_S)
        await socket.disconnect()
        return state

    state = run(scenario)
    assert state["status"] == "critical"
    assert [(f["rule"], f["severity"]) for f in state["findings"]] == [
        ("dnsmasq-not-running", "critical"),
        ("var-log-nearly-full", "warning"),
    ]


def test_it_sends_the_latest_collection_and_its_probes_on_connect(router, viewer):
    headers = session_cookie(viewer)
    Collection.objects.create(router=router, status=CollectionStatus.SUCCEEDED)
    latest = Collection.objects.create(router=router, status=CollectionStatus.RUNNING, requested_by=viewer)
    ProbeResult.objects.create(
        collection=latest, name="system", ok=True, duration_s=0.12, stdout="secret-ish raw output"
    )
    ProbeResult.objects.create(collection=latest, name="dnsmasq", ok=False, error="exit status 1", duration_s=0.3)

    async def scenario() -> Any:
        socket = WebsocketCommunicator(application, f"/ws/routers/{router.pk}/", headers=headers)
        await socket.connect(timeout=WAIT_S)
        state = await socket.receive_json_from(timeout=WAIT_S)
        await socket.disconnect()
        return state

    state = run(scenario)
    assert state["collection"]["collection_id"] == latest.pk
    assert state["collection"]["status"] == "running"
    assert state["collection"]["requested_by"] == "viewer"
    assert state["probes"] == [
        {"probe": "system", "status": "ok", "duration_s": 0.12, "error": ""},
        {"probe": "dnsmasq", "status": "error", "duration_s": 0.3, "error": "exit status 1"},
    ]


def test_it_relays_progress_and_finished_events_of_its_router(router, viewer):
    headers = session_cookie(viewer)
    progress = {
        "type": "collection.progress",
        "collection_id": 41,
        "router_id": router.pk,
        "probe": "conntrack",
        "status": "ok",
        "duration_s": 0.05,
        "error": "",
    }
    finished = {
        "type": "collection.finished",
        "collection_id": 41,
        "router_id": router.pk,
        "status": "succeeded",
        "reason": "",
        "error": "",
        "duration_s": 3.2,
        "probe_errors": 0,
    }

    async def scenario() -> Any:
        socket = WebsocketCommunicator(application, f"/ws/routers/{router.pk}/", headers=headers)
        await socket.connect(timeout=WAIT_S)
        await socket.receive_json_from(timeout=WAIT_S)
        await publish(group_name(router.pk), progress)()
        await publish(group_name(router.pk), finished)()
        relayed = [await socket.receive_json_from(timeout=WAIT_S), await socket.receive_json_from(timeout=WAIT_S)]
        await socket.disconnect()
        return relayed

    assert run(scenario) == [progress, finished]


def test_it_relays_verdicts_updated(router, viewer):
    headers = session_cookie(viewer)
    event = {"type": "verdicts.updated", "router_id": router.pk}

    async def scenario() -> Any:
        socket = WebsocketCommunicator(application, f"/ws/routers/{router.pk}/", headers=headers)
        await socket.connect(timeout=WAIT_S)
        await socket.receive_json_from(timeout=WAIT_S)
        await publish(group_name(router.pk), event)()
        relayed = await socket.receive_json_from(timeout=WAIT_S)
        await socket.disconnect()
        return relayed

    assert run(scenario) == event


def test_it_drops_unknown_event_types_and_keeps_the_socket_open(router, viewer):
    headers = session_cookie(viewer)
    known = {
        "type": "collection.progress",
        "collection_id": 1,
        "router_id": router.pk,
        "probe": "cpu",
        "status": "running",
    }

    async def scenario() -> Any:
        socket = WebsocketCommunicator(application, f"/ws/routers/{router.pk}/", headers=headers)
        await socket.connect(timeout=WAIT_S)
        await socket.receive_json_from(timeout=WAIT_S)
        await publish(group_name(router.pk), {"type": "internal.debug", "traceback": "..."})()
        await publish(group_name(router.pk), known)()
        relayed = await socket.receive_json_from(timeout=WAIT_S)
        nothing_else = await socket.receive_nothing()
        await socket.disconnect()
        return relayed, nothing_else

    relayed, nothing_else = run(scenario)
    assert relayed == known
    assert nothing_else


def test_it_does_not_relay_another_routers_events(router, viewer):
    headers = session_cookie(viewer)
    other = make_router(router.zone, name="r-8-VM")
    mine = {
        "type": "collection.progress",
        "collection_id": 2,
        "router_id": router.pk,
        "probe": "cpu",
        "status": "running",
    }

    async def scenario() -> Any:
        socket = WebsocketCommunicator(application, f"/ws/routers/{router.pk}/", headers=headers)
        await socket.connect(timeout=WAIT_S)
        await socket.receive_json_from(timeout=WAIT_S)
        await publish(group_name(other.pk), {**mine, "router_id": other.pk, "collection_id": 3})()
        await publish(group_name(router.pk), mine)()
        relayed = await socket.receive_json_from(timeout=WAIT_S)
        await socket.disconnect()
        return relayed

    assert run(scenario) == mine


def test_it_refuses_an_anonymous_visitor_on_the_fleet_socket():
    headers = session_cookie(None)

    async def scenario() -> Any:
        socket = WebsocketCommunicator(application, "/ws/fleet/", headers=headers)
        await socket.connect(timeout=WAIT_S)
        closing = await socket.receive_output(timeout=WAIT_S)
        await socket.wait()
        return closing

    assert run(scenario) == {"type": "websocket.close", "code": CLOSE_NOT_SIGNED_IN}


def test_it_sends_each_regions_last_sync_on_the_fleet_socket(viewer):
    headers = session_cookie(viewer)
    make_region("prod-us", last_sync_status="failed", last_sync_error="401 unauthorized")

    async def scenario() -> Any:
        socket = WebsocketCommunicator(application, "/ws/fleet/", headers=headers)
        await socket.connect(timeout=WAIT_S)
        state = await socket.receive_json_from(timeout=WAIT_S)
        await socket.disconnect()
        return state

    state = run(scenario)
    assert state["type"] == "state"
    assert [(r["region"], r["status"], r["error"]) for r in state["regions"]] == [
        ("prod-us", "failed", "401 unauthorized")
    ]


def test_it_relays_sync_finished_and_fleet_status_on_the_fleet_socket(viewer):
    headers = session_cookie(viewer)
    synced = {"type": "sync.finished", "region": "prod-eu", "routers": 12, "status": "ok", "error": ""}
    status = {"type": "fleet.status", "critical": 1, "warning": 2}

    async def scenario() -> Any:
        socket = WebsocketCommunicator(application, "/ws/fleet/", headers=headers)
        await socket.connect(timeout=WAIT_S)
        await socket.receive_json_from(timeout=WAIT_S)
        await publish(FLEET_GROUP, {"type": "collection.progress", "probe": "cpu"})()
        await publish(FLEET_GROUP, synced)()
        await publish(FLEET_GROUP, status)()
        relayed = [await socket.receive_json_from(timeout=WAIT_S), await socket.receive_json_from(timeout=WAIT_S)]
        await socket.disconnect()
        return relayed

    assert run(scenario) == [synced, status]


def test_it_ignores_what_a_page_sends_and_keeps_relaying(router, viewer):
    headers = session_cookie(viewer)
    event = {
        "type": "collection.progress",
        "collection_id": 5,
        "router_id": router.pk,
        "probe": "cpu",
        "status": "running",
    }

    async def scenario() -> Any:
        socket = WebsocketCommunicator(application, f"/ws/routers/{router.pk}/", headers=headers)
        await socket.connect(timeout=WAIT_S)
        await socket.receive_json_from(timeout=WAIT_S)
        await socket.send_to(text_data="{not json")
        await publish(group_name(router.pk), event)()
        relayed = await socket.receive_json_from(timeout=WAIT_S)
        await socket.disconnect()
        return relayed

    assert run(scenario) == event


def test_it_relays_the_routers_a_sync_changed_on_the_fleet_socket(viewer):
    headers = session_cookie(viewer)
    changed = {"type": "fleet.routers", "region": "prod-eu", "router_ids": [3, 4], "truncated": False}

    async def scenario() -> Any:
        socket = WebsocketCommunicator(application, "/ws/fleet/", headers=headers)
        await socket.connect(timeout=WAIT_S)
        await socket.receive_json_from(timeout=WAIT_S)
        await publish(FLEET_GROUP, changed)()
        relayed = await socket.receive_json_from(timeout=WAIT_S)
        await socket.disconnect()
        return relayed

    assert run(scenario) == changed


@pytest.mark.parametrize("path", ["/ws/fleet/", "router"])
def test_it_closes_a_live_socket_when_its_session_is_logged_out(router, viewer, settings, path):
    settings.LIVE_SESSION_CHECK_SECONDS = 0.2
    client = Client()
    client.force_login(viewer)
    headers = [
        (b"origin", b"http://127.0.0.1"),
        (b"host", b"127.0.0.1"),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]
    url = f"/ws/routers/{router.pk}/" if path == "router" else path

    async def scenario() -> Any:
        socket = WebsocketCommunicator(application, url, headers=headers)
        await socket.connect(timeout=WAIT_S)
        await socket.receive_json_from(timeout=WAIT_S)
        await database_sync_to_async(client.logout)()
        closing = await socket.receive_output(timeout=WAIT_S)
        await socket.wait()
        return closing

    assert run(scenario) == {"type": "websocket.close", "code": CLOSE_NOT_SIGNED_IN}


def test_it_keeps_a_live_socket_open_while_its_session_lives(router, viewer, settings):
    settings.LIVE_SESSION_CHECK_SECONDS = 0.1
    headers = session_cookie(viewer)

    async def scenario() -> Any:
        socket = WebsocketCommunicator(application, "/ws/fleet/", headers=headers)
        await socket.connect(timeout=WAIT_S)
        await socket.receive_json_from(timeout=WAIT_S)
        await asyncio.sleep(0.6)
        silent = await socket.receive_nothing(timeout=0.2)
        await socket.disconnect()
        return silent

    assert run(scenario) is True
