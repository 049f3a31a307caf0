"""Periodic jobs, declared once: loaded by `python manage.py rqcron vrconsole.schedules`.

The scheduler only enqueues; workers on the named queues do the work, so a slow sweep
never delays the next sync. The sweep itself only queues per-host and per-router
collection jobs (diagnostics.jobs), which the collect workers run in parallel.
"""

from django.conf import settings
from rq import cron

from diagnostics.action_jobs import triage_failing_routers
from diagnostics.jobs import sweep_fleet
from vrconsole import queues
from vrconsole.jobs import sync_all_regions

cron.register(sync_all_regions, queues.SYNC, interval=settings.SYNC_INTERVAL_SECONDS, name="sync-all-regions")
cron.register(sweep_fleet, queues.COLLECT, interval=settings.SWEEP_INTERVAL_SECONDS, name="sweep-fleet")
# Routers newly in Error, Stopped while their network is up, stuck or on a host not Up get
# CloudStack's record of why read once per state; the batch is bounded per pass.
cron.register(
    triage_failing_routers, queues.ACTIONS, interval=settings.SYNC_INTERVAL_SECONDS, name="triage-failing-routers"
)
