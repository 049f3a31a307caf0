"""Periodic jobs, declared once: loaded by `python manage.py rqcron vrconsole.schedules`.

The scheduler only enqueues; workers on the named queues do the work, so a slow sweep
never delays the next sync, and the history jobs (rollups, retention) never delay either.
The sweep itself only queues host-grouped batches of collections (diagnostics.jobs), which
the collect workers run, many routers at once each.
"""

from django.conf import settings
from rq import cron

from diagnostics.action_jobs import triage_failing_routers
from diagnostics.jobs import prune_history, record_history, sweep_fleet
from vrconsole import queues
from vrconsole.jobs import sync_all_regions

cron.register(sync_all_regions, queues.SYNC, interval=settings.SYNC_INTERVAL_SECONDS, name="sync-all-regions")
# The sweep only plans and queues batches: on the default queue, so that it never waits behind
# the previous sweep's batches and can say that one overran.
cron.register(sweep_fleet, queues.DEFAULT, interval=settings.SWEEP_INTERVAL_SECONDS, name="sweep-fleet")
# History: hourly/daily rollups and fleet counts; retention in short batches. The default
# queue is served by the sync worker, so neither ever waits behind a collection.
cron.register(record_history, queues.DEFAULT, interval=settings.HISTORY_INTERVAL_SECONDS, name="record-history")
cron.register(prune_history, queues.DEFAULT, interval=settings.RETENTION_INTERVAL_SECONDS, name="prune-history")
# Routers newly in Error, Stopped while their network is up, stuck or on a host not Up get
# CloudStack's record of why read once per state; the batch is bounded per pass.
cron.register(
    triage_failing_routers, queues.ACTIONS, interval=settings.SYNC_INTERVAL_SECONDS, name="triage-failing-routers"
)
