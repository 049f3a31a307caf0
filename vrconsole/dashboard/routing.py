"""WebSocket routes of the fleet dashboard, included by the project's vrconsole/routing.py."""

from __future__ import annotations

from django.urls import URLPattern, path

from vrconsole.dashboard.consumers import FleetConsumer

websocket_urlpatterns: list[URLPattern] = [
    path("ws/fleet/", FleetConsumer.as_asgi(), name="ws-fleet"),
]
