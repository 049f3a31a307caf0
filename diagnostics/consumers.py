"""WebSocket consumers of the diagnostics side: a router page's live triage feed and its actions feed.

Each consumer refuses a visitor who is not signed in (the actions feed also one who is not
an operator), sends the router's current state from the database, then relays the typed
events the jobs publish to the router's groups (vrconsole.events).
"""

from __future__ import annotations

from channels.db import database_sync_to_async

from diagnostics.live_state import actions_state, router_state
from vrconsole.events import (
    ACTION_EVENTS,
    CLOSE_FORBIDDEN,
    CLOSE_NOT_FOUND,
    CLOSE_NOT_SIGNED_IN,
    ROUTER_EVENTS,
    LiveEventConsumer,
    router_actions_group,
    router_group,
)
from vrconsole.roles import is_operator


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
        self.group = router_group(router_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        state = await database_sync_to_async(router_state)(router_id)
        if state is None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None
            await self.refuse(CLOSE_NOT_FOUND)
            return
        await self.accept()
        await self.send_json(state)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)


class ActionConsumer(LiveEventConsumer):
    """One router's actions feed, operators only: recent runs on connect, then their steps and outcomes."""

    relayed_events = ACTION_EVENTS

    async def connect(self) -> None:
        self.group: str | None = None
        if not self.signed_in():
            await self.refuse(CLOSE_NOT_SIGNED_IN)
            return
        if not await database_sync_to_async(is_operator)(self.scope["user"]):
            await self.refuse(CLOSE_FORBIDDEN)
            return
        router_id = int(self.scope["url_route"]["kwargs"]["router_id"])
        self.group = router_actions_group(router_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        state = await database_sync_to_async(actions_state)(router_id)
        if state is None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None
            await self.refuse(CLOSE_NOT_FOUND)
            return
        await self.accept()
        await self.send_json(state)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)
