"""RQ queue names, declared once.

Sync, collection, live tails and actions each get their own queue so that a long-lived
tail or a slow sweep never delays an inventory sync or an operator's action. This module
imports nothing from Django: settings.py builds RQ_QUEUES from it.
"""

from __future__ import annotations

SYNC = "sync"
COLLECT = "collect"
TAILS = "tails"
ACTIONS = "actions"
DEFAULT = "default"

# name -> default job timeout in seconds
QUEUE_TIMEOUTS: dict[str, int] = {
    SYNC: 600,
    COLLECT: 300,
    TAILS: 3600,
    ACTIONS: 900,
    DEFAULT: 300,
}
