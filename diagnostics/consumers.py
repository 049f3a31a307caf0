"""WebSocket consumers: a router page's live triage feed and the fleet page's change feed.

They follow one pattern: refuse a visitor who is not signed in, send the current state from
the database, then relay the typed events that workers publish to the channel layer. They
open no SSH session and decide nothing: workers do the work and the database holds the
truth, so a consumer that misses an event loses nothing a reconnect does not restore. Only
event types listed here reach a browser; anything else on the group is dropped, so a new
kind of internal message cannot leak to pages or crash a socket.
"""

from __future__ import annotations

import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from diagnostics.collect import group_name
from diagnostics.live_state import fleet_state, router_state
from vrconsole.jobs import FLEET_GROUP

logger = logging.getLogger(__name__)

# Close codes in the 4000-4999 range the WebSocket spec leaves to applications; the page's
# script reads them to stop reconnecting and say why, instead of retrying for ever.
CLOSE_NOT_SIGNED_IN = 4401
CLOSE_NO_SUCH_ROUTER = 4404

ROUTER_EVENTS = frozenset({"collection.progress", "collection.finished", "verdicts.updated"})
FLEET_EVENTS = frozenset({"sync.finished", "fleet.status"})


class LiveEventConsumer(AsyncJsonWebsocketConsumer):
    """Shared behaviour: sign-in check and relaying only the event types a subclass names."""

    relayed_events: frozenset[str] = frozenset()

    def signed_in(self) -> bool:
        user = self.scope.get("user")
        return bool(user is not None and user.is_authenticated and user.is_active)

    async def refuse(self, code: int) -> None:
        # Accept first: a close before the handshake reaches the browser as 1006, which
        # looks exactly like a network failure and would be retried.
        await self.accept()
        await self.close(code=code)

    async def dispatch(self, message: dict[str, Any]) -> None:
        event_type = message.get("type", "")
        if event_type in self.relayed_events:
            await self.send_json(message)
            return
        if event_type.startswith("websocket."):
            await super().dispatch(message)
            return
        logger.debug("%s dropped an event of unknown type %r", type(self).__name__, event_type)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        # The feed is one-way: whatever a page sends (even garbage) is ignored, never parsed.
        return None


class RouterConsumer(LiveEventConsumer):
    """One router's live feed: latest collection on connect, then probe progress and findings."""

    relayed_events = ROUTER_EVENTS

    async def connect(self) -> None:
        self.group: str | None = None
        if not self.signed_in():
            await self.refuse(CLOSE_NOT_SIGNED_IN)
            return
        router_id = int(self.scope["url_route"]["kwargs"]["router_id"])
        # Join before reading the snapshot: an event published meanwhile is then relayed
        # after it (the page upserts by probe, so a duplicate is harmless) instead of lost.
        self.group = group_name(router_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        state = await database_sync_to_async(router_state)(router_id)
        if state is None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None
            await self.refuse(CLOSE_NO_SUCH_ROUTER)
            return
        await self.accept()
        await self.send_json(state)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)


class FleetConsumer(LiveEventConsumer):
    """The fleet page's feed: each region's last sync on connect, then sync and status events."""

    relayed_events = FLEET_EVENTS

    async def connect(self) -> None:
        self.joined = False
        if not self.signed_in():
            await self.refuse(CLOSE_NOT_SIGNED_IN)
            return
        # Joined before the snapshot is read, for the same reason as a router's feed.
        await self.channel_layer.group_add(FLEET_GROUP, self.channel_name)
        self.joined = True
        state = await database_sync_to_async(fleet_state)()
        await self.accept()
        await self.send_json(state)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "joined", False):
            await self.channel_layer.group_discard(FLEET_GROUP, self.channel_name)
