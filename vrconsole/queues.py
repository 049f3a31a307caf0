"""RQ queue names, declared once.

Sync, collection and actions each get their own queue so that a slow sweep never delays an
inventory sync or an operator's action, and an operator's "Collect now" has its own so that it
never waits behind a sweep's batches. Live tails are not RQ jobs (RQ runs one job per
process, and a tail lives as long as someone watches it): the tail worker process
(`manage.py tail_worker`, diagnostics.tails.worker) holds many at once. This module imports
nothing from Django: settings.py builds RQ_QUEUES from it.
"""

from __future__ import annotations

SYNC = "sync"
COLLECT = "collect"
# An operator's "Collect now": workers of its own, so it never waits behind a sweep's batches.
COLLECT_NOW = "collect_now"
ACTIONS = "actions"
# Notifications of findings: a dead webhook retries here and never holds a collection worker.
NOTIFY = "notify"
DEFAULT = "default"

# name -> default job timeout in seconds
QUEUE_TIMEOUTS: dict[str, int] = {
    SYNC: 600,
    COLLECT: 300,
    COLLECT_NOW: 300,
    ACTIONS: 900,
    NOTIFY: 120,
    DEFAULT: 300,
}
