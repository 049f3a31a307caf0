"""The downsampling query returns the true min / avg / max of every bucket, fixed and per-key series.

Checked against a brute-force computation over the generated values, on the database the
suite runs on (PostgreSQL); `test_it_is_exact_on_sqlite_too` runs this same module again on
SQLite, the local run's database, in a subprocess.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection

from diagnostics.history import TimeRange, bucket_width, parse_range, router_history
from diagnostics.rollup import roll_up
from diagnostics.series import CPU_FIELDS, METRIC_NAMES, NIC_FIELDS
from tests.diagnostics.history_data import Generated, generate_samples
from tests.vrconsole.router_factory import make_region, make_router, make_zone

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def router(db):
    return make_router(make_zone(make_region()), name="r-77-VM")


def brute_force(generated: Generated, width: int) -> dict[int, dict[str, tuple[float, float, float]]]:
    """bucket -> series -> (min, avg, max), computed the obvious way."""
    values: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for at, fixed, per_nic, per_cpu in generated.rows:
        bucket = math.floor(at.timestamp() / width)
        for name, value in fixed.items():
            if value is not None:
                values[bucket][name].append(value)
        for group, fields in (("per_nic", NIC_FIELDS), ("per_cpu", CPU_FIELDS)):
            for key, numbers in (per_nic if group == "per_nic" else per_cpu).items():
                for field, number in zip(fields, numbers, strict=True):
                    if number is not None:
                        values[bucket][f"{group}:{key}:{field}"].append(number)
    return {
        bucket: {name: (min(v), sum(v) / len(v), max(v)) for name, v in series.items()}
        for bucket, series in values.items()
    }


def assert_history_matches(history, expected) -> None:
    checked = 0
    for index in range(history.count):
        bucket = history.first_bucket + index
        truth = expected.get(bucket, {})
        for name in METRIC_NAMES:
            stat = history.metrics[name]
            if name not in truth:
                assert stat.avgs[index] is None, (name, index)
                continue
            low, mean, high = truth[name]
            assert (stat.mins[index], stat.maxs[index]) == (low, high), (name, index)
            assert stat.avgs[index] == pytest.approx(mean, rel=1e-9), (name, index)
            checked += 1
        for key_name, (low, mean, high) in truth.items():
            if ":" not in key_name:
                continue
            group, key, field = key_name.split(":")
            stat = history.keyed[group][key][field]
            assert (stat.mins[index], stat.maxs[index]) == (low, high), (key_name, index)
            assert stat.avgs[index] == pytest.approx(mean, rel=1e-9), (key_name, index)
            checked += 1
    assert checked > 0


@pytest.mark.django_db
def test_it_returns_the_true_min_avg_max_of_each_raw_bucket(router, settings) -> None:
    settings.HEALTH_RETENTION_DAYS = 3650
    generated = generate_samples(router, NOW - timedelta(hours=24), 24 * 60, timedelta(minutes=1), seed=3)
    time_range = TimeRange(NOW - timedelta(hours=24), NOW, "24h", 300)
    history = router_history(router, time_range, markers=False)
    assert history.source == "raw" and history.width == 300
    assert history.count == 288
    assert_history_matches(history, brute_force(generated, 300))
    assert sum(history.samples) == 24 * 60


@pytest.mark.django_db
def test_it_keeps_the_true_values_when_hourly_rollups_are_combined_into_wider_buckets(router, settings) -> None:
    settings.HEALTH_RETENTION_DAYS = 3650
    start = NOW - timedelta(days=3)
    generated = generate_samples(router, start, 3 * 24 * 12, timedelta(minutes=5), seed=5)
    report = roll_up(NOW)
    assert report.hours > 0 and report.hourly_rows > 0
    time_range = TimeRange(start, NOW, "custom", 7200)
    history = router_history(router, time_range, markers=False)
    assert history.source.startswith("hourly")
    assert_history_matches(history, brute_force(generated, 7200))


@pytest.mark.django_db
def test_it_reads_the_hours_not_yet_rolled_up_from_the_raw_samples(router, settings) -> None:
    settings.HEALTH_RETENTION_DAYS = 3650
    start = NOW - timedelta(days=2)
    roll_until = NOW - timedelta(hours=10)
    generated = generate_samples(router, start, 2 * 24 * 12, timedelta(minutes=5), seed=9)
    roll_up(roll_until)
    history = router_history(router, TimeRange(start, NOW, "custom", 3600), markers=False)
    assert history.source == "hourly+raw"
    assert_history_matches(history, brute_force(generated, 3600))


def test_a_30_day_range_never_ships_more_than_a_few_hundred_points() -> None:
    assert (30 * 86400) / bucket_width(30 * 86400) <= 400
    assert bucket_width(3600) == 60
    time_range = parse_range({"range": "30d"}, NOW)
    assert time_range.seconds / time_range.width == 360


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"range": "2y"}, "unknown range"),
        ({"start": "yesterday"}, "not a date"),
        ({"start": "2026-03-10T10:00Z", "end": "2026-03-10T09:00Z"}, "after its start"),
    ],
)
def test_it_refuses_a_range_it_cannot_draw_with_a_reason(params, message) -> None:
    from diagnostics.history import RangeError

    with pytest.raises(RangeError, match=message):
        parse_range(params, NOW)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("VRCONSOLE_DOWNSAMPLING_ON_SQLITE") == "1", reason="already on SQLite")
def test_it_is_exact_on_sqlite_too(tmp_path: Path) -> None:
    assert connection.vendor == "postgresql"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'history.sqlite3'}",
        "VRCONSOLE_DOWNSAMPLING_ON_SQLITE": "1",
    }
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", __file__],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    assert " passed" in completed.stdout and "failed" not in completed.stdout
