"""A router's history as files for a ticket or a post-mortem: CSV and JSON, streamed.

`raw` exports every sample of the range (one row per collection: the fixed series, then one
column per interface or CPU field, e.g. `eth0.rx_bps`); `hourly` exports the hourly rollups
(min / avg / max per series, the per-key ones as JSON). Rows are read in chunks from the
database and written as they come, so a long range never sits in memory.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from typing import Any

from django.db import connection

from diagnostics.history import TimeRange, rollups_for_export, samples_for_export
from diagnostics.models import HealthRollup, HealthSample
from diagnostics.series import KEYED_GROUPS, METRIC_NAMES, METRICS
from vrconsole.models import Router

RESOLUTIONS = ("raw", "hourly")
CHUNK = 2000


def safe_name(name: str) -> str:
    """A router name fit for a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80] or "router"


def keys_in_range(router: Router, time_range: TimeRange, group: str) -> list[str]:
    """The interface or CPU names that occur in the router's raw samples of the range (sorted naturally)."""
    table = HealthSample._meta.db_table
    if connection.vendor == "postgresql":
        sql = f"SELECT DISTINCT jsonb_object_keys(s.{group}) FROM {table} s WHERE s.router_id = %s AND s.at >= %s AND s.at < %s"
    else:
        sql = f"SELECT DISTINCT e.key FROM {table} s, json_each(s.{group}) e WHERE s.router_id = %s AND s.at >= %s AND s.at < %s"
    params = [
        router.pk,
        connection.ops.adapt_datetimefield_value(time_range.start),
        connection.ops.adapt_datetimefield_value(time_range.end),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [str(row[0]) for row in cursor.fetchall()]
    return sorted(
        names, key=lambda name: (name.rstrip("0123456789"), int("".join(c for c in name if c.isdigit()) or -1))
    )


def _line(values: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def csv_rows(router: Router, time_range: TimeRange, resolution: str) -> Iterator[str]:
    """The CSV file, header first, one line at a time."""
    if resolution == "hourly":
        header = ["start", "samples"]
        for name in METRIC_NAMES:
            header += [f"{name}.min", f"{name}.avg", f"{name}.max"]
        yield _line([*header, "per_nic", "per_cpu"])
        for rollup in rollups_for_export(router, time_range).iterator(chunk_size=CHUNK):
            row: list[Any] = [rollup.start.isoformat(), rollup.samples]
            for name in METRIC_NAMES:
                row += list(_rollup_stats(rollup, name))
            yield _line([*row, json.dumps(rollup.per_nic), json.dumps(rollup.per_cpu)])
        return
    keyed = {group: keys_in_range(router, time_range, group) for group in KEYED_GROUPS}
    header = ["at", "collection_id", *METRIC_NAMES]
    for group, fields in KEYED_GROUPS.items():
        header += [f"{key}.{field}" for key in keyed[group] for field in fields]
    yield _line(header)
    for sample in samples_for_export(router, time_range).iterator(chunk_size=CHUNK):
        row = [sample.at.isoformat(), sample.collection_id or "", *(_blank(getattr(sample, n)) for n in METRIC_NAMES)]
        for group, fields in KEYED_GROUPS.items():
            data = getattr(sample, group) or {}
            for key in keyed[group]:
                values = data.get(key) or []
                row += [_blank(values[i] if i < len(values) else None) for i in range(len(fields))]
        yield _line(row)


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _rollup_stats(rollup: HealthRollup, name: str) -> tuple[Any, Any, Any]:
    count = getattr(rollup, f"{name}_n")
    total = getattr(rollup, f"{name}_sum")
    average = total / count if count and total is not None else None
    return (_blank(getattr(rollup, f"{name}_min")), _blank(average), _blank(getattr(rollup, f"{name}_max")))


def json_chunks(router: Router, time_range: TimeRange, resolution: str) -> Iterator[str]:
    """The JSON document in pieces: router, range, series and their units, then the rows."""
    head = {
        "router": {"uuid": router.uuid, "name": router.name},
        "range": {"start": time_range.start.isoformat(), "end": time_range.end.isoformat()},
        "resolution": resolution,
        "series": {series.name: {"label": series.label, "unit": series.unit} for series in METRICS},
        "keyed_fields": {group: list(fields) for group, fields in KEYED_GROUPS.items()},
    }
    text = json.dumps(head)
    yield text[:-1] + ', "rows": ['
    first = True
    rows: Iterator[dict[str, Any]]
    if resolution == "hourly":
        rows = (
            {
                "start": rollup.start.isoformat(),
                "samples": rollup.samples,
                **{
                    name: dict(
                        zip(
                            ("min", "avg", "max"),
                            (v if v != "" else None for v in _rollup_stats(rollup, name)),
                            strict=True,
                        )
                    )
                    for name in METRIC_NAMES
                },
                "per_nic": rollup.per_nic,
                "per_cpu": rollup.per_cpu,
            }
            for rollup in rollups_for_export(router, time_range).iterator(chunk_size=CHUNK)
        )
    else:
        rows = (
            {
                "at": sample.at.isoformat(),
                "collection_id": sample.collection_id,
                **{name: getattr(sample, name) for name in METRIC_NAMES},
                "per_nic": sample.per_nic,
                "per_cpu": sample.per_cpu,
            }
            for sample in samples_for_export(router, time_range).iterator(chunk_size=CHUNK)
        )
    for row in rows:
        yield ("" if first else ",") + json.dumps(row)
        first = False
    yield "]}\n"
