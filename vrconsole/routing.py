"""WebSocket routes (Channels). Each consumer authenticates and relays typed events."""

from __future__ import annotations

from django.urls import URLPattern, path

from diagnostics.consumers import FleetConsumer, RouterConsumer


def router_socket_path(router_id: int) -> str:
    """The path a page opens for one router's feed (matches the route below)."""
    return f"/ws/routers/{router_id}/"


websocket_urlpatterns: list[URLPattern] = [
    path("ws/routers/<int:router_id>/", RouterConsumer.as_asgi(), name="ws-router"),
    path("ws/fleet/", FleetConsumer.as_asgi(), name="ws-fleet"),
]
