"""WebSocket routes of the fleet dashboard, included by the project's vrconsole/routing.py."""

from __future__ import annotations

from django.urls import URLPattern, path

from vrconsole.dashboard.consumers import FleetConsumer


def fleet_socket_path() -> str:
    """The path the fleet page opens for its live feed (matches the route below)."""
    return "/ws/fleet/"


websocket_urlpatterns: list[URLPattern] = [
    path("ws/fleet/", FleetConsumer.as_asgi(), name="ws-fleet"),
]
