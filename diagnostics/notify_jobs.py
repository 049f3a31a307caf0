"""The notify queue's job: deliver one notification to one destination, with retries and backoff.

`enqueue_deliveries` is the evaluation's sender in the workers: one job per delivery on the
notify queue (vrconsole.queues.NOTIFY), each retried by RQ after the waits of
NOTIFY_RETRY_SECONDS (the notify worker runs --with-scheduler for the delayed retries). A dead
webhook costs only its own retries: collections never wait on a notification.
`deliver_now` is the sender of `manage.py triage`, which must not exit with its messages still
in a queue nobody may be working: it tries each delivery once in the process and hands a
failed one to the queue for its retries.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

import django_rq
from django.conf import settings
from django.db import transaction
from rq import Retry

from diagnostics.models import DeliveryStatus, NotificationDelivery
from diagnostics.notifications import DeliveryError, deliver
from vrconsole.queues import NOTIFY, QUEUE_TIMEOUTS

logger = logging.getLogger(__name__)


def deliver_notification(delivery_id: int) -> str:
    """Deliver one notification to one destination (job). Raises while a retry is left, so RQ retries it."""
    delivery = NotificationDelivery.objects.select_related("notification").filter(pk=delivery_id).first()
    if delivery is None or delivery.status in {DeliveryStatus.SENT, DeliveryStatus.FAILED}:
        return "nothing to do"
    final = delivery.attempts >= len(settings.NOTIFY_RETRY_SECONDS)
    if deliver(delivery, final=final):
        return "sent"
    if delivery.status == DeliveryStatus.FAILED:
        return "failed"
    raise DeliveryError(delivery.error)


def _retry() -> Retry | None:
    waits = settings.NOTIFY_RETRY_SECONDS
    return Retry(max=len(waits), interval=list(waits)) if waits else None


def enqueue_deliveries(deliveries: Sequence[NotificationDelivery]) -> None:
    """Queue one job per delivery on the notify queue once the rows are committed.

    A delivery that cannot be queued (Redis away) is marked failed with why.
    """
    ids = [delivery.pk for delivery in deliveries]
    transaction.on_commit(lambda: _enqueue(ids))


def _enqueue(delivery_ids: list[int]) -> None:
    queue = django_rq.get_queue(NOTIFY)
    for delivery_id in delivery_ids:
        try:
            queue.enqueue(
                deliver_notification,
                delivery_id,
                retry=_retry(),
                job_timeout=QUEUE_TIMEOUTS[NOTIFY],
                result_ttl=3600,
                failure_ttl=7 * 86400,
            )
        except Exception as exc:  # Redis unreachable: say so on the row instead of leaving it queued forever
            NotificationDelivery.objects.filter(pk=delivery_id).update(
                status=DeliveryStatus.FAILED, error=f"could not be queued: {type(exc).__name__}"
            )
            logger.error("notification delivery %s could not be queued: %s", delivery_id, exc)


def enqueue_retry(delivery: NotificationDelivery) -> None:
    """Queue the rest of a delivery's retries (after the first wait) for the workers."""
    waits = list(settings.NOTIFY_RETRY_SECONDS)[delivery.attempts - 1 :]
    if not waits:
        return
    queue = django_rq.get_queue(NOTIFY)
    retry = Retry(max=len(waits) - 1, interval=waits[1:]) if len(waits) > 1 else None
    queue.enqueue_in(
        timedelta(seconds=waits[0]),
        deliver_notification,
        delivery.pk,
        retry=retry,
        job_timeout=QUEUE_TIMEOUTS[NOTIFY],
        result_ttl=3600,
        failure_ttl=7 * 86400,
    )


def deliver_now(deliveries: Sequence[NotificationDelivery]) -> None:
    """Try each delivery once in this process; a failure goes to the notify queue for its retries."""
    for delivery in deliveries:
        delivery = NotificationDelivery.objects.select_related("notification").get(pk=delivery.pk)
        final = not settings.NOTIFY_RETRY_SECONDS
        if deliver(delivery, final=final) or final:
            continue
        try:
            enqueue_retry(delivery)
        except Exception as exc:  # Redis away: this was the only attempt
            NotificationDelivery.objects.filter(pk=delivery.pk).update(
                status=DeliveryStatus.FAILED,
                error=f"{delivery.error}; retries could not be queued: {type(exc).__name__}",
            )
