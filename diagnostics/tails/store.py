"""The tails' shared state in Redis: who watches what, which worker runs which tail, status and backlog.

Viewers (tail consumers in the web tier) and tail workers never talk directly; they meet here:

- `wanted`: a sorted set of tails someone asked for, by last request time;
- `viewers:<tail>`: the viewers of one tail (channel names), each with a lease a consumer
  renews while its socket is open, so a crashed web process stops counting by itself;
- `owner:<tail>`: the worker running the tail, a key with an expiry the worker renews, so a
  dead worker's tails are taken over by another one;
- `meta:<tail>`: the tail's epoch (which backlog its line numbers belong to), status, reason,
  and when it was last requested and ended (an ended tail is restarted only by a new request);
- `lines:<tail>`: the backlog, a stream whose entry ids are the line numbers (`<seq>-0`),
  capped at TAIL_BACKLOG_LINES and expiring TAIL_BACKLOG_TTL_SECONDS after the last line;
- `workers`: live tail workers by heartbeat, so a page can say when none is running.

Keys live under the channel layer's prefix, so a test run or a second console sharing a
Redis keeps to its own. Everything here is asyncio (redis.asyncio): the consumers and the
worker's control loop both run on an event loop.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import weakref
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings

from vrconsole import events

# A viewer's lease; its consumer renews it every third of it.
VIEWER_LEASE_SECONDS = 15.0
# A worker's claim on a tail; renewed every few seconds while the tail runs.
OWNER_TTL_MS = 10_000
# A worker counts as alive this long after its last heartbeat.
WORKER_ALIVE_SECONDS = 10.0
# Requests older than this are forgotten (a tail nobody asked for in an hour is not wanted).
WANTED_HORIZON_SECONDS = 3600.0

# Extends the worker's claim; a claim that is gone altogether (Redis restarted empty) is taken
# again, so a Redis restart does not restart every tail. Another worker's claim is not touched.
_RENEW = """
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not owner then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True)
class TailKey:
    """One tail: a router and one log of the allowlist (diagnostics.tails.sources)."""

    router_id: int
    log: str

    @property
    def id(self) -> str:
        return f"{self.router_id}:{self.log}"

    @property
    def group(self) -> str:
        return events.tail_group(self.router_id, self.log)

    @classmethod
    def parse(cls, text: str) -> TailKey | None:
        """The key a `wanted` member names, or None for garbage."""
        router, _, log = text.partition(":")
        if not router.isdigit() or not log or len(log) > 40:
            return None
        return cls(int(router), log)


def _prefix() -> str:
    layers: Any = settings.CHANNEL_LAYERS
    config = layers.get("default", {}).get("CONFIG", {})
    return f"{config.get('prefix', 'vrconsole')}:tail"


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = weakref.WeakKeyDictionary()


def redis_client() -> aioredis.Redis:
    """One client (and connection pool) per event loop: daphne's, the worker's, a test's."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = aioredis.Redis.from_url(
            settings.REDIS_URL,
            decode_responses=True,
            health_check_interval=30,
            socket_connect_timeout=settings.REDIS_CONNECT_TIMEOUT,
            socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
        )
        _clients[loop] = client
    return client


def _entries(raw: Any) -> list[tuple[str, dict[str, str]]]:
    """Stream entries as (id, fields) with text values (the client decodes responses)."""
    return [(str(entry_id), {str(k): str(v) for k, v in (fields or {}).items()}) for entry_id, fields in raw or []]


def line_from_entry(entry_id: str, fields: dict[str, str]) -> events.TailLine:
    """A backlog entry as the line a page receives."""
    return {
        "s": int(entry_id.partition("-")[0]),
        "t": fields.get("t", ""),
        "at": int(fields.get("at") or 0),
        "sev": fields.get("sev", ""),
        "k": fields.get("k", "line"),
    }


@dataclass(frozen=True)
class TailStart:
    """Where a (re)started tail picks up: its epoch, its last line number, its last lines' texts."""

    epoch: str
    last_seq: int
    recent: list[str]


class TailStore:
    """The Redis side of tails, for consumers and workers alike."""

    def __init__(self, client: aioredis.Redis | None = None) -> None:
        self.redis = client or redis_client()
        self.prefix = _prefix()

    def _key(self, kind: str, key: TailKey | None = None) -> str:
        return f"{self.prefix}:{kind}" if key is None else f"{self.prefix}:{kind}:{key.id}"

    # --- viewers ------------------------------------------------------------------------

    async def request(self, key: TailKey, viewer: str, lease: float = VIEWER_LEASE_SECONDS) -> None:
        """A viewer wants the tail: lease it, mark the tail wanted, and note the request time."""
        now = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self._key("viewers", key), {viewer: now + lease})
            pipe.expire(self._key("viewers", key), int(WANTED_HORIZON_SECONDS))
            pipe.zadd(self._key("wanted"), {key.id: now})
            pipe.hset(self._key("meta", key), mapping={"requested_at": repr(now)})
            pipe.expire(self._key("meta", key), settings.TAIL_BACKLOG_TTL_SECONDS)
            await pipe.execute()

    async def renew_viewer(self, key: TailKey, viewer: str, lease: float = VIEWER_LEASE_SECONDS) -> None:
        now = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self._key("viewers", key), {viewer: now + lease})
            pipe.zadd(self._key("wanted"), {key.id: now})
            await pipe.execute()

    async def leave(self, key: TailKey, viewer: str) -> None:
        await self.redis.zrem(self._key("viewers", key), viewer)

    async def viewer_counts(self, keys: list[TailKey]) -> dict[TailKey, int]:
        """Viewers with a live lease, per tail."""
        if not keys:
            return {}
        now = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.zcount(self._key("viewers", key), now, "+inf")
            counts = await pipe.execute()
        return dict(zip(keys, (int(count) for count in counts), strict=True))

    async def wanted(self) -> list[TailKey]:
        """Tails someone asked for recently (requests older than an hour are dropped)."""
        now = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(self._key("wanted"), "-inf", now - WANTED_HORIZON_SECONDS)
            pipe.zrange(self._key("wanted"), 0, -1)
            _, members = await pipe.execute()
        return [key for key in (TailKey.parse(member) for member in members) if key is not None]

    # --- ownership and workers ----------------------------------------------------------

    async def claim(self, key: TailKey, worker: str) -> bool:
        return bool(await self.redis.set(self._key("owner", key), worker, nx=True, px=OWNER_TTL_MS))

    async def renew_claims(self, keys: list[TailKey], worker: str) -> dict[TailKey, bool]:
        """Extend the worker's claims (taking back one that vanished); False for a tail another worker holds."""
        if not keys:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.eval(_RENEW, 1, self._key("owner", key), worker, OWNER_TTL_MS)
            results = await pipe.execute()
        return {key: bool(result) for key, result in zip(keys, results, strict=True)}

    async def release(self, key: TailKey, worker: str) -> None:
        await self.redis.eval(_RELEASE, 1, self._key("owner", key), worker)

    async def heartbeat(self, worker: str) -> None:
        """Say this worker is alive (workers not heard of for an hour are forgotten)."""
        now = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self._key("workers"), {worker: now})
            pipe.zremrangebyscore(self._key("workers"), "-inf", now - 3600)
            await pipe.execute()

    async def forget_worker(self, worker: str) -> None:
        await self.redis.zrem(self._key("workers"), worker)

    async def live_workers(self, host: str | None = None) -> int:
        """Tail workers that reported recently (on `host` only, when given: worker ids start with it)."""
        since = time.time() - WORKER_ALIVE_SECONDS
        if host is None:
            return int(await self.redis.zcount(self._key("workers"), since, "+inf"))
        workers = await self.redis.zrangebyscore(self._key("workers"), since, "+inf")
        return sum(1 for worker in workers if str(worker).startswith(f"{host}:"))

    # --- status -------------------------------------------------------------------------

    async def meta(self, key: TailKey) -> dict[str, str]:
        raw: Any = await self.redis.hgetall(self._key("meta", key))
        return {str(name): str(value) for name, value in raw.items()}

    async def set_meta(self, key: TailKey, fields: dict[str, Any]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self._key("meta", key), mapping={name: str(value) for name, value in fields.items()})
            pipe.expire(self._key("meta", key), settings.TAIL_BACKLOG_TTL_SECONDS)
            await pipe.execute()

    # --- backlog ------------------------------------------------------------------------

    async def begin(self, key: TailKey, recent: int) -> TailStart:
        """Pick up the tail's backlog (a new epoch when there is none) and its last `recent` lines' texts."""
        entries = _entries(await self.redis.xrevrange(self._key("lines", key), count=max(recent, 1)))
        meta = await self.meta(key)
        epoch = meta.get("epoch", "")
        if not entries:
            # No backlog: numbering starts again, under a new epoch so no page mistakes the new 1, 2, 3.
            epoch = ""
        if not epoch:
            epoch = secrets.token_hex(6)
            await self.set_meta(key, {"epoch": epoch})
        last_seq = line_from_entry(*entries[0])["s"] if entries else 0
        texts = [fields.get("t", "") for _, fields in reversed(entries) if fields.get("k") == "line"]
        return TailStart(epoch=epoch, last_seq=last_seq, recent=texts[-recent:] if recent else [])

    async def append(self, key: TailKey, lines: list[events.TailLine]) -> None:
        """Add numbered lines to the backlog, trimming it to TAIL_BACKLOG_LINES."""
        if not lines:
            return
        name = self._key("lines", key)
        async with self.redis.pipeline(transaction=False) as pipe:
            for line in lines:
                pipe.xadd(
                    name,
                    {"t": line["t"], "at": line["at"], "sev": line["sev"], "k": line["k"]},
                    id=f"{line['s']}-0",
                    maxlen=settings.TAIL_BACKLOG_LINES,
                    approximate=True,
                )
            pipe.expire(name, settings.TAIL_BACKLOG_TTL_SECONDS)
            pipe.expire(self._key("meta", key), settings.TAIL_BACKLOG_TTL_SECONDS)
            await pipe.execute()

    async def read_after(self, key: TailKey, after: int, count: int) -> list[events.TailLine]:
        """Up to `count` lines numbered after `after`, oldest first."""
        if count <= 0:
            return []
        entries = _entries(await self.redis.xrange(self._key("lines", key), min=f"{after + 1}-0", count=count))
        return [line_from_entry(entry_id, fields) for entry_id, fields in entries]

    async def bounds(self, key: TailKey) -> tuple[int, int]:
        """The first and last line numbers the backlog holds; (0, 0) when it is empty."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xrange(self._key("lines", key), count=1)
            pipe.xrevrange(self._key("lines", key), count=1)
            raw_first, raw_last = await pipe.execute()
        first, last = _entries(raw_first), _entries(raw_last)
        if not first or not last:
            return 0, 0
        return line_from_entry(*first[0])["s"], line_from_entry(*last[0])["s"]
