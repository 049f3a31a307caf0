"""Template tags for every console page: state badges, times, sizes and list links.

States are always rendered as glyph + text + a colour class, never colour alone, so that a
colour-blind operator reads the same thing. Times are relative in the cell with the absolute
UTC time in the title. Everything is built with format_html, so API text stays escaped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# state → (glyph, tone); tones are the one palette: crit, warn, ok, info, unknown.
ROUTER_STATE_LOOK: dict[str, tuple[str, str]] = {
    "Running": ("●", "ok"),
    "Error": ("▲", "crit"),
    "Stopped": ("■", "unknown"),
    "Shutdown": ("■", "unknown"),
    "Destroyed": ("■", "unknown"),
    "Starting": ("◷", "info"),
    "Stopping": ("◷", "info"),
    "Migrating": ("◷", "info"),
    "Expunging": ("◷", "info"),
    "Restoring": ("◷", "info"),
    "Unknown": ("?", "unknown"),
}
REDUNDANT_STATE_LOOK: dict[str, tuple[str, str]] = {
    "PRIMARY": ("◆", "ok"),
    "MASTER": ("◆", "ok"),
    "BACKUP": ("◇", "info"),
    "FAULT": ("✖", "crit"),
    "UNKNOWN": ("?", "unknown"),
}


def _badge(glyph: str, text: str, tone: str, title: str = "") -> SafeString:
    if title:
        return format_html('<span class="badge tone-{}" title="{}">{} {}</span>', tone, title, glyph, text)
    return format_html('<span class="badge tone-{}">{} {}</span>', tone, glyph, text)


@register.simple_tag
def state_badge(state: str, stuck: bool = False) -> SafeString:
    """A router state as a badge; a stuck transition turns amber and says so."""
    text = state or "Unknown"
    glyph, tone = ROUTER_STATE_LOOK.get(text, ("?", "unknown"))
    if stuck:
        return _badge(glyph, f"{text} (stuck)", "warn", "in a transitional state for too long")
    return _badge(glyph, text, tone)


@register.simple_tag
def redundant_badge(redundant_state: str, is_redundant: bool = True) -> SafeString:
    """A redundant state as a badge, or a dash for a router that is not part of a pair."""
    if not is_redundant:
        return mark_safe('<span class="muted" title="not a redundant router">—</span>')
    text = (redundant_state or "UNKNOWN").upper()
    glyph, tone = REDUNDANT_STATE_LOOK.get(text, ("?", "unknown"))
    return _badge(glyph, "PRIMARY" if text == "MASTER" else text, tone)


@register.simple_tag
def check_badge(success: object) -> SafeString:
    """A health-check result: passed, failed, or not reported."""
    if success is True:
        return _badge("●", "pass", "ok")
    if success is False:
        return _badge("▲", "FAIL", "crit")
    return _badge("?", "unknown", "unknown")


@register.filter
def utc(moment: datetime | None) -> str:
    """The absolute time in UTC, to the second."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _span(seconds: float) -> str:
    seconds = int(abs(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@register.filter
def span(seconds: float | None) -> str:
    """A number of seconds as "3 h 12 min"; empty when unknown."""
    if seconds is None or seconds == "":
        return ""
    return _span(float(seconds))


@register.filter
def duration_since(moment: datetime | None) -> str:
    """How long ago, as "3 h 12 min"."""
    if moment is None:
        return ""
    return _span((timezone.now() - moment).total_seconds())


@register.filter
def reltime(moment: datetime | None) -> SafeString:
    """A <time> saying "4 min ago", with the absolute UTC time on hover."""
    if moment is None:
        return mark_safe('<span class="muted">never</span>')
    delta = (timezone.now() - moment).total_seconds()
    text = f"{_span(delta)} ago" if delta >= 0 else f"in {_span(delta)}"
    return format_html('<time datetime="{}" title="{}">{}</time>', moment.isoformat(), utc(moment), text)


@register.filter
def human_bytes(value: int | float | None) -> str:
    """A byte count with a binary unit: 23.3 MiB."""
    if value is None or value == "":
        return ""
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(amount) < 1024 or unit == "TiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TiB"


@register.filter
def percent(value: float | None, digits: int = 0) -> str:
    """A ratio or a percentage as "97 %": values up to 1 are read as ratios."""
    if value is None or value == "":
        return ""
    number = float(value)
    if -1 <= number <= 1:
        number *= 100
    return f"{number:.{int(digits)}f} %"


@register.simple_tag(takes_context=True)
def sort_query(context: template.Context, column: str) -> str:
    """The query string that sorts the list by a column, flipping direction when it already does."""
    current = context["criteria"].sort
    target = f"-{column}" if current == column else column
    base = context["query_without_sort"]
    extra = urlencode({"sort": target})
    return f"?{base}&{extra}" if base else f"?{extra}"


@register.simple_tag(takes_context=True)
def sort_mark(context: template.Context, column: str) -> str:
    """▲ or ▼ next to the column the list is sorted by."""
    current = context["criteria"].sort
    if current == column:
        return "▲"
    if current == f"-{column}":
        return "▼"
    return ""


@register.simple_tag(takes_context=True)
def page_query(context: template.Context, number: int) -> str:
    """The query string of another page of the same list."""
    base = context["query_without_page"]
    extra = urlencode({"page": number})
    return f"?{base}&{extra}" if base else f"?{extra}"


@register.simple_tag
def filter_query(**params: object) -> str:
    """A list URL query for a set of filters, e.g. from a summary chip."""
    return "?" + urlencode({key: value for key, value in params.items() if value not in (None, "")})
