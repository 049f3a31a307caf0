"""WebSocket routes of the console: each app's routes, included here as urls.py includes its URLs.

Every consumer authenticates and relays typed events (vrconsole.events); asgi.py wraps this
router in the origin check and the session authentication.
"""

from __future__ import annotations

from channels.routing import URLRouter
from django.urls import path

from diagnostics import routing as diagnostics_routing
from vrconsole.dashboard import routing as dashboard_routing

websocket_urlpatterns = [
    path("", URLRouter(diagnostics_routing.websocket_urlpatterns)),
    path("", URLRouter(dashboard_routing.websocket_urlpatterns)),
]
