"""Rolling health samples up into hourly and daily aggregates, and recording the fleet counts.

The history job (diagnostics.jobs.record_history, every HISTORY_INTERVAL_SECONDS) calls
`roll_up`: every complete hour not yet rolled up (and the last two again, for samples that
arrived late) becomes one HealthRollup per router holding min, max, sum and count per series,
computed by the database; the days those hours belong to are then refolded from their hours.
A window is replaced whole in one short transaction (delete its rows, insert the new ones),
so running it twice changes nothing and a crash half-way loses nothing. `record_fleet_counts`
writes the routers per status and the open findings per category and severity at one moment.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Max, Min
from django.utils import timezone

from diagnostics.history import bucketed, keyed_aggregate_sql, raw_aggregates, rollup_aggregates
from diagnostics.matrix.base import CATEGORIES
from diagnostics.models import (
    Finding,
    FleetCount,
    FleetCountDimension,
    HealthRollup,
    HealthSample,
    RollupSpan,
    RouterHealth,
    RouterStatus,
)
from diagnostics.series import KEYED_GROUPS, METRIC_NAMES
from vrconsole.models import Router

logger = logging.getLogger(__name__)

HOUR = int(RollupSpan.HOUR)
DAY = int(RollupSpan.DAY)
# An hour is rolled up this long after it ended: a sample's time is when its collection
# stored it, so later than this nothing can arrive for it.
SETTLE_SECONDS = 300
# Hours recomputed behind the newest rollup on every run.
RECOMPUTE_HOURS = 2
# Hours per transaction: big enough for few round trips, small enough for short locks.
HOURS_PER_WINDOW = 6


@dataclass
class RollupReport:
    """What one roll_up call did."""

    hours: int = 0
    hourly_rows: int = 0
    daily_rows: int = 0
    caught_up: bool = True
    duration_s: float = 0.0


def _aligned(moment: datetime, width: int) -> datetime:
    return datetime.fromtimestamp(math.floor(moment.timestamp() / width) * width, tz=UTC)


def _keyed_rows(group: str, source: str, width: int, start: datetime, end: datetime, span: int | None) -> list[tuple]:
    moment = "at" if source == "raw" else "start"
    where = f"s.{moment} >= %s AND s.{moment} < %s"
    params: list[Any] = [
        connection.ops.adapt_datetimefield_value(start),
        connection.ops.adapt_datetimefield_value(end),
    ]
    if span is not None:
        where += " AND s.span = %s"
        params.append(span)
    sql, head = keyed_aggregate_sql(group, source=source, width=width, per_router=True, where=where)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*head, *params])
        return [tuple(row) for row in cursor.fetchall()]


def _rollup_rows(
    fixed: list[dict[str, Any]], keyed: dict[str, list[tuple]], width: int, span: int
) -> list[HealthRollup]:
    rollups: dict[tuple[Any, int], HealthRollup] = {}
    for row in fixed:
        values: dict[str, Any] = {"samples": int(row["samples"] or 0)}
        for name in METRIC_NAMES:
            values[f"{name}_min"] = row[f"{name}__min"]
            values[f"{name}_max"] = row[f"{name}__max"]
            values[f"{name}_sum"] = row[f"{name}__sum"]
            values[f"{name}_n"] = int(row[f"{name}__n"] or 0)
        start = datetime.fromtimestamp(int(row["bucket"]) * width, tz=UTC)
        rollups[(row["router_id"], int(row["bucket"]))] = HealthRollup(
            router_id=row["router_id"], span=span, start=start, per_nic={}, per_cpu={}, **values
        )
    for group, rows in keyed.items():
        for keyed_row in rows:
            rollup = rollups.get((keyed_row[0], int(keyed_row[1])))
            if rollup is None:
                continue
            numbers = [None if value is None else float(value) for value in keyed_row[3:]]
            getattr(rollup, group)[str(keyed_row[2])] = numbers
    return list(rollups.values())


def _replace_window(span: int, start: datetime, end: datetime) -> int:
    """Recompute the rollups of `span` whose start lies in [start, end), in one transaction."""
    if span == HOUR:
        samples = HealthSample.objects.filter(at__gte=start, at__lt=end)
        fixed = bucketed(samples, "at", HOUR, raw_aggregates(), by=("router_id",))
        keyed = {group: _keyed_rows(group, "raw", HOUR, start, end, None) for group in KEYED_GROUPS}
    else:
        hours = HealthRollup.objects.filter(span=HOUR, start__gte=start, start__lt=end)
        fixed = bucketed(hours, "start", DAY, rollup_aggregates(), by=("router_id",))
        keyed = {group: _keyed_rows(group, "rollup", DAY, start, end, HOUR) for group in KEYED_GROUPS}
    rows = _rollup_rows(fixed, keyed, span, span)
    if not rows:
        return 0
    try:
        with transaction.atomic():
            # Only the routers that have data here: a router whose raw samples of this window
            # were already pruned keeps the rollup made from them.
            HealthRollup.objects.filter(
                span=span, start__gte=start, start__lt=end, router_id__any=sorted({row.router_id for row in rows})
            ).delete()
            HealthRollup.objects.bulk_create(rows, batch_size=500)
    except IntegrityError:
        # Another run (the history job and a retention pass overlapping) wrote the same
        # window at the same moment: its rows are as good as these.
        logger.info("rollup window %s..%s written by a concurrent run", start, end)
        return 0
    return len(rows)


def pending_hours(now: datetime) -> tuple[datetime, datetime] | None:
    """The hours [from, to) the next roll_up should (re)compute, or None when there is nothing."""
    settled = _aligned(now - timedelta(seconds=SETTLE_SECONDS), HOUR)
    newest = HealthRollup.objects.filter(span=HOUR).aggregate(Max("start"))["start__max"]
    # From the oldest sample not older than the last hours recomputed (the time index finds it):
    # hours without any sample are skipped, however long the job was stopped.
    since = newest - timedelta(hours=RECOMPUTE_HOURS - 1) if newest is not None else None
    samples = HealthSample.objects.filter(at__gte=since) if since is not None else HealthSample.objects.all()
    oldest = samples.aggregate(Min("at"))["at__min"]
    if oldest is None:
        return None
    begin = _aligned(oldest, HOUR)
    return (begin, settled) if begin < settled else None


def roll_up(now: datetime | None = None, budget_s: float = 240.0) -> RollupReport:
    """Roll up every settled hour not yet rolled up, then refold the days they touch.

    Stops after `budget_s` seconds (the next run continues where it stopped), so a console
    starting with weeks of samples catches up over a few runs without a job timing out.
    """
    now = now or timezone.now()
    report = RollupReport()
    started = time.monotonic()
    window = pending_hours(now)
    if window is None:
        return report
    begin, end = window
    cursor = begin
    days: set[datetime] = set()
    while cursor < end:
        if time.monotonic() - started > budget_s:
            report.caught_up = False
            break
        upto = min(cursor + timedelta(hours=HOURS_PER_WINDOW), end)
        written = _replace_window(HOUR, cursor, upto)
        report.hourly_rows += written
        report.hours += int((upto - cursor).total_seconds() // HOUR)
        if written:
            days.update({_aligned(cursor, DAY), _aligned(upto - timedelta(seconds=1), DAY)})
            cursor = upto
            continue
        # Nothing in this window: jump to the hour of the next sample (a stopped console,
        # a fleet collected rarely) instead of walking empty hours.
        following = HealthSample.objects.filter(at__gte=upto, at__lt=end).aggregate(Min("at"))["at__min"]
        cursor = _aligned(following, HOUR) if following is not None else end
    for day in sorted(days):
        report.daily_rows += _replace_window(DAY, day, day + timedelta(days=1))
    report.duration_s = round(time.monotonic() - started, 3)
    return report


def record_fleet_counts(now: datetime | None = None) -> list[FleetCount]:
    """Routers per status, open findings per category and severity, at `now` (present routers only)."""
    now = now or timezone.now()
    present = Router.objects.filter(removed_at__isnull=True)
    statuses = Counter(
        dict(
            RouterHealth.objects.filter(router__removed_at__isnull=True)
            .values_list("status")
            .annotate(n=Count("router"))
            .values_list("status", "n")
        )
    )
    evaluated = sum(statuses.values())
    statuses[RouterStatus.UNKNOWN] += max(present.count() - evaluated, 0)
    rows = [
        FleetCount(at=now, dimension=FleetCountDimension.STATUS, key=status, value=statuses.get(status, 0))
        for status in RouterStatus.values
    ]
    open_findings = Finding.objects.open().of_present_routers()
    # A finding counts under every category its fault takes down (dnsmasq down: dhcp and dns).
    for key, value in open_findings.count_by_category(CATEGORIES).items():
        if value:
            rows.append(FleetCount(at=now, dimension=FleetCountDimension.CATEGORY, key=key, value=value))
    for key, value in open_findings.values_list("severity").annotate(n=Count("id")).values_list("severity", "n"):
        rows.append(FleetCount(at=now, dimension=FleetCountDimension.SEVERITY, key=str(key)[:32], value=value))
    return FleetCount.objects.bulk_create(rows)
