"""Notifications that say why: deciding what to tell whom after an evaluation, and telling it.

After an evaluation folds its verdicts into findings, `notify_after_evaluation` decides, per
finding, whether someone must hear about it:

- opened (or reopened) at warning or critical: one message per opening, never per collection;
- escalated (a still-open finding whose severity rose to warning or critical);
- still open after NOTIFY_REMINDER_SECONDS since its last message: a reminder;
- resolved, when its opening was told to someone;
- flapping: the NOTIFY_FLAP_COUNT-th opening within NOTIFY_FLAP_WINDOW_SECONDS is told once as
  flapping, and its openings and resolutions are then quiet until the window has passed;
- nothing for an acknowledged or silenced finding: the message is recorded as held, with why,
  and told when the acknowledgement expires (or the silence ends) with the finding still open.

Each message is built then (router, zone, account, network, rule, severity, title, evidence,
remedy, link) and stored on a Notification row, with one NotificationDelivery per destination
(NOTIFY_WEBHOOKS, NOTIFY_EMAILS); the deliveries are handed to `send` — the notify queue for
the workers (diagnostics.notify_jobs), or a direct delivery for `manage.py triage`.
`deliver` performs one delivery and raises DeliveryError with a message fit to store: a
webhook URL can carry a token, so it is never in an error, a row or a log line.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from diagnostics.findings import FoldOutcome
from diagnostics.models import (
    SEVERITY_RANKS,
    DeliveryChannel,
    DeliveryStatus,
    Finding,
    FindingEvent,
    FindingEventKind,
    Notification,
    NotificationDelivery,
    NotificationKind,
    Severity,
    Silence,
)
from diagnostics.reports import absolute_url, bounded_evidence, utc, visible
from vrconsole.models import Router

logger = logging.getLogger(__name__)

NOTIFY_FROM_RANK = SEVERITY_RANKS[Severity.WARNING]
SLACK_PREFIX = "slack+"
# Message kinds that tell of the finding's current open period (a resolution tells of its end).
TELLING_KINDS = (
    NotificationKind.OPENED,
    NotificationKind.ESCALATED,
    NotificationKind.REMINDER,
    NotificationKind.FLAPPING,
)

Sender = Callable[[Sequence[NotificationDelivery]], None]


class DeliveryError(Exception):
    """A delivery failed; the message names the destination's host and the failure, never a URL."""


# --- Destinations --------------------------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    """Somewhere messages go, as configured now. `url` is used to send and never stored."""

    channel: str
    key: str
    label: str
    url: str = ""
    slack: bool = False


def webhook_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def webhook_destination(configured: str) -> Destination:
    slack = configured.startswith(SLACK_PREFIX)
    url = configured.removeprefix(SLACK_PREFIX)
    key = webhook_key(configured)
    host = urlparse(url).hostname or "?"
    label = f"webhook {host}{' (text form)' if slack else ''} #{key[:8]}"
    return Destination(channel=DeliveryChannel.WEBHOOK, key=key, label=label, url=url, slack=slack)


def destinations() -> list[Destination]:
    """Every configured destination: webhooks first, then e-mail addresses."""
    found = [webhook_destination(configured) for configured in settings.NOTIFY_WEBHOOKS]
    found += [
        Destination(channel=DeliveryChannel.EMAIL, key=address, label=f"e-mail {address}")
        for address in settings.NOTIFY_EMAILS
    ]
    return found


def destination_of(delivery: NotificationDelivery) -> Destination | None:
    """The delivery's destination as configured now, or None when it is no longer configured."""
    for destination in destinations():
        if destination.channel == delivery.channel and destination.key == delivery.destination:
            return destination
    return None


# --- Messages ------------------------------------------------------------------------------

KIND_WORDS: dict[str, str] = {
    NotificationKind.OPENED: "opened",
    NotificationKind.ESCALATED: "escalated",
    NotificationKind.REMINDER: "still open",
    NotificationKind.FLAPPING: "flapping",
    NotificationKind.RESOLVED: "resolved",
    NotificationKind.TEST: "test",
}
SEVERITY_GLYPHS = {"critical": "▲", "warning": "⚠", "info": "ℹ"}


def router_facts(router: Router) -> dict[str, str]:
    """Who the router is, as a message carries it."""
    if router.vpc is not None:
        network = f"VPC {router.vpc.name}" + (f", tier {router.network.name}" if router.network else "")
    else:
        network = router.network.name if router.network is not None else ""
    return {
        "name": router.name,
        "uuid": router.uuid,
        "zone": router.zone.name if router.zone is not None else "",
        "account": router.account or router.project,
        "network": network,
        "host": router.host.name if router.host is not None else router.host_name,
        "state": router.state,
    }


def build_message(kind: str, finding: Finding, router: Router, now: datetime, note: str = "") -> dict[str, Any]:
    """The JSON body of a message about a finding; its `text` is what chat and e-mail show."""
    facts = router_facts(router)
    link = absolute_url(reverse("router-detail", args=[router.uuid])) + f"#finding-{finding.rule}"
    severity = finding.severity
    words = KIND_WORDS.get(kind, kind)
    name = facts["name"] or facts["uuid"]
    subject = f"{SEVERITY_GLYPHS.get(severity, '?')} {severity.upper()} {words}: {finding.rule} on {name}"
    if kind == NotificationKind.RESOLVED:
        subject = f"● RESOLVED: {finding.rule} on {name}"
    where = ", ".join(
        f"{label} {value}"
        for label, value in (
            ("zone", facts["zone"]),
            ("account", facts["account"]),
            ("network", facts["network"]),
            ("host", facts["host"]),
        )
        if value
    )
    evidence = bounded_evidence(list(finding.evidence))
    lines = [subject, visible(finding.title), f"Router {name} ({facts['uuid']}), {facts['state']}; {where}"]
    if len(finding.category_list) > 1:
        lines.append(f"Takes down: {', '.join(finding.category_list)}.")
    if note:
        lines.append(note)
    if kind == NotificationKind.RESOLVED:
        lines.append(f"Open from {utc(finding.opened_at)} to {utc(finding.resolved_at or now)}.")
    else:
        lines.append(f"Failing since {utc(finding.opened_at)}.")
        if evidence:
            lines.append("Evidence:")
            lines += [f"  {line}" for line in evidence]
        lines.append(f"Fix: {visible(finding.remediation)}")
    lines.append(f"Console: {link}")
    return {
        "event": kind,
        "subject": subject[:300],
        "text": "\n".join(lines),
        "router": facts,
        "finding": {
            "rule": finding.rule,
            "category": finding.category,
            "categories": finding.category_list,
            "severity": severity,
            "title": visible(finding.title),
            "evidence": evidence,
            "remediation": visible(finding.remediation),
            "opened_at": finding.opened_at.isoformat(),
            "resolved_at": finding.resolved_at.isoformat() if finding.resolved_at else None,
            "times_opened": finding.times_opened,
        },
        "link": link,
        "at": now.isoformat(),
    }


def trial_message(now: datetime) -> dict[str, Any]:
    """The body `manage.py notify_test` sends: it says it is a test and where it comes from."""
    link = absolute_url(reverse("fleet"))
    subject = "VR Console test notification"
    text = f"{subject}: this destination receives the console's notifications. Sent {utc(now)}. Console: {link}"
    return {"event": NotificationKind.TEST, "subject": subject, "text": text, "link": link, "at": now.isoformat()}


# --- Deciding ------------------------------------------------------------------------------


@dataclass
class FindingHistory:
    """What was already told about one finding: the basis of every decision about it."""

    told_in_period: bool = False
    held_in_period: bool = False
    last_told: datetime | None = None
    flapping_told_since_window: bool = False


def _histories(findings: list[Finding], window_start: datetime) -> dict[int, FindingHistory]:
    histories = {finding.pk: FindingHistory() for finding in findings}
    if not findings:
        return histories
    periods = {finding.pk: finding.opened_at for finding in findings}
    since = min(min(periods.values()), window_start)
    rows = Notification.objects.filter(finding__in=list(periods), created__gte=since).values(
        "finding_id", "kind", "suppressed_because", "created"
    )
    for row in rows:
        history = histories[row["finding_id"]]
        if row["kind"] == NotificationKind.FLAPPING and row["created"] >= window_start:
            history.flapping_told_since_window = True
        if row["created"] < periods[row["finding_id"]] or row["kind"] not in TELLING_KINDS:
            continue
        if row["suppressed_because"]:
            history.held_in_period = True
        else:
            history.told_in_period = True
            if history.last_told is None or row["created"] > history.last_told:
                history.last_told = row["created"]
    return histories


def _openings_in_window(router: Router, rules: list[str], window_start: datetime) -> Counter[str]:
    events = FindingEvent.objects.filter(
        router=router,
        rule__in=rules,
        kind__in=[FindingEventKind.OPENED, FindingEventKind.REOPENED],
        at__gte=window_start,
    ).values_list("rule", flat=True)
    return Counter(events)


def _silences(router: Router, now: datetime) -> list[Silence]:
    return list(
        Silence.objects.active(now)
        .filter(Q(router=router) | Q(router__isnull=True))
        .filter(Q(zone_id=router.zone_id) | Q(zone__isnull=True))
        .select_related("router", "zone")
    )


def held_because(finding: Finding, router: Router, silences: list[Silence], now: datetime) -> str:
    """Why nobody must be told about the finding now ("" when somebody must)."""
    if finding.acknowledgement_active(now):
        until = f" until {utc(finding.acknowledged_until)}" if finding.acknowledged_until else ""
        return f"acknowledged by {finding.acknowledged_by_name or 'someone'}{until}"[:300]
    for silence in silences:
        if silence.matches(finding, router):
            return f"silenced by {silence.username or 'someone'} until {utc(silence.ends)}: {silence.reason}"[:300]
    return ""


def _record(
    kind: str, finding: Finding, router: Router, now: datetime, held: str, note: str = ""
) -> tuple[Notification, list[NotificationDelivery]]:
    message = build_message(kind, finding, router, now, note)
    notification = Notification.objects.create(
        finding=finding,
        router=router,
        rule=finding.rule,
        severity=finding.severity,
        kind=kind,
        subject=message["subject"],
        message=message,
        suppressed_because=held,
        created=now,
    )
    if held:
        return notification, []
    deliveries = NotificationDelivery.objects.bulk_create(
        NotificationDelivery(
            notification=notification,
            channel=destination.channel,
            destination=destination.key,
            label=destination.label,
            created=now,
        )
        for destination in destinations()
    )
    return notification, deliveries


def notify_after_evaluation(router: Router, fold: FoldOutcome, now: datetime, send: Sender) -> list[Notification]:
    """Record the messages this evaluation calls for and hand their deliveries to `send`."""
    rules = set(fold.opened + fold.reopened + fold.escalated + fold.still_open + fold.resolved)
    if not rules:
        return []
    router = Router.objects.select_related("zone", "host", "network", "vpc").get(pk=router.pk)
    findings = {f.rule: f for f in Finding.objects.filter(router=router, rule__in=rules)}
    window_start = now - timedelta(seconds=settings.NOTIFY_FLAP_WINDOW_SECONDS)
    histories = _histories(list(findings.values()), window_start)
    openings = _openings_in_window(router, sorted(rules), window_start)
    silences = _silences(router, now)
    reminder = settings.NOTIFY_REMINDER_SECONDS
    recorded: list[Notification] = []
    to_send: list[NotificationDelivery] = []

    def record(kind: str, finding: Finding, note: str = "", *, quiet_when_held: bool = False) -> None:
        held = held_because(finding, router, silences, now)
        if held and quiet_when_held:
            return
        notification, deliveries = _record(kind, finding, router, now, held, note)
        recorded.append(notification)
        to_send.extend(deliveries)

    for rule in fold.opened + fold.reopened:
        finding = findings[rule]
        if finding.severity_rank < NOTIFY_FROM_RANK:
            continue
        if openings[rule] >= settings.NOTIFY_FLAP_COUNT:
            if not histories[finding.pk].flapping_told_since_window:
                window = settings.NOTIFY_FLAP_WINDOW_SECONDS // 60
                record(NotificationKind.FLAPPING, finding, f"Opened {openings[rule]} times in {window} min.")
            continue
        record(NotificationKind.OPENED, finding)
    for rule in fold.escalated:
        if findings[rule].severity_rank >= NOTIFY_FROM_RANK:
            record(NotificationKind.ESCALATED, findings[rule])
    for rule in fold.still_open:
        finding = findings[rule]
        history = histories[finding.pk]
        if rule in fold.escalated or finding.severity_rank < NOTIFY_FROM_RANK:
            continue
        if not history.told_in_period and history.held_in_period:
            # Held at its opening; the acknowledgement expired or the silence ended with it still open.
            record(NotificationKind.OPENED, finding, "No longer acknowledged or silenced.", quiet_when_held=True)
        elif history.told_in_period and reminder and history.last_told is not None:
            if history.last_told <= now - timedelta(seconds=reminder):
                record(NotificationKind.REMINDER, finding, quiet_when_held=True)
    for rule in fold.resolved:
        finding = findings[rule]
        if not histories[finding.pk].told_in_period or openings[rule] >= settings.NOTIFY_FLAP_COUNT:
            continue
        record(NotificationKind.RESOLVED, finding)
    if to_send:
        send(to_send)
    return recorded


# --- Delivering ----------------------------------------------------------------------------


def slack_body(message: dict[str, Any]) -> dict[str, Any]:
    """The Slack/Mattermost incoming-webhook form: the text alone."""
    return {"text": message.get("text", "")}


def post_webhook(destination: Destination, message: dict[str, Any]) -> None:
    """POST the message; anything but a 2xx answer is a DeliveryError naming the host only."""
    body = slack_body(message) if destination.slack else message
    host = urlparse(destination.url).hostname
    try:
        response = requests.post(
            destination.url,
            json=body,
            timeout=settings.NOTIFY_TIMEOUT_SECONDS,
            allow_redirects=False,
            headers={"User-Agent": "vrconsole-notify"},
        )
    except requests.Timeout:
        raise DeliveryError(f"{host}: no answer within {settings.NOTIFY_TIMEOUT_SECONDS:g} s") from None
    except requests.RequestException as exc:
        # requests' messages quote the URL (and so its token): only the failure's kind is kept.
        raise DeliveryError(f"{host}: {type(exc).__name__}") from None
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"{host}: HTTP {response.status_code}")


def send_email(address: str, message: dict[str, Any]) -> None:
    try:
        send_mail(
            str(message.get("subject", "VR Console")),
            str(message.get("text", "")),
            settings.DEFAULT_FROM_EMAIL,
            [address],
        )
    except Exception as exc:  # SMTP and socket errors of every kind: the delivery failed, say how
        raise DeliveryError(f"{address}: {type(exc).__name__}: {str(exc)[:200]}") from None


def send_to(destination: Destination, message: dict[str, Any]) -> None:
    if destination.channel == DeliveryChannel.WEBHOOK:
        post_webhook(destination, message)
    else:
        send_email(destination.key, message)


def deliver(delivery: NotificationDelivery, *, final: bool) -> bool:
    """One attempt at one delivery, recorded on its row. True when sent.

    A failure leaves the row `retrying` (the caller retries it) or, when `final`, `failed`.
    """
    delivery.attempts += 1
    destination = destination_of(delivery)
    try:
        if destination is None:
            raise DeliveryError(f"{delivery.label} is no longer configured")
        send_to(destination, delivery.notification.message)
    except DeliveryError as exc:
        gone = destination is None
        delivery.status = DeliveryStatus.FAILED if final or gone else DeliveryStatus.RETRYING
        delivery.error = f"attempt {delivery.attempts}: {exc}"
        delivery.save(update_fields=["attempts", "status", "error"])
        logger.warning("notification %s to %s: %s", delivery.notification_id, delivery.label, delivery.error)
        return False
    delivery.status = DeliveryStatus.SENT
    delivery.sent_at = timezone.now()
    delivery.error = ""
    delivery.save(update_fields=["attempts", "status", "error", "sent_at"])
    return True
