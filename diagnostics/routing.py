"""WebSocket routes of the diagnostics side, included by the project's vrconsole/routing.py."""

from __future__ import annotations

from django.urls import URLPattern, path

from diagnostics.consumers import ActionConsumer, RouterConsumer, TailConsumer


def router_socket_path(router_id: int) -> str:
    """The path a router page opens for its live feed (matches the route below)."""
    return f"/ws/routers/{router_id}/"


def tail_socket_base(router_id: int) -> str:
    """The path a router page's live tail opens, followed by a log name of the allowlist and `/`."""
    return f"/ws/routers/{router_id}/tail/"


def router_actions_socket_path(router_id: int) -> str:
    """The path an operator's router page opens for its actions feed (matches the route below)."""
    return f"/ws/routers/{router_id}/actions/"


websocket_urlpatterns: list[URLPattern] = [
    path("ws/routers/<int:router_id>/", RouterConsumer.as_asgi(), name="ws-router"),
    path("ws/routers/<int:router_id>/tail/<slug:log>/", TailConsumer.as_asgi(), name="ws-tail"),
    path("ws/routers/<int:router_id>/actions/", ActionConsumer.as_asgi(), name="ws-router-actions"),
]
