"""Fleet trends: where the fleet is getting worse, read from aggregates only.

"Now" is each present router's latest health sample (one row per router, found through the
(router, at) index); "over the range" comes from the hourly rollups for a day and the daily
ones beyond, never from every sample of every router; the counts over time come from the
FleetCount rows the history job writes. Every function is a fixed number of queries, so the
page costs the same with a year of history as with a day. No HTTP here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Avg, F, FloatField, Max, OuterRef, Subquery, Sum
from django.db.models.functions import Cast
from django.utils import timezone

from diagnostics.charts import build_fleet_lines_figure, build_sparkline
from diagnostics.history import EpochBucket
from diagnostics.models import FleetCount, FleetCountDimension, HealthRollup, HealthSample, RollupSpan, RouterStatus
from diagnostics.series import METRICS_BY_NAME
from vrconsole.models import Router

RANGES: dict[str, int] = {"24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "90d": 90 * 86400, "365d": 365 * 86400}
DEFAULT_RANGE = "7d"
RANKS = ("now", "avg", "peak")
DEFAULT_RANK = "avg"
TOP_N = 10
# The series of the top-N tables: (series, title).
TOP_SERIES = (
    ("conntrack_percent", "conntrack fill"),
    ("softirq_percent", "softirq share"),
    ("disk_root_percent", "disk use of /"),
    ("disk_log_percent", "disk use of /var/log"),
    ("cpu_percent", "CPU busy"),
)
STATUS_COLORS = {"critical": "#e0424b", "warning": "#e8a317", "ok": "#2fb464", "unknown": "#8d97a3"}
SPARK_POINTS = 48


@dataclass
class TopRow:
    """One router in a top-N table."""

    router_id: int
    name: str
    uuid: str
    now: float | None = None
    avg: float | None = None
    peak: float | None = None
    sparkline: str = ""


@dataclass
class TopTable:
    series: str
    title: str
    unit: str
    rows: list[TopRow] = field(default_factory=list)


def span_for(seconds: int) -> int:
    """Hourly rollups for ranges up to two days, daily ones beyond."""
    return int(RollupSpan.HOUR) if seconds <= 2 * 86400 else int(RollupSpan.DAY)


def latest_samples(now: datetime) -> Any:
    """Each present router's latest sample, if it is fresh (two sweeps or 15 min, whichever is longer)."""
    fresh = now - timedelta(seconds=max(2 * settings.SWEEP_INTERVAL_SECONDS, 900))
    latest = HealthSample.objects.filter(router=OuterRef("pk"), at__gte=fresh).order_by("-at").values("pk")[:1]
    ids = Router.objects.filter(removed_at__isnull=True).annotate(latest=Subquery(latest)).filter(latest__isnull=False)
    return HealthSample.objects.filter(pk__in=ids.values("latest"))


def _range_stats(start: datetime, span: int) -> dict[int, dict[str, tuple[float | None, float | None]]]:
    """Per present router, per TOP_SERIES series: (average, peak) over the range, in one query."""
    aggregates: dict[str, Any] = {}
    for series, _ in TOP_SERIES:
        aggregates[f"{series}__avg"] = Cast(Sum(f"{series}_sum"), FloatField()) / Cast(Sum(f"{series}_n"), FloatField())
        aggregates[f"{series}__peak"] = Max(f"{series}_max")
    rows = (
        HealthRollup.objects.filter(span=span, start__gte=_aligned(start, span), router__removed_at__isnull=True)
        .values("router_id")
        .annotate(**aggregates)
    )
    return {
        row["router_id"]: {series: (row[f"{series}__avg"], row[f"{series}__peak"]) for series, _ in TOP_SERIES}
        for row in rows
    }


def _latest_values(now: datetime) -> dict[int, dict[str, float | None]]:
    """Per present router with a fresh sample, the TOP_SERIES values of its latest sample."""
    names = [series for series, _ in TOP_SERIES]
    return {row["router_id"]: row for row in latest_samples(now).values("router_id", *names)}


def top_tables(start: datetime, now: datetime, rank: str, span: int) -> list[TopTable]:
    """One table per TOP_SERIES: the TOP_N present routers by `rank` (now, avg, peak), with sparklines.

    Three queries read one row per router (the range's aggregates, the latest samples) and
    rank them; one more draws every sparkline.
    """
    over_range = _range_stats(start, span)
    latest = _latest_values(now)
    tables = []
    for series, title in TOP_SERIES:

        def key(router_id: int, series: str = series) -> float:
            if rank == "now":
                value = latest.get(router_id, {}).get(series)
            else:
                average, peak = over_range.get(router_id, {}).get(series, (None, None))
                value = average if rank == "avg" else peak
            return value if value is not None else float("-inf")

        candidates = set(latest) if rank == "now" else set(over_range)
        chosen = [pk for pk in sorted(candidates, key=key, reverse=True) if key(pk) != float("-inf")][:TOP_N]
        table = TopTable(series, title, METRICS_BY_NAME[series].unit)
        for router_id in chosen:
            average, peak = over_range.get(router_id, {}).get(series, (None, None))
            table.rows.append(
                TopRow(router_id, "", "", now=latest.get(router_id, {}).get(series), avg=average, peak=peak)
            )
        tables.append(table)
    everyone = {row.router_id for table in tables for row in table.rows}
    names = {
        pk: (name or uuid, uuid)
        for pk, name, uuid in Router.objects.filter(pk__in=everyone).values_list("pk", "name", "uuid")
    }
    lines = _sparklines(everyone, start, now, span)
    for table in tables:
        for row in table.rows:
            row.name, row.uuid = names.get(row.router_id, ("?", ""))
            row.sparkline = lines.get((row.router_id, table.series), "")
    return tables


def _aligned(moment: datetime, width: int) -> datetime:
    return datetime.fromtimestamp(math.floor(moment.timestamp() / width) * width, tz=UTC)


def _sparklines(router_ids: set[int], start: datetime, now: datetime, span: int) -> dict[tuple[int, str], str]:
    """Each router's average of each TOP_SERIES over SPARK_POINTS buckets of the range, as SVG paths, in one query."""
    if not router_ids:
        return {}
    width = max(span, math.ceil((now - start).total_seconds() / SPARK_POINTS / span) * span)
    first = math.floor(start.timestamp() / width)
    points: dict[tuple[int, str], list[float | None]] = {}
    sums: dict[str, Any] = {}
    for series, _ in TOP_SERIES:
        sums[f"{series}__total"] = Sum(f"{series}_sum")
        sums[f"{series}__n"] = Sum(f"{series}_n")
    buckets = (
        HealthRollup.objects.filter(router_id__any=list(router_ids), span=span, start__gte=_aligned(start, span))
        .annotate(bucket=EpochBucket(F("start"), width))
        .values("router_id", "bucket")
        .annotate(**sums)
    )
    for entry in buckets:
        index = int(entry["bucket"]) - first
        if not 0 <= index < SPARK_POINTS:
            continue
        for series, _ in TOP_SERIES:
            if entry[f"{series}__n"]:
                line = points.setdefault((entry["router_id"], series), [None] * SPARK_POINTS)
                line[index] = float(entry[f"{series}__total"]) / float(entry[f"{series}__n"])
    return {key: build_sparkline(values) for key, values in points.items()}


def counts_figure(dimension: str, start: datetime, now: datetime, title: str, y_title: str) -> dict[str, Any]:
    """A stacked chart of one FleetCount dimension over the range (the average count per bucket)."""
    seconds = (now - start).total_seconds()
    width = max(300, math.ceil(seconds / 300 / 300) * 300)
    first = math.floor(start.timestamp() / width)
    count = max(math.ceil(now.timestamp() / width) - first, 1)
    rows = (
        FleetCount.objects.filter(dimension=dimension, at__gte=start)
        .annotate(bucket=EpochBucket(F("at"), width))
        .values("key", "bucket")
        .annotate(value=Avg("value"))
    )
    series: dict[str, list[float | None]] = {}
    if dimension == FleetCountDimension.STATUS:
        series = {status: [None] * count for status in RouterStatus.values}
    for entry in rows:
        index = int(entry["bucket"]) - first
        if 0 <= index < count:
            series.setdefault(entry["key"], [None] * count)[index] = round(float(entry["value"]), 2)
    first_moment = datetime.fromtimestamp(first * width, tz=UTC)
    colors = STATUS_COLORS if dimension == FleetCountDimension.STATUS else {}
    return build_fleet_lines_figure(title, y_title, first_moment, width, series, colors)


def fleet_trends(range_name: str, rank: str, now: datetime | None = None) -> dict[str, Any]:
    """Everything the trends page shows for a range and a ranking."""
    now = now or timezone.now()
    seconds = RANGES[range_name]
    start = now - timedelta(seconds=seconds)
    span = span_for(seconds)
    return {
        "tables": top_tables(start, now, rank, span),
        "status_figure": counts_figure(FleetCountDimension.STATUS, start, now, "routers per status", "routers"),
        "category_figure": counts_figure(
            FleetCountDimension.CATEGORY, start, now, "open findings per category", "findings"
        ),
        "start": start,
        "now": now,
        "span": span,
    }
