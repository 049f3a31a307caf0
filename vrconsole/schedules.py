"""Periodic jobs, declared once: loaded by `python manage.py rqcron vrconsole.schedules`.

The scheduler only enqueues; workers on the named queues do the work, so a slow sweep
never delays the next sync.
"""

from django.conf import settings
from rq import cron

from vrconsole import queues
from vrconsole.jobs import sync_all_regions

cron.register(sync_all_regions, queues.SYNC, interval=settings.SYNC_INTERVAL_SECONDS, name="sync-all-regions")
