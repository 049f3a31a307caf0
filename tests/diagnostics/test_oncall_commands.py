"""Tests of the on-call side of the commands: `triage --format markdown`, the notifications triage
delivers before it exits, and `notify_test`."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO

import django_rq
import pytest
from django.core import mail
from django.core.management import CommandError, call_command

from diagnostics.models import DeliveryStatus, NotificationDelivery
from tests.diagnostics.test_triage_command import api_lists_router, canned_collection, router, triage  # noqa: F401
from tests.diagnostics.webhook_receiver import Receiver, webhook_receiver
from vrconsole.queues import NOTIFY

pytestmark = pytest.mark.django_db


def empty_notify_queue() -> None:
    queue = django_rq.get_queue(NOTIFY)
    queue.empty()
    registry = queue.scheduled_job_registry
    for job_id in registry.get_job_ids():
        registry.remove(job_id, delete_job=True)


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    empty_notify_queue()
    with webhook_receiver() as running:
        settings.NOTIFY_WEBHOOKS = [running.url + "/hook"]
        settings.NOTIFY_EMAILS = ["oncall@example.org"]
        settings.NOTIFY_RETRY_SECONDS = [30]
        settings.CONSOLE_URL = "https://console.example.org"
        yield running
    empty_notify_queue()


def test_triage_prints_the_ticket_report_as_markdown(monkeypatch, router, api_lists_router):  # noqa: F811
    canned_collection(monkeypatch)
    output, _ = triage("r-231-VM", "--format", "markdown")
    assert output.startswith("### Router r-231-VM: ")
    assert f"- **UUID:** {router.uuid}" in output
    assert "- **Zone:** zone-a" in output
    assert "**CRITICAL** `dnsmasq-not-running` (dhcp, dns)" in output
    assert "**Fix:**" in output
    assert f"Router page: `/routers/{router.uuid}/`" in output
    assert "Collection: `/collections/" in output


def test_triage_delivers_the_notifications_of_what_it_opened_before_it_exits(
    monkeypatch,
    receiver,
    router,  # noqa: F811
    api_lists_router,  # noqa: F811
):
    canned_collection(monkeypatch)
    _, err = triage("r-231-VM")
    events = sorted((body["event"], body["finding"]["rule"]) for body in receiver.bodies)
    assert ("opened", "dnsmasq-not-running") in events
    assert all(event == "opened" for event, _ in events)
    assert len(mail.outbox) == len(receiver.bodies)
    assert set(NotificationDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}
    assert "notification opened dnsmasq-not-running: webhook 127.0.0.1" in err
    # A second triage with the same findings tells nobody again.
    triage("r-231-VM")
    assert len(receiver.bodies) == len(events)


def test_triage_hands_a_failed_delivery_to_the_notify_queue(monkeypatch, receiver, router, api_lists_router):  # noqa: F811
    receiver.statuses = [503] * 20
    canned_collection(monkeypatch)
    data_line = triage("r-231-VM", "--json")[0].strip().splitlines()[-1]
    assert '"status": "retrying"' in data_line
    scheduled = django_rq.get_queue(NOTIFY).scheduled_job_registry
    assert scheduled.count == NotificationDelivery.objects.filter(channel="webhook").count()


def test_notify_test_sends_to_every_destination(receiver):
    output = call_notify_test()
    assert [body["event"] for body in receiver.bodies] == ["test"]
    assert mail.outbox[0].subject == "VR Console test notification"
    assert "✓ webhook 127.0.0.1 #" in output
    assert "✓ e-mail oncall@example.org: sent" in output


def test_notify_test_fails_when_a_destination_fails(receiver):
    receiver.statuses = [500]
    with pytest.raises(CommandError, match="1 of 2 destination"):
        call_notify_test()


def test_notify_test_refuses_without_destinations(settings):
    settings.NOTIFY_WEBHOOKS = []
    settings.NOTIFY_EMAILS = []
    with pytest.raises(CommandError, match="no destination is configured"):
        call_notify_test()


def call_notify_test() -> str:
    out = StringIO()
    call_command("notify_test", stdout=out, stderr=StringIO())
    return out.getvalue()
