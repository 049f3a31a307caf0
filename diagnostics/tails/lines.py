"""From bytes a router printed to the lines a page shows: split, bounded, made safe, classified, timed.

Pure and Django-free. A log line is text from a machine we do not control: it is decoded as
UTF-8 with replacement, cut at MAX_LINE_BYTES (a line that never ends cannot grow the worker's
memory), and its control characters are written as visible `\\xNN` marks, as evidence is on
the router page, so an ANSI escape or a NUL can neither vanish nor act on a terminal or a page.

Each line gets a severity for highlighting, from the same classifier the `logs` probe uses
(CLOUDSTACK.md §5.23's benign ERROR lines are "benign", to be dimmed; ERROR, CRITICAL, failure
words, `nf_conntrack: table full` and Python tracebacks are "crit"; WARNING is "warn"), and
a time: the line's own timestamp when it has one the VR writes (so both members of a
redundant pair can be laid on one time axis), else when the worker read it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from diagnostics.probes import logs

MAX_LINE_BYTES = 8192
CUT_MARK = " …[line cut at 8 KiB]"

CRIT = "crit"
WARN = "warn"
BENIGN = "benign"
PLAIN = ""

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_QEMU_STAMP = re.compile(r"^(?P<date>\d{4}-\d{2}-\d{2}) (?P<time>\d{2}:\d{2}:\d{2})\.(?P<ms>\d{3})\+0000: ")
# keepalived writing to a console or file itself: `Wed Dec  2 14:11:03 2026: Starting Keepalived ...`.
_CONSOLE_STAMP = re.compile(
    r"^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?P<month>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<time>\d{2}:\d{2}:\d{2}) "
    r"(?P<year>\d{4}): "
)


def visible(text: str) -> str:
    """Control characters other than tab written as `\\xNN`."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def decode_line(raw: bytes) -> str:
    """One line's bytes as safe text: UTF-8 (bad bytes replaced), no trailing CR, controls visible."""
    return visible(raw.removesuffix(b"\r").decode("utf-8", errors="replace"))


class LineSplitter:
    """Cuts a byte stream into lines; a partial line waits for its end, but never past MAX_LINE_BYTES."""

    def __init__(self, max_bytes: int = MAX_LINE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._partial = bytearray()
        self._cutting = False

    def feed(self, data: bytes) -> list[str]:
        """The lines completed by `data`, decoded."""
        lines: list[str] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                self._keep(data[start:], lines)
                return lines
            self._keep(data[start:end], lines)
            if self._cutting:
                # The rest of an over-long line: its cut start was already emitted.
                self._cutting = False
            else:
                lines.append(decode_line(bytes(self._partial)))
            self._partial.clear()
            start = end + 1

    def _keep(self, piece: bytes, lines: list[str]) -> None:
        if self._cutting:
            return
        room = self.max_bytes - len(self._partial)
        if len(piece) <= room:
            self._partial.extend(piece)
            return
        self._partial.extend(piece[:room])
        lines.append(decode_line(bytes(self._partial)) + CUT_MARK)
        self._partial.clear()
        self._cutting = True

    def flush(self) -> list[str]:
        """The unfinished last line, if any (the stream ended without a newline)."""
        if self._cutting or not self._partial:
            self._partial.clear()
            self._cutting = False
            return []
        line = decode_line(bytes(self._partial))
        self._partial.clear()
        return [line]


class SeverityTracker:
    """Severity of each line of one stream; remembers an open Python traceback across lines."""

    def __init__(self) -> None:
        self._in_traceback = False

    def severity(self, text: str) -> str:
        """ "crit", "warn", "benign" or "" for the next line of the stream."""
        if logs.TRACEBACK_START in text:
            self._in_traceback = True
            return CRIT
        if self._in_traceback:
            if not text.strip() or text[0] in " \t" or text.startswith(logs.TRACEBACK_CHAIN):
                return CRIT
            # The exception line ends the traceback and belongs to it.
            self._in_traceback = False
            return CRIT
        line = logs.classify(0, text)
        if line.benign:
            return BENIGN
        if line.error:
            return CRIT
        if line.level in ("WARNING", "WARN") or re.search(r"\bWARN(?:ING)?\b", text):
            return WARN
        return PLAIN


def line_time_ms(text: str, received: datetime) -> int | None:
    """The line's own timestamp in epoch milliseconds (UTC, as on a VR), or None when it has none.

    Syslog lines carry no year: the year is the one that puts the line not after `received`
    (a line of 31 December read on 1 January belongs to the previous year).
    """
    stamp = logs.read_timestamp(text).timestamp
    if stamp is None and (match := _QEMU_STAMP.match(text)):
        stamp = f"{match['date']}T{match['time']}.{match['ms']}"
    if stamp is None and (match := _CONSOLE_STAMP.match(text)):
        try:
            month = datetime.strptime(match["month"], "%b").month
        except ValueError:
            return None
        stamp = f"{match['year']}-{month:02d}-{int(match['day']):02d}T{match['time']}"
    if stamp is None:
        return None
    try:
        if stamp.startswith("--"):
            moment = datetime.fromisoformat(f"{received.year}{stamp[1:]}").replace(tzinfo=UTC)
            if moment > received + timedelta(days=1):
                moment = moment.replace(year=received.year - 1)
        else:
            moment = datetime.fromisoformat(stamp).replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(moment.timestamp() * 1000)


def already_shown(previous: Sequence[str], incoming: Sequence[str], minimum: int = 3) -> int | None:
    """How many first lines of `incoming` were shown before a reconnect, or None when it cannot tell.

    After a reconnect the tail starts again from the file's last lines (for the agent log, the
    matching lines among its last few thousand); the lines shown last must appear in them, the
    newer ones after. The place where the longest run of the last shown lines ends is where the
    new lines begin (the latest such place when runs tie). A run shorter than `minimum` lines
    (or than all that was shown) could be chance, and tells nothing.
    """
    if not previous or not incoming:
        return None
    last = previous[-1]
    best_length, best_end = 0, -1
    for end in range(len(incoming) - 1, -1, -1):
        if incoming[end] != last:
            continue
        length = 1
        while length < len(previous) and length <= end and incoming[end - length] == previous[-1 - length]:
            length += 1
        if length > best_length:
            best_length, best_end = length, end
    if best_length < min(minimum, len(previous)):
        return None
    return best_end + 1
