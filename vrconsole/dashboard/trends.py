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


def top_table(series: str, title: str, start: datetime, now: datetime, rank: str, span: int) -> TopTable:
    """The TOP_N present routers by one series: now, average and peak over the range, and a sparkline."""
    table = TopTable(series, title, METRICS_BY_NAME[series].unit)
    rollups = HealthRollup.objects.filter(span=span, start__gte=_aligned(start, span), router__removed_at__isnull=True)
    over_range = (
        rollups.values("router_id")
        .annotate(
            avg=Cast(Sum(f"{series}_sum"), FloatField()) / Cast(Sum(f"{series}_n"), FloatField()),
            peak=Max(f"{series}_max"),
        )
        .filter(**{"avg__isnull": False})
    )
    if rank == "now":
        ordered = (
            latest_samples(now)
            .filter(**{f"{series}__isnull": False})
            .order_by(F(series).desc())
            .values_list("router_id", series)[:TOP_N]
        )
        rows = {router_id: TopRow(router_id, "", "", now=value) for router_id, value in ordered}
        for entry in over_range.filter(router_id__in=list(rows)):
            rows[entry["router_id"]].avg, rows[entry["router_id"]].peak = entry["avg"], entry["peak"]
    else:
        ordered_range = over_range.order_by(F(rank).desc(nulls_last=True))[:TOP_N]
        rows = {
            entry["router_id"]: TopRow(entry["router_id"], "", "", avg=entry["avg"], peak=entry["peak"])
            for entry in ordered_range
        }
        for router_id, value in latest_samples(now).filter(router_id__in=list(rows)).values_list("router_id", series):
            rows[router_id].now = value
    for router_id, name, uuid in Router.objects.filter(pk__in=list(rows)).values_list("pk", "name", "uuid"):
        rows[router_id].name, rows[router_id].uuid = name or uuid, uuid
    _sparklines(rows, series, start, now, span)
    table.rows = list(rows.values())
    return table


def _aligned(moment: datetime, width: int) -> datetime:
    return datetime.fromtimestamp(math.floor(moment.timestamp() / width) * width, tz=UTC)


def _sparklines(rows: dict[int, TopRow], series: str, start: datetime, now: datetime, span: int) -> None:
    """Each row's average over SPARK_POINTS buckets of the range, as an SVG path, in one query."""
    if not rows:
        return
    width = max(span, math.ceil((now - start).total_seconds() / SPARK_POINTS / span) * span)
    first = math.floor(start.timestamp() / width)
    points: dict[int, list[float | None]] = {router_id: [None] * SPARK_POINTS for router_id in rows}
    buckets = (
        HealthRollup.objects.filter(router_id__in=list(rows), span=span, start__gte=_aligned(start, span))
        .annotate(bucket=EpochBucket(F("start"), width))
        .values("router_id", "bucket")
        .annotate(total=Sum(f"{series}_sum"), n=Sum(f"{series}_n"))
    )
    for entry in buckets:
        index = int(entry["bucket"]) - first
        if 0 <= index < SPARK_POINTS and entry["n"]:
            points[entry["router_id"]][index] = float(entry["total"]) / float(entry["n"])
    for router_id, values in points.items():
        rows[router_id].sparkline = build_sparkline(values)


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
        "tables": [top_table(series, title, start, now, rank, span) for series, title in TOP_SERIES],
        "status_figure": counts_figure(FleetCountDimension.STATUS, start, now, "routers per status", "routers"),
        "category_figure": counts_figure(
            FleetCountDimension.CATEGORY, start, now, "open findings per category", "findings"
        ),
        "start": start,
        "now": now,
        "span": span,
    }
