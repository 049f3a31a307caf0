"""`python manage.py notify_test`: send a test message to every configured destination, now.

Each webhook (NOTIFY_WEBHOOKS, shown by host and hash: its URL may carry a token) and each
e-mail address (NOTIFY_EMAILS, through EMAIL_URL) gets one message that says it is a test,
sent from this process with no retry, so the answer is immediate: one line per destination,
sent or why not. Exits non-zero when a destination failed or none is configured.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from diagnostics.notifications import DeliveryError, destinations, send_to, trial_message


class Command(BaseCommand):
    help = "Send a test notification to every configured webhook and e-mail address, and say how each went."

    def handle(self, *args: Any, **options: Any) -> None:
        found = destinations()
        if not found:
            raise CommandError("no destination is configured: set NOTIFY_WEBHOOKS and/or NOTIFY_EMAILS")
        if not settings.CONSOLE_URL:
            self.stderr.write("CONSOLE_URL is not set: the messages' links are paths only")
        message = trial_message(timezone.now())
        failed = 0
        for destination in found:
            try:
                send_to(destination, message)
            except DeliveryError as exc:
                failed += 1
                self.stdout.write(f"✖ {destination.label}: {exc}")
            else:
                self.stdout.write(f"✓ {destination.label}: sent")
        if failed:
            raise CommandError(f"{failed} of {len(found)} destination(s) failed")
