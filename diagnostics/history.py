"""A router's health over a time range, downsampled in the database: min / avg / max per time bucket.

The bucket width is sized to the range (`bucket_width`) so a chart never ships more than a
few hundred points per series, whatever the sampling rate; every series keeps its minimum,
maximum and average per bucket, so a one-minute peak survives a 30-day view. Buckets of an
hour or more are read from the hourly rollups (diagnostics.rollup), with the last hours not
yet rolled up read from the raw samples, aligned so no bucket mixes the two; shorter buckets
read the raw samples. The per-interface and per-CPU series live in JSON objects and are
aggregated per key in SQL too (`jsonb_each` on PostgreSQL, `json_each` on SQLite): nothing
here loops over samples in Python.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Count, F, Func, IntegerField, Max, Min, QuerySet, Sum, Value
from django.utils import timezone

from diagnostics.models import FindingEvent, HealthRollup, HealthSample, RollupSpan
from diagnostics.series import KEYED_GROUPS, METRIC_NAMES
from vrconsole.models import Router, RouterStateChange

# Range presets: name -> (length in seconds, bucket width in seconds).
PRESETS: dict[str, tuple[int, int]] = {
    "1h": (3600, 60),
    "24h": (86400, 300),
    "7d": (7 * 86400, 3600),
    "30d": (30 * 86400, 7200),
}
DEFAULT_RANGE = "24h"
# Widths a custom range may get: each divides the next or a day, so buckets stay aligned.
NICE_WIDTHS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)
MAX_POINTS = 400
MAX_RANGE_DAYS = 3650
# Markers drawn on the time axis at most (the newest win).
MAX_MARKERS = 500


class RangeError(ValueError):
    """A range the console cannot draw; the message says why, for the operator."""


@dataclass(frozen=True)
class TimeRange:
    """[start, end) in UTC, the preset it came from (or "custom"), and its bucket width."""

    start: datetime
    end: datetime
    name: str
    width: int

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def bucket_width(seconds: float) -> int:
    """The smallest of NICE_WIDTHS giving at most MAX_POINTS buckets over `seconds`."""
    wanted = seconds / MAX_POINTS
    return next((width for width in NICE_WIDTHS if width >= wanted), NICE_WIDTHS[-1])


def _parse_time(text: str, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise RangeError(f"{what} {text[:40]!r} is not a date and time (e.g. 2024-05-01T02:00Z)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_range(params: Mapping[str, str], now: datetime | None = None) -> TimeRange:
    """The range of a query string: `range=1h|24h|7d|30d`, or `start` (and optional `end`) in ISO 8601, UTC."""
    now = now or timezone.now()
    start_text, end_text = params.get("start", ""), params.get("end", "")
    if start_text:
        start = _parse_time(start_text, "start")
        end = _parse_time(end_text, "end") if end_text else now
        if end <= start:
            raise RangeError("the end of the range must be after its start")
        if end - start > timedelta(days=MAX_RANGE_DAYS):
            raise RangeError(f"a range may span at most {MAX_RANGE_DAYS} days")
        if end - start < timedelta(minutes=5):
            raise RangeError("a range must span at least 5 minutes")
        return TimeRange(start, end, "custom", bucket_width((end - start).total_seconds()))
    name = params.get("range") or DEFAULT_RANGE
    if name not in PRESETS:
        raise RangeError(f"unknown range {name[:20]!r}: use one of {', '.join(PRESETS)} or start/end")
    length, width = PRESETS[name]
    return TimeRange(now - timedelta(seconds=length), now, name, width)


class EpochBucket(Func):
    """The index of the `width`-second bucket a datetime falls in (seconds since 1970 // width)."""

    output_field = IntegerField()

    def __init__(self, expression: Any, width: int) -> None:
        super().__init__(expression, Value(int(width)))
        self._width = int(width)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        moment, params = compiler.compile(self.source_expressions[0])
        # The width is an int of ours, written in the SQL: a parameter there would make the
        # SELECT and GROUP BY expressions differ under server-side binding.
        # date_part is double precision (EXTRACT is numeric, several times slower per row).
        return f"FLOOR(date_part('epoch', {moment}) / {self.width})::bigint", list(params)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        moment, params = compiler.compile(self.source_expressions[0])
        # The strftime format travels as a parameter: a literal %s would be taken for a placeholder.
        return f"(CAST(strftime(%s, {moment}) AS INTEGER) / {self.width})", ["%s", *params]

    @property
    def width(self) -> int:
        return self._width


# --- Aggregates of the fixed series ------------------------------------------------------


def raw_aggregates(metrics: Sequence[str] = METRIC_NAMES) -> dict[str, Any]:
    """ORM aggregates of raw samples: per series its min, max, sum and count of values."""
    aggregates: dict[str, Any] = {"samples": Count("id"), "last_collection": Max("collection_id")}
    for name in metrics:
        aggregates.update(
            {f"{name}__min": Min(name), f"{name}__max": Max(name), f"{name}__sum": Sum(name), f"{name}__n": Count(name)}
        )
    return aggregates


def rollup_aggregates(metrics: Sequence[str] = METRIC_NAMES) -> dict[str, Any]:
    """ORM aggregates of rollups: the same four values, combined (min of minima, sum of sums...)."""
    aggregates: dict[str, Any] = {"samples": Sum("samples"), "last_collection": Value(None, IntegerField())}
    for name in metrics:
        aggregates.update(
            {
                f"{name}__min": Min(f"{name}_min"),
                f"{name}__max": Max(f"{name}_max"),
                f"{name}__sum": Sum(f"{name}_sum"),
                f"{name}__n": Sum(f"{name}_n"),
            }
        )
    return aggregates


def bucketed(
    queryset: QuerySet, moment: str, width: int, aggregates: Mapping[str, Any], by: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """One row per `width`-second bucket (key `bucket`) and `by` fields, the aggregates computed by the database."""
    return list(
        queryset.annotate(bucket=EpochBucket(F(moment), width))
        .values(*by, "bucket")
        .annotate(**aggregates)
        .order_by(*by, "bucket")
    )


# --- Aggregates of the keyed (per-interface, per-CPU) series -------------------------------


def _json_number(vendor: str, alias: str, index: int) -> str:
    if vendor == "postgresql":
        return f"({alias}.value ->> {index})::float8"
    return f"json_extract({alias}.value, '$[{index}]')"


def _json_each(vendor: str, table: str, column: str) -> str:
    if vendor == "postgresql":
        return f"{table} s CROSS JOIN LATERAL jsonb_each(s.{column}) e"
    return f"{table} s, json_each(s.{column}) e"


def _bucket_sql(vendor: str, column: str, width: int) -> tuple[str, list[Any]]:
    if vendor == "postgresql":
        return f"FLOOR(date_part('epoch', s.{column}) / {int(width)})::bigint", []
    return f"(CAST(strftime(%s, s.{column}) AS INTEGER) / {int(width)})", ["%s"]


def keyed_aggregate_sql(group: str, *, source: str, width: int, per_router: bool, where: str) -> tuple[str, list[Any]]:
    """SQL aggregating one JSON group per (router,) bucket and key into min, max, sum, n per field.

    `source` is "raw" (HealthSample: one value per field) or "rollup" (HealthRollup: four
    values per field). `where` is a condition on alias `s` written by the caller with %s
    placeholders for its parameters, which follow the ones returned here.
    """
    vendor = connection.vendor
    fields = KEYED_GROUPS[group]
    if source == "raw":
        table, moment = HealthSample._meta.db_table, "at"
    else:
        table, moment = HealthRollup._meta.db_table, "start"
    bucket, params = _bucket_sql(vendor, moment, width)
    # Each number is taken out of the JSON once per row (v0, v1, ...), then aggregated.
    stored = len(fields) * (1 if source == "raw" else 4)
    values = ", ".join(f"{_json_number(vendor, 'e', i)} AS v{i}" for i in range(stored))
    columns = []
    for index, _name in enumerate(fields):
        if source == "raw":
            columns += [f"MIN(x.v{index})", f"MAX(x.v{index})", f"SUM(x.v{index})", f"COUNT(x.v{index})"]
        else:
            base = index * 4
            columns += [f"MIN(x.v{base})", f"MAX(x.v{base + 1})", f"SUM(x.v{base + 2})", f"SUM(x.v{base + 3})"]
    router = "x.router_id, " if per_router else ""
    group_by = "1, 2, 3" if per_router else "1, 2"
    # OFFSET 0 keeps PostgreSQL from folding the extraction back into every aggregate
    # (SQLite wants a LIMIT before an OFFSET: -1 is "no limit").
    fence = "OFFSET 0" if vendor == "postgresql" else "LIMIT -1 OFFSET 0"
    sql = (
        f"SELECT {router}x.bucket, x.key, {', '.join(columns)} FROM ("
        f"SELECT s.router_id, {bucket} AS bucket, e.key, {values} "
        f"FROM {_json_each(vendor, table, group)} WHERE {where} {fence}) x GROUP BY {group_by}"
    )
    return sql, params


def fetch_keyed(
    group: str, *, source: str, width: int, router_id: int, start: datetime, end: datetime, span: int = RollupSpan.HOUR
) -> list[tuple]:
    """Rows (bucket, key, min0, max0, sum0, n0, min1, ...) of one router's JSON group over [start, end)."""
    moment = "at" if source == "raw" else "start"
    where = f"s.router_id = %s AND s.{moment} >= %s AND s.{moment} < %s"
    where_params: list[Any] = [router_id, _db_time(start), _db_time(end)]
    if source != "raw":
        where += " AND s.span = %s"
        where_params.append(int(span))
    sql, params = keyed_aggregate_sql(group, source=source, width=width, per_router=False, where=where)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *where_params])
        return [tuple(row) for row in cursor.fetchall()]


def _db_time(moment: datetime) -> Any:
    """A datetime as this database compares it in raw SQL (naive UTC text on SQLite)."""
    return connection.ops.adapt_datetimefield_value(moment)


# --- The result a chart is built from -----------------------------------------------------


@dataclass
class Stat:
    """One series over the buckets: minimum, average and maximum per bucket (None: no value)."""

    mins: list[float | None]
    avgs: list[float | None]
    maxs: list[float | None]

    @classmethod
    def empty(cls, count: int) -> Stat:
        return cls([None] * count, [None] * count, [None] * count)

    def set(self, index: int, low: Any, high: Any, total: Any, n: Any) -> None:
        if not n:
            return
        self.mins[index] = _clean(low)
        self.maxs[index] = _clean(high)
        self.avgs[index] = _clean(float(total) / float(n)) if total is not None else None

    def has_values(self) -> bool:
        return any(value is not None for value in self.avgs)


def _clean(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass
class History:
    """A router's series over a range, bucket by bucket, as the chart builders read it."""

    range: TimeRange
    first_bucket: int
    count: int
    width: int
    source: str
    metrics: dict[str, Stat]
    samples: list[int]
    collections: list[int | None]
    keyed: dict[str, dict[str, dict[str, Stat]]] = field(default_factory=dict)
    markers: list[Marker] = field(default_factory=list)
    note: str = ""

    def bucket_start(self, index: int) -> datetime:
        return datetime.fromtimestamp((self.first_bucket + index) * self.width, tz=UTC)

    @property
    def total_samples(self) -> int:
        return sum(self.samples)


@dataclass(frozen=True)
class Marker:
    """Something that happened on the router at a moment: a finding opening or resolving, a state change."""

    at: datetime
    kind: str  # finding-opened, finding-reopened, finding-resolved, state
    label: str
    severity: str = ""
    collection_id: int | None = None


def _fill(history: History, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        index = int(row["bucket"]) - history.first_bucket
        if not 0 <= index < history.count:
            continue
        samples = int(row["samples"] or 0)
        history.samples[index] += samples
        if samples == 1 and row.get("last_collection"):
            history.collections[index] = int(row["last_collection"])
        for name in history.metrics:
            history.metrics[name].set(
                index, row[f"{name}__min"], row[f"{name}__max"], row[f"{name}__sum"], row[f"{name}__n"]
            )


def _fill_keyed(history: History, group: str, rows: list[tuple]) -> None:
    fields = KEYED_GROUPS[group]
    series = history.keyed.setdefault(group, {})
    for row in rows:
        index = int(row[0]) - history.first_bucket
        if not 0 <= index < history.count:
            continue
        key = str(row[1])
        stats = series.setdefault(key, {name: Stat.empty(history.count) for name in fields})
        for position, name in enumerate(fields):
            low, high, total, n = row[2 + 4 * position : 6 + 4 * position]
            stats[name].set(index, low, high, total, n)


def rolled_up_until(router_id: int) -> datetime | None:
    """The end of the router's newest hourly rollup: raw samples after it are not rolled up yet."""
    newest = HealthRollup.objects.filter(router_id=router_id, span=RollupSpan.HOUR).aggregate(Max("start"))[
        "start__max"
    ]
    return newest + timedelta(seconds=RollupSpan.HOUR) if newest is not None else None


def router_history(router: Router, time_range: TimeRange, *, markers: bool = True) -> History:
    """The router's series over the range, downsampled by the database (see the module docstring)."""
    width = time_range.width
    note = ""
    raw_cutoff = timezone.now() - timedelta(days=settings.HEALTH_RETENTION_DAYS)
    if width < RollupSpan.HOUR and time_range.start < raw_cutoff:
        width = int(RollupSpan.HOUR)
        note = (
            f"Shown per hour: raw samples are kept {settings.HEALTH_RETENTION_DAYS} days "
            "(HEALTH_RETENTION_DAYS), older history as hourly aggregates."
        )
    first = math.floor(time_range.start.timestamp() / width)
    last = math.ceil(time_range.end.timestamp() / width)
    count = max(last - first, 1)
    history = History(
        range=time_range,
        first_bucket=first,
        count=count,
        width=width,
        source="raw",
        metrics={name: Stat.empty(count) for name in METRIC_NAMES},
        samples=[0] * count,
        collections=[None] * count,
        note=note,
    )
    start = datetime.fromtimestamp(first * width, tz=UTC)
    end = datetime.fromtimestamp(last * width, tz=UTC)
    raw_from = start
    if width >= RollupSpan.HOUR:
        until = rolled_up_until(router.pk)
        if until is not None and until > start:
            # Whole buckets from the rollups, the rest from the raw samples: no bucket mixes both.
            raw_from = min(datetime.fromtimestamp(math.floor(until.timestamp() / width) * width, tz=UTC), end)
            rollups = HealthRollup.objects.filter(
                router=router, span=RollupSpan.HOUR, start__gte=start, start__lt=raw_from
            )
            _fill(history, bucketed(rollups, "start", width, rollup_aggregates()))
            for group in KEYED_GROUPS:
                _fill_keyed(
                    history,
                    group,
                    fetch_keyed(group, source="rollup", width=width, router_id=router.pk, start=start, end=raw_from),
                )
            history.source = "hourly" if raw_from >= end else "hourly+raw"
    if raw_from < end:
        samples = HealthSample.objects.filter(router=router, at__gte=raw_from, at__lt=end)
        _fill(history, bucketed(samples, "at", width, raw_aggregates()))
        for group in KEYED_GROUPS:
            _fill_keyed(
                history,
                group,
                fetch_keyed(group, source="raw", width=width, router_id=router.pk, start=raw_from, end=end),
            )
    if markers:
        history.markers = router_markers(router, time_range.start, time_range.end)
    return history


def router_markers(router: Router, start: datetime, end: datetime) -> list[Marker]:
    """Findings opened, reopened and resolved, and state changes, on the router in [start, end)."""
    found: list[Marker] = []
    events = FindingEvent.objects.filter(router=router, at__gte=start, at__lt=end).order_by("-at")[:MAX_MARKERS]
    for event in events:
        found.append(
            Marker(
                at=event.at,
                kind=f"finding-{event.kind}",
                label=f"{event.rule} {event.kind}" + (f": {event.title}" if event.title else ""),
                severity=event.severity,
                collection_id=event.collection_id,
            )
        )
    changes = RouterStateChange.objects.filter(router=router, at__gte=start, at__lt=end).order_by("-at")[:MAX_MARKERS]
    for change in changes:
        found.append(
            Marker(
                at=change.at,
                kind="state",
                label=f"{change.get_kind_display()}: {change.from_state or '∅'} → {change.to_state or '∅'}",
            )
        )
    return sorted(found, key=lambda marker: marker.at)


def samples_for_export(router: Router, time_range: TimeRange) -> QuerySet:
    """The raw samples of the range, oldest first (an export streams them)."""
    return HealthSample.objects.filter(router=router, at__gte=time_range.start, at__lt=time_range.end).order_by(
        "at", "id"
    )


def rollups_for_export(router: Router, time_range: TimeRange) -> QuerySet:
    """The hourly rollups of the range, oldest first."""
    return HealthRollup.objects.filter(
        router=router, span=RollupSpan.HOUR, start__gte=time_range.start, start__lt=time_range.end
    ).order_by("start")
