"""The tail worker: one process holding many live tails at once (`manage.py tail_worker`).

A tail is long-lived, so it must never take a collection worker (RQ runs one job per
process) nor cost a process of its own. Here one asyncio loop runs the control work (who
wants which tail, claims, heartbeats, publishing) and each tail's SSH session is read by a
thread of its own through the SSH seam (diagnostics.ssh, reached through diagnostics.access
with host keys pinned as collections pin them). Memory per tail is bounded: a line is cut at
8 KiB, a batch at BATCH_MAX_LINES, a tail's queue at QUEUE_BATCHES batches (a full queue
stalls the SSH read, so the router's tail waits and nothing is dropped), and the lines kept
for lining up a reconnect at TAIL_BACKFILL_LINES.

Lifecycle of a tail: claimed when a viewer asks and this worker has room; started with the
log's last TAIL_BACKFILL_LINES lines; lines numbered and published in batches to the tail's
group and appended to its backlog; a failed session is retried with exponential backoff up
to TAIL_RETRY_MAX_SECONDS, its reason shown to the viewers; a router that CloudStack no
longer lists or that is not Running ends the tail with that reason (as do errors retrying
cannot fix: a refused key, a changed host key, an address outside SSH_ALLOWED_NETWORKS); a
tail stops TAIL_GRACE_SECONDS after its last viewer left. On a reconnect the tail starts from
the log's last lines again and skips those already shown (lines.overlap), or says it could
not line them up. Every SSH session of a tail is written to the audit log when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection as db_connection
from redis.exceptions import RedisError

from diagnostics.access import AccessPlan, open_router_connection, plan_access
from diagnostics.hostkeys import PinnedHostKeys
from diagnostics.ssh import (
    AccessError,
    AccessReason,
    CommandStream,
    Endpoint,
    HostConnectionPool,
    SshSession,
    connect,
)
from diagnostics.tails import lines as linetools
from diagnostics.tails.sources import AGENT, SOURCES_BY_NAME, LogSource, tail_command
from diagnostics.tails.store import TailKey, TailStore
from vrconsole import events
from vrconsole.models import AuditEntry, Router, RouterState

logger = logging.getLogger(__name__)

CONTROL_INTERVAL = 0.25
RENEW_EVERY = 2.0
# At most one batch per tail this often: a line after a quiet spell goes out at once, a flood is
# coalesced into a few dozen messages a second (each up to BATCH_MAX_LINES lines).
FLUSH_SECONDS = 0.015
BATCH_MAX_LINES = 500
READ_POLL_SECONDS = 0.5
QUEUE_BATCHES = 64
ROUTER_RECHECK_SECONDS = 30.0
FIRST_RETRY_SECONDS = 1.0
# A reconnect's first lines are held this long (or until the backfill is complete) to line them up.
STARTUP_QUIET_SECONDS = 0.4
# A session that lasted this long was healthy: the next retry starts its backoff over.
HEALTHY_SESSION_SECONDS = 30.0
# SSH handshakes at once: fifty tails starting together must not stampede a host's sshd.
CONNECTS_AT_ONCE = 8

# Errors of the SSH path that retrying can fix are retried; these end the tail.
_FINAL_REASONS = {
    AccessReason.AUTH_REFUSED,
    AccessReason.HOST_AUTH_REFUSED,
    AccessReason.HOST_KEY_CHANGED,
    AccessReason.KEY_MISSING,
    AccessReason.NOT_ALLOWED,
    AccessReason.NO_ADDRESS,
}


class TailEnded(Exception):
    """The tail cannot go on; the message is the reason the viewers read."""


class StreamEnded(Exception):
    """The tail command ended by itself (killed on the router, session closed by the peer)."""


def router_problem(router: Router | None) -> str:
    """Why a router cannot be tailed any more, or "" when it can."""
    if router is None:
        return "the router is no longer in the console's inventory"
    if router.removed_at is not None:
        return "CloudStack no longer lists this router"
    if router.state != RouterState.RUNNING:
        return f"the router is {router.state or 'in an unknown state'} in CloudStack, not Running"
    return ""


def describe(source: LogSource, router: Router) -> str:
    """What the tail follows, in the words of its first notice."""
    if source.name == AGENT:
        return f"following the lines of {source.path} on the KVM host that name {router.name} (or its control address)"
    where = " on the KVM host" if source.scope == "host" else ""
    return f"following {source.path_for(router.name)}{where} from its last {settings.TAIL_BACKFILL_LINES} lines"


def retry_delay(attempt: int, ceiling: float) -> float:
    """Exponential backoff: 1, 2, 4... seconds, at most `ceiling`."""
    return min(ceiling, FIRST_RETRY_SECONDS * (2 ** min(attempt, 16)))


def _span(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 120:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def worker_host() -> str:
    """This machine's name, the first part of its tail workers' ids."""
    return socket.gethostname()


class HostSessions:
    """Host sessions shared by the router tails behind each host, closed when their last tail ends."""

    def __init__(self, pool: HostConnectionPool) -> None:
        self.pool = pool
        self._users: dict[tuple[str, str, int], int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def using(self, endpoint: Endpoint) -> Iterator[HostConnectionPool]:
        key = (endpoint.identity, endpoint.address, endpoint.port)
        with self._lock:
            self._users[key] = self._users.get(key, 0) + 1
        try:
            yield self.pool
        finally:
            with self._lock:
                self._users[key] -= 1
                last = self._users[key] == 0
                if last:
                    del self._users[key]
            if last:
                self.pool.close_session(endpoint)


class RunningTail:
    """One (router, log) tail: an SSH-reading thread and a publishing task on the worker's loop."""

    def __init__(self, worker: TailWorker, key: TailKey, epoch: str, last_seq: int, recent: list[str]) -> None:
        self.worker = worker
        self.key = key
        self.epoch = epoch
        self.seq = last_seq
        self.recent: deque[str] = deque(recent, maxlen=max(settings.TAIL_BACKFILL_LINES, 1))
        self.resuming = bool(recent)
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(maxsize=QUEUE_BATCHES)
        self.stopping = threading.Event()
        self.stop_reason = ""
        self.idle_since: float | None = None
        self.status = "connecting"
        self.thread = threading.Thread(target=self._ssh_main, name=f"tail-{key.id}", daemon=True)
        self.publisher: asyncio.Task[None] | None = None

    # --- the worker's side ------------------------------------------------------------------

    def start(self) -> None:
        self.publisher = asyncio.create_task(self._publish_loop())
        self.thread.start()

    @property
    def finished(self) -> bool:
        return not self.thread.is_alive() and self.publisher is not None and self.publisher.done()

    def stop(self, reason: str) -> None:
        self.stop_reason = reason
        self.stopping.set()

    async def wait(self, timeout: float) -> None:
        await asyncio.to_thread(self.thread.join, timeout)
        if self.publisher is not None and not self.publisher.done():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.publisher), timeout)
            if not self.publisher.done():
                self.publisher.cancel()

    async def _publish_loop(self) -> None:
        store, layer = self.worker.store, self.worker.layer
        while True:
            kind, payload = await self.queue.get()
            if kind == "done":
                return
            try:
                if kind == "lines":
                    await self._publish_lines(store, layer, payload)
                else:
                    await self._publish_status(store, layer, payload)
            except (RedisError, OSError) as exc:
                # The numbers are taken: a viewer missing these lines is told they were skipped.
                logger.warning("tail %s: could not publish a %s batch: %s", self.key.id, kind, exc)

    async def _publish_lines(self, store: TailStore, layer: Any, items: list[dict[str, Any]]) -> None:
        numbered: list[events.TailLine] = []
        for item in items:
            self.seq += 1
            numbered.append({"s": self.seq, **item})  # type: ignore[typeddict-item]
        try:
            await store.append(self.key, numbered)
        finally:
            message: events.TailLines = {
                "type": "tail.lines",
                "router_id": self.key.router_id,
                "log": self.key.log,
                "epoch": self.epoch,
                "lines": numbered,
            }
            await layer.group_send(self.key.group, message)

    async def _publish_status(self, store: TailStore, layer: Any, payload: dict[str, Any]) -> None:
        now = time.time()
        fields: dict[str, Any] = {
            "status": payload["status"],
            "reason": payload.get("reason", ""),
            "retry_in": payload.get("retry_in") if payload.get("retry_in") is not None else "",
            "changed_at": repr(now),
            "epoch": self.epoch,
        }
        if payload["status"] == "ended":
            fields["ended_at"] = repr(now)
        await store.set_meta(self.key, fields)
        message: events.TailStatus = {
            "type": "tail.status",
            "router_id": self.key.router_id,
            "log": self.key.log,
            "epoch": self.epoch,
            "status": payload["status"],
            "reason": payload.get("reason", ""),
            "retry_in": payload.get("retry_in"),
            "at": now,
        }
        await layer.group_send(self.key.group, message)

    # --- the SSH thread -------------------------------------------------------------------

    def _hand_over(self, kind: str, payload: Any) -> None:
        """Queue a batch or a status for publishing; waits while the queue is full (backpressure)."""
        future = asyncio.run_coroutine_threadsafe(self.queue.put((kind, payload)), self.worker.loop)
        while True:
            try:
                future.result(timeout=1.0)
                return
            except FutureTimeout:
                if self.stopping.is_set() and kind == "lines":
                    future.cancel()
                    return

    def _report(self, status: str, reason: str = "", retry_in: float | None = None) -> None:
        self.status = status
        self._hand_over("status", {"status": status, "reason": reason, "retry_in": retry_in})

    def _notice(self, text: str) -> dict[str, Any]:
        return {"t": linetools.visible(text), "at": int(time.time() * 1000), "sev": "", "k": "notice"}

    def _ssh_main(self) -> None:
        try:
            self._ssh_loop()
        except TailEnded as ended:
            self._report("ended", str(ended))
        except Exception as exc:  # a bug of ours: the viewers must hear the tail is gone, and why
            logger.exception("tail %s crashed", self.key.id)
            self._report("ended", f"the tail worker hit an error ({type(exc).__name__}: {exc})")
        finally:
            if self.stopping.is_set() and self.status != "ended":
                self._report("stopped", self.stop_reason)
            db_connection.close()
            with contextlib.suppress(RuntimeError):
                asyncio.run_coroutine_threadsafe(self.queue.put(("done", None)), self.worker.loop)

    def _load_router(self) -> Router:
        try:
            router = Router.objects.select_related("host", "zone").filter(pk=self.key.router_id).first()
        finally:
            db_connection.close()
        problem = router_problem(router)
        if problem:
            raise TailEnded(problem)
        assert router is not None
        return router

    def _ssh_loop(self) -> None:
        source = SOURCES_BY_NAME.get(self.key.log)
        if source is None:
            raise TailEnded(f"{self.key.log!r} is not a log the console tails")
        attempt = 0
        while not self.stopping.is_set():
            router = self._load_router()
            try:
                command = tail_command(source, settings.TAIL_BACKFILL_LINES, router.name, router.link_local_ip or "")
                plan = plan_access(router)
            except ValueError as exc:
                raise TailEnded(f"cannot build the tail command for this router: {exc}") from None
            except ImproperlyConfigured as exc:
                raise TailEnded(f"SSH settings: {exc}") from None
            except AccessError as exc:
                raise TailEnded(exc.message) from None
            if source.scope == "host" and plan.host is None:
                raise TailEnded("this log is on the KVM host, and this router is reached directly")
            self._report("connecting")
            started = time.monotonic()
            lines_before = self.worker.lines_read.get(self.key, 0)
            outcome, detail = "ok", ""
            try:
                with self._session(plan, source) as session:
                    stream = session.stream(command, settings.SSH_CONNECT_TIMEOUT)
                    try:
                        self._report("streaming")
                        # The agent log's start is the matching lines among many: their number is unknown.
                        backfill = None if source.name == AGENT else settings.TAIL_BACKFILL_LINES
                        self._read(stream, session, describe(source, router), backfill)
                    finally:
                        stream.close()
                detail = "stopped: " + (self.stop_reason or "the worker stopped")
            except AccessError as exc:
                outcome, detail = exc.reason.value, exc.message
                if exc.reason in _FINAL_REASONS or not exc.retryable:
                    self._audit(router, source, plan, started, lines_before, outcome, detail)
                    raise TailEnded(exc.message) from None
            except StreamEnded as exc:
                outcome, detail = "ended", str(exc)
            except TailEnded as exc:
                self._audit(router, source, plan, started, lines_before, "ended", str(exc))
                raise
            self._audit(router, source, plan, started, lines_before, outcome, detail)
            if self.stopping.is_set():
                return
            # A session that held a while was healthy: back off from the start. One that ends as
            # soon as it starts (no `tail` on the router, a crashing sshd) backs off further each time.
            if time.monotonic() - started >= HEALTHY_SESSION_SECONDS:
                attempt = 0
            delay = retry_delay(attempt, settings.TAIL_RETRY_MAX_SECONDS)
            attempt += 1
            self.resuming = bool(self.recent)
            self._report("retrying", detail, retry_in=delay)
            self.stopping.wait(delay)

    @contextmanager
    def _session(self, plan: AccessPlan, source: LogSource) -> Iterator[SshSession]:
        verifier = PinnedHostKeys()
        timeout = settings.SSH_CONNECT_TIMEOUT
        cap = settings.SSH_MAX_OUTPUT_BYTES
        with contextlib.ExitStack() as opened:
            with self.worker.connecting:
                try:
                    if source.scope == "host":
                        assert plan.host is not None
                        # A session of its own: hosts keep sshd's default MaxSessions (10) per connection.
                        session = connect(plan.host, verifier, connect_timeout=timeout, max_output_bytes=cap)
                        opened.callback(session.close)
                    else:
                        pool = opened.enter_context(self.worker.hosts.using(plan.host)) if plan.host else None
                        session = opened.enter_context(open_router_connection(plan, verifier, pool)).router
                finally:
                    db_connection.close()
            session.keep_alive(int(settings.TAIL_KEEPALIVE_SECONDS))
            yield session

    def _read(self, stream: CommandStream, session: SshSession, following: str, backfill: int | None) -> None:
        """Read the stream until stopped; `backfill` is how many lines the restart prints first (None: unknown)."""
        out = linetools.LineSplitter()
        err = linetools.LineSplitter()
        tracker = linetools.SeverityTracker()
        batch: list[dict[str, Any]] = []
        last_flush = 0.0
        now = time.monotonic()
        last_data = last_check = now
        # Held back until they can be lined up with what was shown before a reconnect.
        startup: list[str] | None = [] if self.resuming else None
        startup_until = now + STARTUP_QUIET_SECONDS
        if not self.resuming and self.seq == 0:
            batch.append(self._notice(following))

        def add_line(text: str) -> None:
            received = datetime.now(UTC)
            at = linetools.line_time_ms(text, received) or int(received.timestamp() * 1000)
            batch.append({"t": text, "at": at, "sev": tracker.severity(text), "k": "line"})
            self.recent.append(text)

        def add_notice(text: str) -> None:
            batch.append(self._notice(text.removeprefix("tail: ")))

        def release_startup(block: list[str]) -> None:
            shown = linetools.already_shown(list(self.recent), block)
            if not settings.TAIL_BACKFILL_LINES:
                add_notice("reconnected: lines written while the session was down are not shown (no backfill)")
                shown = 0
            elif shown is None:
                add_notice(
                    "reconnected: the log's last lines follow; they could not be lined up with those shown before "
                    "(rotated or truncated meanwhile?), so some may repeat or be missing"
                )
                shown = 0
            elif shown == len(block):
                add_notice("reconnected: no line was missed")
            else:
                add_notice(f"reconnected: {len(block) - shown} line(s) written meanwhile follow")
            for text in block[shown:]:
                add_line(text)

        while not self.stopping.is_set():
            if batch:
                # Due now if the last batch left long enough ago; a read of 0 s still takes what is ready.
                timeout = max(0.0, last_flush + FLUSH_SECONDS - time.monotonic())
            elif startup is not None:
                timeout = max(0.0, startup_until - time.monotonic())
            else:
                timeout = READ_POLL_SECONDS
            chunk = stream.read(timeout)
            now = time.monotonic()
            if chunk.stdout or chunk.stderr:
                last_data = now
            for text in out.feed(chunk.stdout) + (out.flush() if chunk.ended else []):
                self.worker.count_line(self.key)
                if startup is not None:
                    startup.append(text)
                    startup_until = now + STARTUP_QUIET_SECONDS
                else:
                    add_line(text)
            for text in err.feed(chunk.stderr) + (err.flush() if chunk.ended else []):
                add_notice(text)
            if startup is not None and (
                now >= startup_until or (backfill is not None and len(startup) >= backfill) or chunk.ended
            ):
                release_startup(startup)
                startup = None
            if batch and (chunk.ended or now - last_flush >= FLUSH_SECONDS or len(batch) >= BATCH_MAX_LINES):
                self._hand_over("lines", batch)
                batch = []
                last_flush = time.monotonic()
            if chunk.ended:
                status = f" (exit status {chunk.exit_status})" if chunk.exit_status is not None else ""
                raise StreamEnded(f"the tail command ended{status}")
            if now - last_data >= settings.TAIL_KEEPALIVE_SECONDS:
                session.check_alive(settings.SSH_CONNECT_TIMEOUT)
                last_data = time.monotonic()
            if now - last_check >= ROUTER_RECHECK_SECONDS:
                self._load_router()
                last_check = now
        if batch:
            self._hand_over("lines", batch)

    def _audit(
        self,
        router: Router,
        source: LogSource,
        plan: AccessPlan,
        started: float,
        lines_before: int,
        outcome: str,
        detail: str,
    ) -> None:
        lines = self.worker.lines_read.get(self.key, 0) - lines_before
        try:
            AuditEntry.record(
                "ssh.session",
                router=router,
                target=f"{router.name or router.uuid} {plan.description}",
                detail=(
                    f"live tail of {source.path_for(router.name) if source.scope == 'host' else source.path} "
                    f"for {_span(time.monotonic() - started)}, {lines} line(s) read; {detail}"
                )[:4000],
                outcome=outcome,
            )
        except Exception as exc:  # the database away: the tail goes on, the log keeps the trace
            logger.warning("tail %s: could not write the audit entry (%s): %s", self.key.id, detail, exc)
        finally:
            db_connection.close()


class TailWorker:
    """Runs the tails viewers ask for, up to `max_tails` at once, until `stop` is set."""

    def __init__(self, max_tails: int | None = None, worker_id: str | None = None) -> None:
        self.max_tails = max_tails or settings.TAIL_MAX_PER_WORKER
        self.worker_id = worker_id or f"{worker_host()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.tails: dict[TailKey, RunningTail] = {}
        self.lines_read: dict[TailKey, int] = {}
        self.connecting = threading.BoundedSemaphore(CONNECTS_AT_ONCE)
        self.hosts = HostSessions(HostConnectionPool(opener=self._open_host))
        self._last_error_log = 0.0

    def _open_host(self, endpoint: Endpoint) -> SshSession:
        return connect(
            endpoint,
            PinnedHostKeys(),
            connect_timeout=settings.SSH_CONNECT_TIMEOUT,
            max_output_bytes=settings.SSH_MAX_OUTPUT_BYTES,
        )

    def count_line(self, key: TailKey) -> None:
        self.lines_read[key] = self.lines_read.get(key, 0) + 1

    async def run(self, stop: asyncio.Event) -> None:
        self.loop = asyncio.get_running_loop()
        self.store = TailStore()
        self.layer = get_channel_layer()
        last_renew = 0.0
        logger.info("tail worker %s up, at most %d tails", self.worker_id, self.max_tails)
        try:
            while not stop.is_set():
                now = time.monotonic()
                try:
                    await self._tick(now, renew=now - last_renew >= RENEW_EVERY)
                    if now - last_renew >= RENEW_EVERY:
                        last_renew = now
                except (RedisError, OSError) as exc:
                    # Redis restarting: keep the tails running, try again next tick.
                    if now - self._last_error_log > 30:
                        logger.warning("tail worker: Redis unreachable: %s", exc)
                        self._last_error_log = now
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), CONTROL_INTERVAL)
        finally:
            await self._stop_all()

    async def _tick(self, now: float, renew: bool) -> None:
        store = self.store
        await store.heartbeat(self.worker_id)
        wanted = await store.wanted()
        candidates = [key for key in wanted if key not in self.tails]
        counts = await store.viewer_counts(candidates + list(self.tails))
        for key in candidates:
            if len(self.tails) >= self.max_tails:
                break
            if counts.get(key, 0) == 0 or not await self._should_start(key):
                continue
            if await store.claim(key, self.worker_id):
                await self._start(key)
        for key, tail in list(self.tails.items()):
            if tail.finished:
                del self.tails[key]
                await store.release(key, self.worker_id)
                continue
            if counts.get(key, 0) > 0:
                tail.idle_since = None
            elif tail.idle_since is None:
                tail.idle_since = now
            elif now - tail.idle_since >= settings.TAIL_GRACE_SECONDS and not tail.stopping.is_set():
                tail.stop("no viewer left")
        if renew and self.tails:
            claims = await store.renew_claims(list(self.tails), self.worker_id)
            for key, held in claims.items():
                if not held and not self.tails[key].stopping.is_set():
                    logger.warning("tail %s: the claim expired or another worker took it; stopping here", key.id)
                    self.tails[key].stop("another tail worker took it over")

    async def _should_start(self, key: TailKey) -> bool:
        """A tail that ended stays ended until someone asks for it again."""
        if key.log not in SOURCES_BY_NAME:
            return False
        meta = await self.store.meta(key)
        if meta.get("status") != "ended":
            return True
        try:
            return float(meta.get("requested_at") or 0) > float(meta.get("ended_at") or 0)
        except ValueError:
            return True

    async def _start(self, key: TailKey) -> None:
        begun = await self.store.begin(key, settings.TAIL_BACKFILL_LINES)
        tail = RunningTail(self, key, begun.epoch, begun.last_seq, begun.recent)
        self.tails[key] = tail
        self.lines_read.setdefault(key, 0)
        tail.start()
        logger.info("tail %s started (epoch %s, after line %d)", key.id, begun.epoch, begun.last_seq)

    async def _stop_all(self) -> None:
        for tail in self.tails.values():
            tail.stop("the tail worker is shutting down")
        for key, tail in list(self.tails.items()):
            await tail.wait(timeout=READ_POLL_SECONDS * 4 + settings.SSH_CONNECT_TIMEOUT)
            with contextlib.suppress(RedisError, OSError):
                await self.store.release(key, self.worker_id)
        self.tails.clear()
        with contextlib.suppress(RedisError, OSError):
            await self.store.forget_worker(self.worker_id)
        self.hosts.pool.close_all()
