"""Live events: the channel-layer groups, the payloads browsers receive, and one way to publish.

Workers (sync, collection, evaluation) publish typed events to groups on the Redis channel
layer; the WebSocket consumers relay the ones their page understands. Every event a browser
can receive has a TypedDict here, so the shapes the page scripts read are written down once.

Publishing is best effort by design: the database holds the result before anything is
published, so a channel layer that is away costs a live update (the page catches up from
the database on reconnect), never the work. `publish` logs and returns; it never raises.

The consumers that relay events to browsers share `LiveEventConsumer` (sign-in check,
relaying only the event types a page may receive). This module sits at the bottom of the
dependency graph (it imports nothing from the apps): the inventory's sync job and the
diagnostics jobs publish through it, and each app's consumers relay through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any, Literal, NotRequired, TypedDict

from asgiref.sync import async_to_sync
from channels.auth import get_user
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from vrconsole.roles import Capability, allowed

logger = logging.getLogger(__name__)

# --- Groups -----------------------------------------------------------------------------

FLEET_GROUP = "fleet"


def router_group(router_id: int) -> str:
    """The group that carries one router's events (collection progress, verdicts)."""
    return f"router-{router_id}"


def tail_group(router_id: int, log: str) -> str:
    """The group that carries one live tail's lines and status: one per (router, log)."""
    return f"tail-{router_id}-{log}"


def router_actions_group(router_id: int) -> str:
    """The group that carries one router's operator actions and error-triage reads (operators only)."""
    return f"router-actions-{router_id}"


# --- Payloads (what a browser receives) ---------------------------------------------------


class CollectionProgress(TypedDict):
    """A probe of a running collection started (`running`) or ended (`ok`, `error`, or `not-applicable`: not run)."""

    type: Literal["collection.progress"]
    collection_id: int
    router_id: int
    probe: str
    status: str
    duration_s: NotRequired[float]
    error: NotRequired[str]


class CollectionFinished(TypedDict):
    """A collection ended; `status` is succeeded, failed (with `reason`) or errored."""

    type: Literal["collection.finished"]
    collection_id: int
    router_id: int
    status: str
    reason: str
    error: str
    duration_s: float | None
    probe_errors: int


class OpenFinding(TypedDict):
    """One open finding as a live page lists it."""

    rule: str
    category: str
    severity: str
    title: str


class VerdictsUpdated(TypedDict):
    """The matrix judged a router: its status, this collection's verdicts and what is open now."""

    type: Literal["verdicts.updated"]
    router_id: int
    collection_id: int | None
    status: str
    verdicts: list[dict[str, Any]]
    open: list[OpenFinding]
    # Rule ids whose finding opened (or reopened) and resolved with this evaluation.
    opened: list[str]
    resolved: list[str]


class SyncFinished(TypedDict):
    """A region's sync ended: vrconsole.sync.SyncResult.as_json() with the event type."""

    type: Literal["sync.finished"]
    region: str
    routers: int
    created: int
    updated: int
    removed: int
    state_changes: int
    duration_s: float
    status: str
    error: str
    skipped: int
    warnings: str


class FleetStatus(TypedDict):
    """An evaluation changed how a router's fleet row reads (status, open categories, why unknown)."""

    type: Literal["fleet.status"]
    router_id: int
    uuid: str
    name: str
    status: str
    previous_status: str | None
    categories: list[str]


class FleetRouters(TypedDict):
    """A sync changed these routers' rows (state, redundant state, anything CloudStack reports).

    `truncated` means more changed than the event lists: a page refreshes every row it shows.
    """

    type: Literal["fleet.routers"]
    region: str
    router_ids: list[int]
    truncated: bool


class TailLine(TypedDict):
    """One line of a live tail.

    s:   its sequence number in the tail (1, 2, 3...; never reused while the backlog lives)
    t:   the text, already safe (control characters written as \\xNN, cut at 8 KiB)
    at:  epoch milliseconds: the line's own timestamp, or when the worker read it
    sev: "crit", "warn", "benign" (dim it) or ""
    k:   "line" for the log's text, "notice" for what the worker says about the tail
         ("file truncated", "reconnected"...)
    """

    s: int
    t: str
    at: int
    sev: str
    k: str


class TailLines(TypedDict):
    """A batch of consecutive lines of one tail; `epoch` names the backlog the numbers belong to."""

    type: Literal["tail.lines"]
    router_id: int
    log: str
    epoch: str
    lines: list[TailLine]


class TailStatus(TypedDict):
    """Where a tail stands.

    status: "waiting" (no worker has taken it yet), "connecting", "streaming", "retrying"
            (the SSH session failed: `reason`, next try in `retry_in` seconds) or "ended"
            (it will not be retried: `reason`)
    """

    type: Literal["tail.status"]
    router_id: int
    log: str
    epoch: str
    status: str
    reason: str
    retry_in: float | None
    at: float


class TailState(TypedDict):
    """What a tail page gets first on connecting: the log, the tail's status and the last line number."""

    type: Literal["tail.state"]
    router_id: int
    log: str
    label: str
    path: str
    epoch: str
    status: str
    reason: str
    retry_in: float | None
    latest: int
    resumed: bool
    window: int
    workers: int


class TailSkipped(TypedDict):
    """Lines this viewer will not get: it fell further behind than the backlog keeps."""

    type: Literal["tail.skipped"]
    router_id: int
    log: str
    after: int
    before: int
    count: int
    reason: str


class TailPosition(TypedDict):
    """The tail's last line number, sent while a viewer is held back (paused or slow)."""

    type: Literal["tail.position"]
    router_id: int
    log: str
    latest: int


class RouterStateNote(TypedDict):
    """A router of the action's target as CloudStack lists it during the action."""

    uuid: str
    name: str
    state: str
    redundant_state: str


class ActionProgress(TypedDict):
    """One step of a running action: `step` names it (evidence, submitted, job, resync, recollect...)."""

    type: Literal["action.progress"]
    action_id: int
    router_id: int
    action: str
    step: str
    status: str  # running, ok, failed, info
    message: str
    at: str
    job_id: NotRequired[str]
    job_status: NotRequired[int]
    routers: NotRequired[list[RouterStateNote]]


class ActionJob(TypedDict):
    """CloudStack's async job of an action: `status` succeeded or failed, `error` its errortext."""

    id: str | None
    status: str
    error: str


class ActionFinished(TypedDict):
    """An action ended: its status (succeeded, failed, errored), CloudStack's job and what came of it."""

    type: Literal["action.finished"]
    action_id: int
    router_id: int
    action: str
    status: str
    job: ActionJob
    final_state: str
    error: str
    evidence_collection_id: int | None
    after_collection_id: int | None
    audit_id: int | None
    duration_s: float | None


class EvidenceGathered(TypedDict):
    """CloudStack's record of a failing router was read: reload the evidence panel."""

    type: Literal["evidence.gathered"]
    router_id: int
    evidence_id: int
    status: str
    error: str


Event = (
    CollectionProgress
    | CollectionFinished
    | VerdictsUpdated
    | SyncFinished
    | FleetStatus
    | FleetRouters
    | TailLines
    | TailStatus
    | TailState
    | TailSkipped
    | TailPosition
    | ActionProgress
    | ActionFinished
    | EvidenceGathered
)

# The event types each kind of page may receive; consumers relay these and drop the rest.
ROUTER_EVENTS = frozenset({"collection.progress", "collection.finished", "verdicts.updated"})
FLEET_EVENTS = frozenset({"sync.finished", "fleet.status", "fleet.routers"})
# What the tail worker publishes to a tail's group; the tail consumer meters lines per viewer.
TAIL_EVENTS = frozenset({"tail.lines", "tail.status"})
ACTION_EVENTS = frozenset({"action.progress", "action.finished", "evidence.gathered"})

Publisher = Callable[[str, Mapping[str, Any]], None]


def publish(group: str, event: Mapping[str, Any]) -> None:
    """Send one event to a group; a channel layer that is away is logged, never raised."""
    try:
        layer = get_channel_layer()
        if layer is None:
            return
        async_to_sync(layer.group_send)(group, dict(event))
    except Exception as exc:  # any channel-layer failure: the database already has the truth
        logger.warning("could not publish %s to %s: %s", event.get("type"), group, exc)


# --- Relaying to browsers ----------------------------------------------------------------

# Close codes in the 4000-4999 range the WebSocket spec leaves to applications; the page
# scripts read them to stop reconnecting and say why, instead of retrying for ever.
CLOSE_NOT_SIGNED_IN = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


async def session_user(session_key: str, user_id: Any) -> Any:
    """The session's user while the session still exists, belongs to `user_id` and the user is active; else None.

    Read afresh from the session store and the database: signing out (here or in another
    tab) deletes the session, a password change invalidates it (the session hash no longer
    matches), and a deactivated user no longer authenticates.
    """
    engine = import_module(settings.SESSION_ENGINE)
    user = await get_user({"session": engine.SessionStore(session_key)})
    return user if user.is_authenticated and user.is_active and user.pk == user_id else None


async def session_is_valid(session_key: str, user_id: Any) -> bool:
    """True while the session still exists, still belongs to `user_id`, and the user is active."""
    return await session_user(session_key, user_id) is not None


def _record_refusal(action: str, user: Any, path: str, detail: str) -> None:
    from vrconsole.models import AuditEntry

    AuditEntry.record(action, user=user, target=path, detail=detail, outcome="forbidden")


class LiveEventConsumer(AsyncJsonWebsocketConsumer):
    """Shared behaviour of the live feeds: sign-in check and relaying only the types a subclass names.

    Consumers are thin: they open no SSH session and decide nothing. Workers do the work and
    the database holds the truth, so a consumer that misses an event loses nothing that a
    reconnect (which sends the current state again) does not restore. An event type not in
    `relayed_events` is dropped, so a new kind of internal message cannot leak to a page.

    Once accepted, a signed-in user's socket re-reads its session every
    LIVE_SESSION_CHECK_SECONDS and closes with 4401 when the user signed out (or the session
    was otherwise ended): a wall screen must not keep streaming to a session that is gone.
    On the same beat it renews its groups (`join`): the channel layer forgets a member after
    a day (group_expiry), and all of them when Redis restarts, while a wall stays open for weeks.
    """

    relayed_events: frozenset[str] = frozenset()
    # What the socket needs (vrconsole.roles); checked on connect by `permitted` and again on
    # every session beat, so a role taken away closes the socket as signing out does.
    required_capability: Capability = Capability.VIEW
    _session_watch: asyncio.Task[None] | None = None
    _joined: tuple[str, ...] = ()

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        # The one gate of every socket, before a subclass's connect() runs: a new consumer
        # cannot forget it. (Subclasses may check again; it costs one query.)
        if not self.signed_in():
            await self.refuse(CLOSE_NOT_SIGNED_IN)
            return
        if not await self.permitted():
            await self.audit_refusal("socket.refused", "needs")
            await self.refuse(CLOSE_FORBIDDEN)
            return
        await super().websocket_connect(message)

    async def audit_refusal(self, action: str, reason: str) -> None:
        """Write a signed-in user's refused (or revoked) socket to the audit log, as a refused request is.

        A signed-out visitor's socket is not written (as a signed-out request is sent to the
        login page unwritten): the log records what a user tried, not what anyone can.
        An audit log that cannot be written does not keep the socket open.
        """
        path = str(self.scope.get("path") or "")[:255]
        try:
            await database_sync_to_async(_record_refusal)(
                action, self.scope.get("user"), path, f"WS {path}: {reason} {self.required_capability.value}"
            )
        except Exception as exc:
            logger.warning("could not audit a refused socket on %s: %s", path, exc)

    async def permitted(self, user: Any = None) -> bool:
        """True when the socket's user (or `user`, re-read) holds `required_capability`."""
        target = (self.scope.get("url_route") or {}).get("kwargs")
        check = database_sync_to_async(allowed)
        return bool(await check(user or self.scope.get("user"), self.required_capability, target=target))

    async def join(self, group: str) -> None:
        """Join a group, and keep renewing the membership while the socket is open."""
        await self.channel_layer.group_add(group, self.channel_name)
        if group not in self._joined:
            self._joined = (*self._joined, group)

    def signed_in(self) -> bool:
        user = self.scope.get("user")
        return bool(user is not None and user.is_authenticated and user.is_active)

    async def accept(self, *args: Any, **kwargs: Any) -> None:
        await super().accept(*args, **kwargs)
        session = self.scope.get("session")
        session_key = getattr(session, "session_key", None)
        if self.signed_in() and session_key and self._session_watch is None:
            self._session_watch = asyncio.create_task(self._watch_session(session_key, self.scope["user"].pk))

    async def _watch_session(self, session_key: str, user_id: Any) -> None:
        interval = settings.LIVE_SESSION_CHECK_SECONDS
        while True:
            await asyncio.sleep(interval)
            try:
                user = await session_user(session_key, user_id)
                still_permitted = user is not None and await self.permitted(user)
            except Exception as exc:  # the database away for a moment: keep the socket, check again
                logger.warning("could not check the session of a live socket: %s", exc)
                continue
            if user is None:
                await self.session_ended()
                return
            if not still_permitted:
                await self.audit_refusal("socket.revoked", "closed: the user's roles no longer give")
                await self.close(code=CLOSE_FORBIDDEN)
                return
            for group in self._joined:
                try:
                    await self.channel_layer.group_add(group, self.channel_name)
                except Exception as exc:  # Redis away for a moment: renewed on the next beat
                    logger.warning("could not renew a live socket's group %s: %s", group, exc)

    async def session_ended(self) -> None:
        """The user signed out: say so with 4401 and close."""
        await self.close(code=CLOSE_NOT_SIGNED_IN)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        if self._session_watch is not None:
            self._session_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._session_watch
            self._session_watch = None
        await super().websocket_disconnect(message)

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
        # The feeds are one-way: whatever a page sends (even garbage) is ignored, never parsed.
        return None
