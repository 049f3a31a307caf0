"""WebSocket consumers of the diagnostics side: a router page's live triage feed, its live tails and its actions feed.

The router consumer refuses a visitor who is not signed in, sends the router's current state
from the database, then relays the typed events the collection and evaluation jobs publish
to the router's group (vrconsole.events). The tail consumer serves one viewer of one live
tail (diagnostics.tails): operators only, lines metered per viewer. The actions consumer
(operators only) sends the router's recent action runs, then relays their steps and outcomes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings
from redis.exceptions import RedisError

from diagnostics.live_state import actions_state, router_state
from diagnostics.tails.flow import ViewerFlow
from diagnostics.tails.sources import offered_source
from diagnostics.tails.store import VIEWER_LEASE_SECONDS, TailKey, TailStore
from vrconsole import events
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
from vrconsole.models import AuditEntry, Router
from vrconsole.roles import Capability

logger = logging.getLogger(__name__)

# Lines read from the backlog per round trip while a viewer catches up.
PUMP_BATCH_LINES = 500
# A held-back viewer hears the tail's newest line number at most this often.
POSITION_EVERY_SECONDS = 0.5
# The server could not serve the socket (Redis away); the page reconnects.
CLOSE_SERVER_ERROR = 1011


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
        await self.join(self.group)
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
    required_capability = Capability.OPERATE

    async def connect(self) -> None:
        self.group: str | None = None
        if not self.signed_in():
            await self.refuse(CLOSE_NOT_SIGNED_IN)
            return
        if not await self.permitted():
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


def _resume_position(query_string: bytes) -> tuple[int | None, str]:
    """`after` (the last line number the page has) and `epoch` from the socket's query string."""
    query = parse_qs(query_string.decode("ascii", errors="replace"), max_num_fields=5)
    after_text = (query.get("after") or [""])[0]
    epoch = (query.get("epoch") or [""])[0][:32]
    after = int(after_text) if after_text.isdigit() and len(after_text) < 16 else None
    return after, epoch


class TailConsumer(LiveEventConsumer):
    """One viewer of one live tail: operators only; lines metered by the viewer's acks and a rate.

    The socket names a router and a log of the allowlist that the router's last collection
    found; the tail itself runs in a tail worker, asked for through Redis while the socket is
    open. The page starts from the tail's backlog (the last TAIL_BACKFILL_LINES lines, or
    after the line it had when it reconnects), then gets live batches; a page that stops
    acknowledging (paused, slow) is held back and catches up from the backlog, told exactly
    how many lines it skipped if it fell further behind than the backlog keeps.
    """

    relayed_events = frozenset()
    required_capability = Capability.OPERATE
    key: TailKey | None = None  # set by connect(); None when the socket was refused before it

    async def connect(self) -> None:
        self.key: TailKey | None = None
        self.tasks: list[asyncio.Task[None]] = []
        if not self.signed_in():
            await self.refuse(CLOSE_NOT_SIGNED_IN)
            return
        if not await self.permitted():
            await self.refuse(CLOSE_FORBIDDEN)
            return
        kwargs = self.scope["url_route"]["kwargs"]
        found = await database_sync_to_async(offered_source)(int(kwargs["router_id"]), str(kwargs["log"]))
        if found is None:
            await self.refuse(CLOSE_NOT_FOUND)
            return
        router, source = found
        self.key = TailKey(router.pk, source.name)
        self.path = source.path_for(router.name)
        self.flow = ViewerFlow(
            window=settings.TAIL_VIEWER_WINDOW_LINES,
            rate=settings.TAIL_VIEWER_LINES_PER_SECOND,
            burst=max(settings.TAIL_VIEWER_LINES_PER_SECOND, settings.TAIL_BACKFILL_LINES),
        )
        self.lock = asyncio.Lock()
        self.epoch = ""
        self.last_position = 0.0
        self.wake: asyncio.TimerHandle | None = None
        self.opened = time.monotonic()
        await self.accept()
        await database_sync_to_async(AuditEntry.record)(
            "tail.opened",
            user=self.scope["user"],
            router=router,
            detail=f"live tail of {self.path}",
            outcome="opened",
        )
        try:
            await self._start(source.label)
        except (RedisError, OSError) as exc:
            logger.warning("tail socket %s: Redis unreachable: %s", self.key.id, exc)
            await self.send_json(self._status("ended", "the console cannot reach Redis; reconnecting"))
            await self.close(code=CLOSE_SERVER_ERROR)

    async def _start(self, label: str) -> None:
        assert self.key is not None
        self.store = TailStore()
        await self.join(self.key.group)
        await self.store.request(self.key, self.channel_name)
        meta = await self.store.meta(self.key)
        first, last = await self.store.bounds(self.key)
        workers = await self.store.live_workers()
        self.epoch = meta.get("epoch", "") if last else ""
        after, epoch = _resume_position(self.scope.get("query_string", b""))
        resumed = bool(epoch) and epoch == self.epoch and after is not None and after <= last
        if resumed and after is not None:
            self.flow.start_at(after)
        elif last:
            self.flow.start_at(max(first - 1, last - settings.TAIL_BACKFILL_LINES))
        self.flow.saw(last)
        status = meta.get("status", "")
        if status not in {"connecting", "streaming", "retrying"}:
            status = "waiting"
        state: events.TailState = {
            "type": "tail.state",
            "router_id": self.key.router_id,
            "log": self.key.log,
            "label": label,
            "path": self.path,
            "epoch": self.epoch,
            "status": status,
            "reason": meta.get("reason", "") if status != "waiting" else "",
            "retry_in": _float_or_none(meta.get("retry_in")) if status == "retrying" else None,
            "latest": last,
            "resumed": resumed,
            "window": self.flow.window,
            "workers": workers,
        }
        await self.send_json(state)
        self.tasks.append(asyncio.create_task(self._renew_lease()))
        async with self.lock:
            await self._pump()

    def _status(self, status: str, reason: str) -> events.TailStatus:
        assert self.key is not None
        return {
            "type": "tail.status",
            "router_id": self.key.router_id,
            "log": self.key.log,
            "epoch": self.epoch,
            "status": status,
            "reason": reason,
            "retry_in": None,
            "at": time.time(),
        }

    async def _renew_lease(self) -> None:
        assert self.key is not None
        while True:
            await asyncio.sleep(VIEWER_LEASE_SECONDS / 3)
            try:
                await self.store.renew_viewer(self.key, self.channel_name)
            except (RedisError, OSError) as exc:
                logger.warning("tail socket %s: could not renew its lease: %s", self.key.id, exc)

    async def dispatch(self, message: dict[str, Any]) -> None:
        event_type = message.get("type", "")
        if event_type == "tail.lines":
            await self.tail_lines(message)
        elif event_type == "tail.status":
            await self.tail_status(message)
        else:
            await super().dispatch(message)

    def _adopt_epoch(self, epoch: str) -> bool:
        """Follow the worker's epoch; True when it replaced another (the backlog started over)."""
        if epoch == self.epoch or not epoch:
            return False
        replaced = bool(self.epoch)
        self.epoch = epoch
        if replaced:
            self.flow.start_at(0)
            self.flow.latest = 0
        return replaced

    async def tail_status(self, message: dict[str, Any]) -> None:
        async with self.lock:
            if self._adopt_epoch(str(message.get("epoch", ""))):
                await self._send_restart()
            await self.send_json({key: message.get(key) for key in events.TailStatus.__annotations__})

    async def tail_lines(self, message: dict[str, Any]) -> None:
        lines = message.get("lines") or []
        if not lines or self.key is None:
            return
        async with self.lock:
            if self._adopt_epoch(str(message.get("epoch", ""))):
                await self._send_restart()
            self.flow.saw(lines[-1]["s"])
            fresh = [line for line in lines if line["s"] > self.flow.sent]
            now = time.monotonic()
            if fresh and fresh[0]["s"] == self.flow.sent + 1 and self.flow.room(now) >= len(fresh):
                await self._send_lines(fresh, now)
                return
            await self._pump()

    async def _send_restart(self) -> None:
        assert self.key is not None
        await self.send_json(self._status("restarted", "the tail's backlog started over; numbering starts again"))

    async def _send_lines(self, lines: list[events.TailLine], now: float) -> None:
        assert self.key is not None
        message: events.TailLines = {
            "type": "tail.lines",
            "router_id": self.key.router_id,
            "log": self.key.log,
            "epoch": self.epoch,
            "lines": lines,
        }
        await self.send_json(message)
        self.flow.record_sent(lines[-1]["s"], len(lines), now)

    async def _send_skipped(self, before: int) -> None:
        assert self.key is not None
        after = self.flow.sent
        skipped: events.TailSkipped = {
            "type": "tail.skipped",
            "router_id": self.key.router_id,
            "log": self.key.log,
            "after": after,
            "before": before,
            "count": before - after - 1,
            "reason": f"older than the backlog, which keeps the last {settings.TAIL_BACKLOG_LINES} lines",
        }
        await self.send_json(skipped)
        self.flow.skip_to(before - 1)

    async def _pump(self) -> None:
        """Send what the window and the rate allow from the backlog; call with the lock held."""
        assert self.key is not None
        while self.flow.behind:
            now = time.monotonic()
            room = self.flow.room(now)
            if room <= 0:
                break
            batch = await self.store.read_after(self.key, self.flow.sent, min(room, PUMP_BATCH_LINES))
            if not batch:
                # Nothing after our position is kept any more: the rest up to the newest line is gone.
                await self._send_skipped(self.flow.latest + 1)
                break
            if batch[0]["s"] > self.flow.sent + 1:
                await self._send_skipped(batch[0]["s"])
            await self._send_lines(batch, now)
        if self.flow.behind:
            await self._held_back()

    async def _held_back(self) -> None:
        """Say where the tail is, and come back when the rate allows more (acks wake the window)."""
        assert self.key is not None
        now = time.monotonic()
        if now - self.last_position >= POSITION_EVERY_SECONDS:
            self.last_position = now
            position: events.TailPosition = {
                "type": "tail.position",
                "router_id": self.key.router_id,
                "log": self.key.log,
                "latest": self.flow.latest,
            }
            await self.send_json(position)
        if not self.flow.window_full and self.wake is None:
            delay = max(self.flow.seconds_until_room(now), 0.05)
            self.wake = asyncio.get_running_loop().call_later(delay, self._wake_up)

    def _wake_up(self) -> None:
        self.wake = None
        self.tasks.append(asyncio.create_task(self._locked_pump()))

    async def _locked_pump(self) -> None:
        try:
            async with self.lock:
                await self._pump()
        except (RedisError, OSError) as exc:
            logger.warning("tail socket: could not read the backlog: %s", exc)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        # The page sends one thing: {"ack": N}, the last line it has shown. Anything else is ignored.
        if self.key is None or not text_data or len(text_data) > 100:
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            return
        ack = message.get("ack") if isinstance(message, dict) else None
        if not isinstance(ack, int) or isinstance(ack, bool) or ack < 0:
            return
        async with self.lock:
            self.flow.ack(ack)
            try:
                await self._pump()
            except (RedisError, OSError) as exc:
                logger.warning("tail socket %s: could not read the backlog: %s", self.key.id, exc)

    async def disconnect(self, code: int) -> None:
        wake = getattr(self, "wake", None)
        if wake is not None:
            wake.cancel()
        for task in getattr(self, "tasks", []):
            task.cancel()
        if self.key is None:
            return
        with contextlib.suppress(RedisError, OSError):
            await self.channel_layer.group_discard(self.key.group, self.channel_name)
            await self.store.leave(self.key, self.channel_name)
        watched = time.monotonic() - self.opened
        await database_sync_to_async(AuditEntry.record)(
            "tail.closed",
            user=self.scope["user"],
            router=await database_sync_to_async(Router.objects.filter(pk=self.key.router_id).first)(),
            detail=f"live tail of {self.path}, watched for {int(watched)} s (closed with code {code})",
            outcome="closed",
        )


def _float_or_none(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None
