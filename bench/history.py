"""Benchmark: health history at fleet scale — charts, fleet trends, bytes per sample, retention.

Sets up its own PostgreSQL database (named with VRCONSOLE_TEST_SLOT, so two engineers' runs
never meet), then generates in the database, day by day, 30 days of one-minute samples for
one router and five-minute samples for N routers (2,000 by default), each with its
collection, plus findings with their events and the fleet counts; the history job's rollup
then aggregates the 30 days. It measures:

- router_chart_30d_ms / router_chart_30d_kb: the server time (median of runs, Django's test
  client with a logged-in user, JSON included) and the payload of one router's 30-day chart
  data (`/routers/<uuid>/history.json?range=30d`, every figure) for the one-minute router;
  targets <= 300 ms and <= 300 KB;
- fleet_trends_ms: the fleet trends page over 30 days (median); target <= 500 ms;
- bytes_per_sample: the health sample table on disk (indexes and TOAST included) per row;
- retention_pass_s: one retention pass over that data (default settings: raw samples 14
  days, collections 7 days), which deletes more than half of it.

Tears everything down. Last line: one JSON object of the figures.

    python bench/history.py [--routers 2000] [--days 30] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.support import admin_sql, base_database_url, with_db  # noqa: E402

TARGETS = {"router_chart_30d_ms": 300, "router_chart_30d_kb": 300, "fleet_trends_ms": 500}

# One day of collections and their samples per statement: values vary per router (a base
# level from its id), over the day (a sine) and per sample (random), interfaces and CPUs too.
DAY_SQL = """
WITH made AS (
  INSERT INTO diagnostics_collection
    (router_id, trigger, status, reason, error, traceback, access_path, created, started, finished,
     duration_s, facts, probe_errors)
  SELECT r.id, 'schedule', 'succeeded', '', '', '', 'via host kvm-01', t, t, t + interval '2 seconds',
         2.0, '{}'::jsonb, 0
  FROM unnest(%(ids)s::bigint[]) AS r(id)
  CROSS JOIN generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '1 second', %(step)s::interval) AS t
  ORDER BY t, r.id
  RETURNING id, router_id, finished
)
INSERT INTO diagnostics_healthsample
  (router_id, collection_id, at, conntrack_count, conntrack_max, conntrack_percent, cpu_percent,
   softirq_percent, load1, memory_percent, disk_root_percent, disk_log_percent, inode_root_percent,
   inode_log_percent, dhcp_leases, dhcp_range_size, filter_rules, nat_rules, mangle_rules,
   softnet_drops_ps, per_nic, per_cpu)
SELECT m.router_id, m.id, m.finished, v.fill * 10000, 1000000, round(v.fill::numeric, 2),
       round(v.cpu::numeric, 2), round((v.cpu * 0.3)::numeric, 2), round((v.cpu / 40)::numeric, 2),
       round((30 + (m.router_id %% 50))::numeric + random()::numeric * 5, 2),
       40 + (m.router_id %% 45), 20 + (m.router_id %% 70), 10 + (m.router_id %% 30), 5 + (m.router_id %% 60),
       20 + (m.router_id %% 200), 253, 60 + (m.router_id %% 40), 12 + (m.router_id %% 8), 30 + (m.router_id %% 20),
       0.0,
       jsonb_build_object(
         'eth0', jsonb_build_array(round((v.load * 8e6)::numeric, 1), round((v.load * 6e6)::numeric, 1), 0, 0, 0, 0),
         'eth1', jsonb_build_array(round((random() * 2e4)::numeric, 1), round((random() * 2e4)::numeric, 1), 0, 0, 0, 0),
         'eth2', jsonb_build_array(round((v.load * 6e6)::numeric, 1), round((v.load * 8e6)::numeric, 1), 0, 0,
                                   round((random() * random())::numeric, 3), 0)),
       jsonb_build_object(
         'cpu0', jsonb_build_array(round((v.cpu * 0.5)::numeric, 2), 0),
         'cpu1', jsonb_build_array(round((v.cpu * 0.1)::numeric, 2), 0))
FROM made m
CROSS JOIN LATERAL (
  SELECT (0.5 + 0.5 * sin(extract(epoch FROM m.finished) / 86400 * 2 * pi() + m.router_id)) AS load
) AS l
CROSS JOIN LATERAL (
  SELECT least(99.0, (m.router_id %% 80) + 15 * l.load + random() * 5) AS fill,
         least(100.0, 5 + (m.router_id %% 60) + 20 * l.load + random() * 10) AS cpu,
         l.load AS load
) AS v
"""


def _median_ms(call, runs: int) -> tuple[float, object]:
    timings, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = call()
        timings.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(timings), 1), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routers", type=int, default=2000, help="routers sampled every 5 minutes")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the database (for a look afterwards)")
    args = parser.parse_args()

    base_url = base_database_url()
    slot = os.environ.get("VRCONSOLE_TEST_SLOT", "0")
    db_name = f"vrc_bench_history_s{slot}"
    admin_sql(base_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    admin_sql(base_url, f'CREATE DATABASE "{db_name}"')
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "vrconsole.settings",
            "PLAIN_HTTP": "true",  # served on loopback over plain HTTP
            "DATABASE_URL": with_db(base_url, db_name),
            "SECRET_KEY": secrets.token_urlsafe(40),
            "ALLOWED_HOSTS": "testserver,localhost",
            "LOG_LEVEL": "WARNING",
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"),
        }
    )
    try:
        figures = _measure(args)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            admin_sql(base_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    print(json.dumps(figures, sort_keys=True))


def _measure(args: argparse.Namespace) -> dict:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    call_command("migrate", verbosity=0)
    from diagnostics.models import HealthRollup, HealthSample
    from diagnostics.retention import apply_retention
    from diagnostics.rollup import roll_up

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now - timedelta(days=args.days)
    fine, fleet = _inventory(args.routers)

    print(f"[bench] generating {args.days} days: 1 router every minute, {args.routers} every 5 minutes", flush=True)
    loaded = time.perf_counter()
    with connection.cursor() as cursor:
        # A throwaway database: no fsync wait per statement, and the non-unique indexes of the
        # two big tables built once after the load (inserting 30 days at once in time order
        # would otherwise touch a random leaf of the (router, time) index per row).
        cursor.execute("SET synchronous_commit = off")
        deferred = _drop_secondary_indexes(cursor, ("diagnostics_healthsample", "diagnostics_collection"))
        day = start
        while day < now:
            upto = min(day + timedelta(days=1), now)
            cursor.execute(DAY_SQL, {"ids": [fine], "start": day, "end": upto, "step": "1 minute"})
            cursor.execute(DAY_SQL, {"ids": fleet, "start": day, "end": upto, "step": "5 minutes"})
            day = upto
        for definition in deferred:
            cursor.execute(definition)
        _findings(cursor, fine, fleet, start, now)
        # What autovacuum does over 30 days of a running console: statistics, and the BRIN
        # time indexes summarised.
        cursor.execute("VACUUM ANALYZE")
    samples = HealthSample.objects.count()
    load_s = round(time.perf_counter() - loaded, 1)
    print(f"[bench] {samples} samples and collections in {load_s} s", flush=True)

    rolled = time.perf_counter()
    report = roll_up(now + timedelta(minutes=10), budget_s=24 * 3600)
    rollup_s = round(time.perf_counter() - rolled, 1)
    print(
        f"[bench] rollup of {report.hours} hours: {report.hourly_rows} hourly, {report.daily_rows} daily rows in {rollup_s} s"
    )

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE diagnostics_healthrollup")
        sizes = {}
        for table in ("diagnostics_healthsample", "diagnostics_healthrollup", "diagnostics_collection"):
            cursor.execute("SELECT pg_total_relation_size(%s)", [table])
            sizes[table] = cursor.fetchone()[0]
    rollups = HealthRollup.objects.count()

    from vrconsole.models import Router

    user = get_user_model().objects.create_user("bench", password="bench-password-123")
    client = Client()
    client.force_login(user)
    router = Router.objects.get(pk=fine)
    url = f"/routers/{router.uuid}/history.json?range=30d"
    client.get(url)  # warm caches and connections, as a running server has them
    chart_ms, response = _median_ms(lambda: client.get(url), args.runs)
    assert response.status_code == 200, response.status_code
    chart_kb = round(len(response.content) / 1024, 1)
    body = json.loads(response.content)
    print(f"[bench] router_chart_30d_ms {chart_ms} router_chart_30d_kb {chart_kb}", flush=True)
    day_ms, _ = _median_ms(lambda: client.get(f"/routers/{router.uuid}/history.json?range=24h"), args.runs)
    client.get("/trends/?range=30d")
    trends_ms, trends = _median_ms(lambda: client.get("/trends/?range=30d"), args.runs)
    assert trends.status_code == 200
    trends_7d_ms, _ = _median_ms(lambda: client.get("/trends/?range=7d&rank=now"), args.runs)
    page_ms, page = _median_ms(lambda: client.get(f"/routers/{router.uuid}/"), args.runs)
    assert page.status_code == 200
    per_sample = round(sizes["diagnostics_healthsample"] / samples, 1)
    print(f"[bench] fleet_trends_ms {trends_ms} (7d by now: {trends_7d_ms}) bytes_per_sample {per_sample}", flush=True)

    print("[bench] retention pass (default settings) over the data", flush=True)
    pruned = time.perf_counter()
    retention = apply_retention()
    retention_s = round(time.perf_counter() - pruned, 1)
    second = time.perf_counter()
    again = apply_retention()
    second_s = round(time.perf_counter() - second, 1)

    figures = {
        "routers": args.routers + 1,
        "days": args.days,
        "samples": samples,
        "load_s": load_s,
        "rollup_backfill_s": rollup_s,
        "rollup_rows": rollups,
        "router_chart_30d_ms": chart_ms,
        "router_chart_30d_kb": chart_kb,
        "router_chart_30d_figures": len(body["figures"]),
        "router_chart_30d_bucket_s": body["bucket_seconds"],
        "router_chart_24h_ms": day_ms,
        "router_page_ms": page_ms,
        "fleet_trends_ms": trends_ms,
        "fleet_trends_7d_now_ms": trends_7d_ms,
        "bytes_per_sample": round(sizes["diagnostics_healthsample"] / samples, 1),
        "bytes_per_rollup_row": round(sizes["diagnostics_healthrollup"] / max(rollups, 1), 1),
        "bytes_per_collection_row": round(sizes["diagnostics_collection"] / samples, 1),
        "retention_pass_s": retention_s,
        "retention_deleted": retention.deleted,
        "retention_second_pass_s": second_s,
        "retention_second_pass_deleted": again.total,
    }
    figures["targets_met"] = all(figures[key] <= limit for key, limit in TARGETS.items())
    for key, value in figures.items():
        print(f"{key:32} {value}")
    return figures


def _drop_secondary_indexes(cursor, tables: tuple[str, ...]) -> list[str]:
    """Drop the indexes of `tables` that back no constraint; return their definitions."""
    cursor.execute(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.tablename = ANY(%s)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
        """,
        [list(tables)],
    )
    found = cursor.fetchall()
    for name, _ in found:
        cursor.execute(f'DROP INDEX "{name}"')
    return [definition for _, definition in found]


def _inventory(count: int) -> tuple[int, list[int]]:
    """A region, a zone, one fine-grained router and `count` others."""
    import uuid

    from vrconsole.models import Region, Router, Zone

    region = Region.objects.create(name="bench")
    zone = Zone.objects.create(region=region, uuid=str(uuid.uuid4()), name="zone-bench")
    routers = Router.objects.bulk_create(
        Router(
            region=region,
            zone=zone,
            uuid=str(uuid.uuid4()),
            name=f"r-{number}-VM",
            state="Running",
            hypervisor="KVM",
            account="acme",
        )
        for number in range(1, count + 2)
    )
    return routers[0].pk, [router.pk for router in routers[1:]]


FINDINGS_SQL = """
INSERT INTO diagnostics_findingevent (router_id, rule, category, severity, kind, title, at, collection_id)
SELECT r.id, 'conntrack-table-near-full', 'conntrack', 'warning', k.kind, 'conntrack table 80 %% full', k.at,
       (SELECT c.id FROM diagnostics_collection c WHERE c.router_id = r.id AND c.created <= k.at
        ORDER BY c.created DESC LIMIT 1)
FROM unnest(%(ids)s::bigint[]) AS r(id)
CROSS JOIN LATERAL (
  SELECT CASE WHEN g %% 2 = 0 THEN 'opened' ELSE 'resolved' END AS kind,
         %(start)s::timestamptz + (g * interval '2 days') + (r.id %% 24) * interval '1 hour' AS at
  FROM generate_series(1, %(events)s) AS g
) AS k
"""


def _findings(cursor, fine: int, fleet: list[int], start: datetime, now: datetime) -> None:
    """Finding events (opened / resolved every two days) for a tenth of the fleet and the fine router,
    their findings, router statuses, and five-minute fleet counts."""
    flapping = [fine, *fleet[::10]]
    cursor.execute(FINDINGS_SQL, {"ids": flapping, "start": start, "events": 14})
    cursor.execute(
        """
        INSERT INTO diagnostics_finding (router_id, rule, category, severity, title, evidence, remediation, first_seen,
               opened_at, last_seen, resolved_at, times_opened, first_collection_id, last_collection_id)
        SELECT router_id, rule, category, severity, title, '[]'::jsonb, '', min(at), max(at), max(at), NULL, 7,
               min(collection_id), max(collection_id)
        FROM diagnostics_findingevent GROUP BY router_id, rule, category, severity, title
        """
    )
    cursor.execute(
        """
        INSERT INTO diagnostics_routerhealth (router_id, status, rank, status_since, categories, open_findings,
               collection_id, collection_status, evaluated_at)
        SELECT r.id, CASE WHEN f.router_id IS NULL THEN 'ok' ELSE 'warning' END,
               CASE WHEN f.router_id IS NULL THEN 1 ELSE 2 END, now(), COALESCE(f.category, ''),
               CASE WHEN f.router_id IS NULL THEN 0 ELSE 1 END, NULL, 'succeeded', now()
        FROM vrconsole_router r LEFT JOIN diagnostics_finding f ON f.router_id = r.id
        """
    )
    cursor.execute(
        """
        INSERT INTO diagnostics_fleetcount (at, dimension, key, value)
        SELECT t, d.dimension, d.key, d.base + (random() * 20)::int
        FROM generate_series(%(start)s::timestamptz, %(now)s::timestamptz, interval '5 minutes') AS t
        CROSS JOIN (VALUES ('status', 'ok', 1700), ('status', 'warning', 200), ('status', 'critical', 20),
                           ('status', 'unknown', 80), ('category', 'conntrack', 200), ('category', 'disk', 40),
                           ('category', 'dhcp', 15), ('category', 'access', 80)) AS d(dimension, key, base)
        """,
        {"start": start, "now": now},
    )


if __name__ == "__main__":
    main()
