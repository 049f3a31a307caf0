"""The router's actions socket through the real ASGI application and Redis channel layer: operators only."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AbstractBaseUser
from django.test import Client

from diagnostics.models import ActionRun
from tests.diagnostics.actions.support import operator, viewer
from tests.vrconsole.router_factory import make_region, make_router, make_zone
from vrconsole.asgi import application
from vrconsole.events import CLOSE_FORBIDDEN, CLOSE_NOT_FOUND, CLOSE_NOT_SIGNED_IN, router_actions_group
from vrconsole.models import Router

pytestmark = pytest.mark.django_db(transaction=True)

WAIT_S = 5


@pytest.fixture
def router() -> Router:
    return make_router(make_zone(make_region()), name="r-70-VM")


def headers(user: AbstractBaseUser | None) -> list[tuple[bytes, bytes]]:
    values = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if user is not None:
        client = Client()
        client.force_login(user)
        values.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return values


def closing_code(path: str, user: AbstractBaseUser | None) -> Any:
    sent = headers(user)

    async def scenario() -> Any:
        socket = WebsocketCommunicator(application, path, headers=sent)
        await socket.connect(timeout=WAIT_S)
        closing = await socket.receive_output(timeout=WAIT_S)
        await socket.wait()
        return closing

    return async_to_sync(scenario)()


def test_it_refuses_a_viewer_with_4403(router: Router) -> None:
    assert closing_code(f"/ws/routers/{router.pk}/actions/", viewer()) == {
        "type": "websocket.close",
        "code": CLOSE_FORBIDDEN,
    }


def test_it_refuses_an_anonymous_visitor_and_an_unknown_router(router: Router) -> None:
    path = f"/ws/routers/{router.pk}/actions/"
    assert closing_code(path, None)["code"] == CLOSE_NOT_SIGNED_IN
    assert closing_code("/ws/routers/999999/actions/", operator())["code"] == CLOSE_NOT_FOUND


def test_an_operator_gets_the_recent_runs_then_their_steps(router: Router) -> None:
    run = ActionRun.objects.create(
        router=router,
        action="reboot",
        network_key="k",
        reason="INC-1",
        username="oncall",
        status="running",
        progress=[{"at": "2025-01-01T00:00:00+00:00", "step": "started", "status": "info", "message": "go"}],
    )
    sent = headers(operator())

    async def scenario() -> tuple[Any, Any, Any]:
        socket = WebsocketCommunicator(application, f"/ws/routers/{router.pk}/actions/", headers=sent)
        connected, _ = await socket.connect(timeout=WAIT_S)
        state = await socket.receive_json_from(timeout=WAIT_S)
        layer = get_channel_layer()
        await layer.group_send(router_actions_group(router.pk), {"type": "internal.secret", "x": 1})
        await layer.group_send(
            router_actions_group(router.pk),
            {
                "type": "action.progress",
                "action_id": run.pk,
                "router_id": router.pk,
                "action": "reboot",
                "step": "job",
                "status": "running",
                "message": "job j-1: in progress",
                "at": "now",
            },
        )
        relayed = await socket.receive_json_from(timeout=WAIT_S)
        await socket.disconnect()
        return connected, state, relayed

    connected, state, relayed = async_to_sync(scenario)()
    assert connected
    assert state["type"] == "actions.state" and [r["action_id"] for r in state["runs"]] == [run.pk]
    assert state["runs"][0]["progress"][0]["step"] == "started" and state["runs"][0]["reason"] == "INC-1"
    assert relayed["type"] == "action.progress" and relayed["message"] == "job j-1: in progress"
