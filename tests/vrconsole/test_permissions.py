"""Every URL pattern and every WebSocket route, walked from the project's own routers, against every role.

The patterns are enumerated (nothing is listed by hand), so a view added later is covered:
it must declare what it needs with `vrconsole.roles.requires` (or live under the admin site,
which asks the roles itself), and it is then tried as a signed-out visitor (sent to the login
page), as a viewer (refused for operator things), as an operator (refused for admin things) and
as an admin (refused for the superusers' job queues). Sockets: a signed-out visitor's is closed
with 4401, a viewer's on an operator socket with 4403; a role taken away closes an open socket.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from diagnostics.models import Collection, CollectionStatus
from tests.vrconsole.router_factory import make_region, make_router, make_zone
from vrconsole import routing
from vrconsole.events import CLOSE_FORBIDDEN, CLOSE_NOT_SIGNED_IN, LiveEventConsumer
from vrconsole.models import AuditEntry
from vrconsole.roles import ADMIN, OPERATOR, VIEWER, Capability

PASSWORD = "permission-test-password-1"
RANK = {
    Capability.PUBLIC: 0,
    Capability.VIEW: 1,
    Capability.OPERATE: 2,
    Capability.ADMINISTER: 3,
    Capability.SUPERUSER: 4,
}
ROLE_RANK = {VIEWER: 1, OPERATOR: 2, ADMIN: 3}


def walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from walk(entry.url_patterns, route)
        elif isinstance(entry.callback, URLRouter):  # Channels nests routers inside path("", ...)
            yield from walk(entry.callback.routes, route)
        else:
            yield route, entry


def http_routes() -> list[tuple[str, URLPattern]]:
    return [(route, p) for route, p in walk(get_resolver().url_patterns) if not route.startswith("admin/")]


def fill(route: str, values: dict[str, str]) -> str:
    """A concrete path for a route: converters get real ids where the test has them."""

    def value(match: re.Match[str]) -> str:
        kind, name = match.group(1) or "str", match.group(2)
        if name in values:
            return values[name]
        return "1" if kind == "int" else "x"

    # Regular-expression routes (django-rq's): named groups get a value, anchors go.
    path = re.sub(r"\(\?P<(\w+)>[^)]*\)\??", lambda m: values.get(m.group(1), "1"), route)
    path = re.sub(r"<(?:(\w+):)?(\w+)>", value, path)
    path = path.replace("^", "").replace("/?$", "/").replace("$", "").replace("\\", "")
    return "/" + path


def client_for(role: str | None) -> Client:
    client = Client()
    if role is not None:
        user = get_user_model().objects.create_user(f"perm-{role}", password=PASSWORD)
        user.groups.add(Group.objects.get(name=role))
        client.force_login(user)
    return client


@pytest.fixture
def ids(db: Any) -> dict[str, str]:
    router = make_router(make_zone(make_region()), name="r-9-VM")
    collection = Collection.objects.create(router=router, status=CollectionStatus.SUCCEEDED)
    return {"router_id": str(router.pk), "uuid": router.uuid, "pk": str(collection.pk), "log": "cloud"}


def test_every_view_declares_what_it_needs() -> None:
    undeclared = [
        route
        for route, p in http_routes()
        if not isinstance(getattr(p.callback, "required_capability", None), Capability)
    ]
    assert not undeclared, f"views without @requires(...): {undeclared}"


def test_the_walk_finds_the_console_s_views() -> None:
    names = {p.name for _, p in http_routes()}
    assert {"fleet", "router-detail", "router-collect", "router-action", "login", "metrics"} <= names
    assert any(route.startswith("rq/") for route, _ in http_routes())


def test_a_signed_out_visitor_is_sent_to_the_login_page_everywhere(ids: dict[str, str]) -> None:
    client = Client()
    for route, pattern in http_routes():
        if pattern.callback.required_capability is Capability.PUBLIC:
            continue
        for method in ("get", "post"):
            response = getattr(client, method)(fill(route, ids))
            assert response.status_code == 302 and "/login/" in response["Location"], (method, route)


@pytest.mark.parametrize("role", [VIEWER, OPERATOR, ADMIN])
def test_each_role_is_refused_what_is_above_it(role: str, ids: dict[str, str]) -> None:
    client = client_for(role)
    checked = 0
    for route, pattern in http_routes():
        get_needs = pattern.callback.required_capability
        post_needs = pattern.callback.required_post_capability
        for method, needs in (("get", get_needs), ("post", post_needs)):
            if RANK[needs] <= ROLE_RANK[role]:
                continue
            response = getattr(client, method)(fill(route, ids))
            assert response.status_code == 403, (role, method, route, response.status_code)
            checked += 1
    assert checked, "nothing above this role was found"


@pytest.mark.parametrize("role", [VIEWER, OPERATOR])
def test_the_admin_site_is_for_admins_only(role: str, ids: dict[str, str]) -> None:
    client = client_for(role)
    for path in ("/admin/", "/admin/status/", "/admin/vrconsole/auditentry/", "/admin/auth/user/"):
        response = client.get(path)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], (role, path)


def test_an_admin_reaches_the_admin_site_and_its_status_page(ids: dict[str, str]) -> None:
    client = client_for(ADMIN)
    for path in ("/admin/", "/admin/status/", "/admin/vrconsole/auditentry/", "/admin/auth/user/"):
        assert client.get(path).status_code == 200, path


def test_the_job_queues_are_for_superusers(ids: dict[str, str]) -> None:
    superuser = get_user_model().objects.create_superuser("perm-root", password=PASSWORD)
    client = Client()
    client.force_login(superuser)
    assert client.get("/rq/").status_code == 200
    assert client_for(ADMIN).get("/rq/").status_code == 403


# --- WebSockets ---------------------------------------------------------------------------


def socket_routes() -> list[tuple[str, Any]]:
    return [(route, p.callback) for route, p in walk(routing.websocket_urlpatterns)]


def test_every_socket_is_a_live_event_consumer_with_a_capability() -> None:
    for route, callback in socket_routes():
        consumer = callback.consumer_class
        assert issubclass(consumer, LiveEventConsumer), route
        assert isinstance(consumer.required_capability, Capability), route


def _headers(client: Client | None) -> list[tuple[bytes, bytes]]:
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if client is not None:
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    return headers


def _close_code(path: str, headers: list[tuple[bytes, bytes]]) -> Any:
    from vrconsole.asgi import application

    async def scenario() -> Any:
        socket = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await socket.connect(timeout=5)
        assert connected
        while True:
            message = await socket.receive_output(timeout=5)
            if message["type"] == "websocket.close":
                await socket.wait()
                return message.get("code")
            if message["type"] != "websocket.send":
                return None

    return async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
def test_sockets_refuse_signed_out_visitors_and_viewers_where_operators_are_needed(ids: dict[str, str]) -> None:
    viewer = client_for(VIEWER)
    for route, callback in socket_routes():
        path = fill(route, ids)
        assert _close_code(path, _headers(None)) == CLOSE_NOT_SIGNED_IN, route
        if RANK[callback.consumer_class.required_capability] > ROLE_RANK[VIEWER]:
            assert _close_code(path, _headers(viewer)) == CLOSE_FORBIDDEN, route
            # Refused as a request is: audited under the user's name (a signed-out visitor is not).
            entry = AuditEntry.objects.filter(action="socket.refused", target=path).get()
            assert entry.username == f"perm-{VIEWER}" and entry.outcome == "forbidden", route
            assert callback.consumer_class.required_capability.value in entry.detail, route
    assert not AuditEntry.objects.filter(action="socket.refused", username="system").exists()


@pytest.mark.django_db(transaction=True)
def test_an_operator_socket_closes_when_the_role_is_taken_away(ids: dict[str, str], settings: Any) -> None:
    from vrconsole.asgi import application

    settings.LIVE_SESSION_CHECK_SECONDS = 0.2
    client = client_for(OPERATOR)
    user = get_user_model().objects.get(username=f"perm-{OPERATOR}")

    async def scenario() -> Any:
        from channels.db import database_sync_to_async

        socket = WebsocketCommunicator(
            application, f"/ws/routers/{ids['router_id']}/actions/", headers=_headers(client)
        )
        connected, _ = await socket.connect(timeout=5)
        assert connected
        first = await socket.receive_output(timeout=5)
        assert first["type"] == "websocket.send"
        await database_sync_to_async(user.groups.clear)()
        while True:
            message = await socket.receive_output(timeout=5)
            if message["type"] == "websocket.close":
                await socket.wait()
                return message.get("code")

    assert async_to_sync(scenario)() == CLOSE_FORBIDDEN
    revoked = AuditEntry.objects.get(action="socket.revoked")
    assert revoked.username == f"perm-{OPERATOR}" and revoked.target == f"/ws/routers/{ids['router_id']}/actions/"


@pytest.mark.django_db(transaction=True)
def test_a_socket_closes_when_its_user_is_deactivated(ids: dict[str, str], settings: Any) -> None:
    from vrconsole.asgi import application

    settings.LIVE_SESSION_CHECK_SECONDS = 0.2
    client = client_for(VIEWER)
    user = get_user_model().objects.get(username=f"perm-{VIEWER}")

    async def scenario() -> Any:
        from channels.db import database_sync_to_async

        socket = WebsocketCommunicator(application, f"/ws/routers/{ids['router_id']}/", headers=_headers(client))
        connected, _ = await socket.connect(timeout=5)
        assert connected
        assert (await socket.receive_output(timeout=5))["type"] == "websocket.send"
        user.is_active = False
        await database_sync_to_async(user.save)()
        while True:
            message = await socket.receive_output(timeout=5)
            if message["type"] == "websocket.close":
                await socket.wait()
                return message.get("code")

    assert async_to_sync(scenario)() == CLOSE_NOT_SIGNED_IN
