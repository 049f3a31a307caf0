"""WebSocket routes (Channels). Each consumer authenticates and relays typed events."""

from __future__ import annotations

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
