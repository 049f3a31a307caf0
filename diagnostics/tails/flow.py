"""How many lines one viewer of a tail may be sent now: a window of unacknowledged lines and a rate.

Pure bookkeeping for the tail consumer, one per viewer. The page acknowledges the lines it
has shown; at most `window` lines are sent and not yet acknowledged (a paused page, or a
browser that cannot keep up, stops acknowledging, so nothing piles up in the web tier's
buffers), and at most `rate` lines per second with a burst of `burst` (a flood is cut to a
pace a browser can render). Lines held back stay in the tail's backlog in Redis; a viewer
that falls further behind than the backlog keeps is told how many it skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ViewerFlow:
    """One viewer's position in a tail: sent up to `sent`, shown up to `acked`, the newest is `latest`."""

    window: int
    rate: float
    burst: float
    sent: int = 0
    acked: int = 0
    latest: int = 0
    tokens: float = field(default=-1.0)
    updated: float = 0.0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.burst

    def start_at(self, position: int) -> None:
        """Begin after line `position` (0: from the start of the backlog), as if shown."""
        self.sent = self.acked = max(0, position)
        self.latest = max(self.latest, self.sent)

    def _refill(self, now: float) -> None:
        if self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def room(self, now: float) -> int:
        """How many more lines may be sent right now."""
        self._refill(now)
        return max(0, min(self.window - (self.sent - self.acked), int(self.tokens)))

    def record_sent(self, last_seq: int, count: int, now: float) -> None:
        """`count` lines up to `last_seq` went out (markers and skipped lines cost nothing)."""
        self._refill(now)
        self.tokens -= count
        self.sent = max(self.sent, last_seq)
        self.latest = max(self.latest, self.sent)

    def skip_to(self, seq: int) -> None:
        """Lines up to `seq` will never be sent (they left the backlog): count them as shown."""
        self.sent = max(self.sent, seq)
        self.acked = max(self.acked, seq)

    def ack(self, seq: int) -> None:
        """The page has shown every line up to `seq` (ignores nonsense beyond what was sent)."""
        self.acked = max(self.acked, min(seq, self.sent))

    def saw(self, seq: int) -> None:
        """The tail has reached line `seq`."""
        self.latest = max(self.latest, seq)

    @property
    def behind(self) -> bool:
        return self.latest > self.sent

    @property
    def window_full(self) -> bool:
        return self.sent - self.acked >= self.window

    def seconds_until_room(self, now: float) -> float:
        """When the rate will allow one more line (0 if it already does); the window waits for acks instead."""
        self._refill(now)
        if self.tokens >= 1:
            return 0.0
        return (1 - self.tokens) / self.rate
