"""Config snapshot diffs: a unified diff between two stored snapshots, secrets redacted again.

Snapshots are stored redacted (diagnostics.probes.config); the diff redacts each line once
more before showing it, so a snapshot stored before a redaction rule existed never shows a
secret either. Pure apart from reading the two rows' text.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from diagnostics.models import ConfigSnapshot
from diagnostics.probes.config import redact

# A diff longer than this is cut (with a line saying so): the page must stay usable.
MAX_DIFF_LINES = 20000


@dataclass(frozen=True)
class DiffLine:
    """One line of a unified diff and how to show it (add, remove, hunk, header, context)."""

    text: str
    kind: str


def redacted_lines(content: str) -> list[str]:
    return [redact(line) for line in content.splitlines()]


def _label(snapshot: ConfigSnapshot) -> str:
    return f"{snapshot.kind} #{snapshot.pk} {snapshot.taken_at:%Y-%m-%d %H:%M:%S} UTC"


def unified_diff(older: ConfigSnapshot, newer: ConfigSnapshot, context: int = 3) -> list[DiffLine]:
    """The unified diff from `older` to `newer`, line by line with its kind; empty when identical."""
    lines = []
    for text in difflib.unified_diff(
        redacted_lines(older.content),
        redacted_lines(newer.content),
        fromfile=_label(older),
        tofile=_label(newer),
        n=context,
        lineterm="",
    ):
        if text.startswith(("---", "+++")):
            kind = "header"
        elif text.startswith("@@"):
            kind = "hunk"
        elif text.startswith("+"):
            kind = "add"
        elif text.startswith("-"):
            kind = "remove"
        else:
            kind = "context"
        lines.append(DiffLine(text, kind))
        if len(lines) >= MAX_DIFF_LINES:
            lines.append(DiffLine(f"… diff cut at {MAX_DIFF_LINES} lines", "hunk"))
            break
    return lines
