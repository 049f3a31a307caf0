"""WebSocket consumer of the fleet dashboard: the wall screen's change feed.

On connect it sends each region's last sync, then relays the sync and status events the
workers publish to the fleet group (vrconsole.events).
"""

from __future__ import annotations

from channels.db import database_sync_to_async

from vrconsole.dashboard.queries import region_sync_state
from vrconsole.events import CLOSE_NOT_SIGNED_IN, FLEET_EVENTS, FLEET_GROUP, LiveEventConsumer


class FleetConsumer(LiveEventConsumer):
    """The fleet page's feed: each region's last sync on connect, then sync and status events."""

    relayed_events = FLEET_EVENTS

    async def connect(self) -> None:
        self.joined = False
        if not self.signed_in():
            await self.refuse(CLOSE_NOT_SIGNED_IN)
            return
        # Joined before the snapshot is read: an event published meanwhile is relayed, not lost.
        await self.join(FLEET_GROUP)
        self.joined = True
        state = await database_sync_to_async(region_sync_state)()
        await self.accept()
        await self.send_json(state)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "joined", False):
            await self.channel_layer.group_discard(FLEET_GROUP, self.channel_name)
