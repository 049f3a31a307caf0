"""Notifications after evaluation: what is told, what is held, and delivery through the notify queue.

Webhooks go to a real HTTP receiver on 127.0.0.1 (tests/diagnostics/webhook_receiver.py),
e-mail to Django's locmem backend, and the jobs run on the real notify queue in Redis, worked
by an RQ SimpleWorker in burst mode (retry waits set to 0 s so retries run at once).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import django_rq
import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.utils import timezone
from rq import SimpleWorker

from diagnostics.models import (
    DeliveryStatus,
    Finding,
    Notification,
    NotificationDelivery,
    NotificationKind,
    Silence,
)
from tests.diagnostics.matrix_doubles import FakeMatrix, finished_collection, stored_facts
from tests.diagnostics.webhook_receiver import Receiver, webhook_receiver
from tests.vrconsole.router_factory import make_host, make_network, make_region, make_router, make_zone
from vrconsole.queues import NOTIFY

pytestmark = pytest.mark.django_db

TOKEN_PATH = "/hooks/s3cr3t-t0ken"


@pytest.fixture
def notify_queue() -> Iterator[object]:
    queue = django_rq.get_queue(NOTIFY)
    queue.empty()
    yield queue
    queue.empty()


@pytest.fixture
def receiver(settings, notify_queue) -> Iterator[Receiver]:
    with webhook_receiver() as running:
        settings.NOTIFY_WEBHOOKS = [running.url + TOKEN_PATH]
        settings.NOTIFY_EMAILS = ["oncall@example.org"]
        settings.NOTIFY_RETRY_SECONDS = [0, 0]
        settings.NOTIFY_REMINDER_SECONDS = 3600
        settings.NOTIFY_FLAP_COUNT = 3
        settings.NOTIFY_FLAP_WINDOW_SECONDS = 3600
        settings.CONSOLE_URL = "https://console.example.org"
        yield running


@pytest.fixture
def matrix() -> FakeMatrix:
    return FakeMatrix()


@pytest.fixture
def router():
    zone = make_zone(make_region(), name="zone-a")
    network = make_network(zone, name="shop-prod")
    host = make_host(zone, name="kvm-07")
    return make_router(zone, name="r-231-VM", host=host, network=network, account="acme", link_local_ip="169.254.3.4")


@pytest.fixture
def collection(router):
    return finished_collection(router, facts=stored_facts("processes", "disk"))


@pytest.fixture
def judge(matrix, router, collection, django_capture_on_commit_callbacks):
    """Evaluate the router at a moment (minutes from now), then work the notify queue off."""
    start = timezone.now()

    def run(minutes: float = 0) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            matrix.evaluate(router, collection, now=start + timedelta(minutes=minutes))
        work_off()

    run.start = start  # type: ignore[attr-defined]
    return run


def work_off() -> None:
    queue = django_rq.get_queue(NOTIFY)
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def kinds() -> list[str]:
    return list(Notification.objects.order_by("created", "pk").values_list("kind", flat=True))


def test_an_opening_at_critical_tells_every_destination_why(receiver, matrix, judge, router):
    matrix.fire("dnsmasq-not-running", "pidof dnsmasq returned nothing", "dnsmasq.log last line 02:13:58")
    judge()
    [body] = receiver.bodies
    assert body["event"] == "opened"
    assert body["router"] == {
        "name": "r-231-VM",
        "uuid": router.uuid,
        "zone": "zone-a",
        "account": "acme",
        "network": "shop-prod",
        "host": "kvm-07",
        "state": "Running",
    }
    assert body["finding"]["rule"] == "dnsmasq-not-running"
    assert body["finding"]["severity"] == "critical"
    assert body["finding"]["evidence"] == ["pidof dnsmasq returned nothing", "dnsmasq.log last line 02:13:58"]
    assert body["finding"]["remediation"].startswith("Fix dnsmasq-not-running")
    assert body["link"] == f"https://console.example.org/routers/{router.uuid}/#finding-dnsmasq-not-running"
    assert "pidof dnsmasq returned nothing" in body["text"]
    [email] = mail.outbox
    assert email.to == ["oncall@example.org"]
    assert email.subject == "▲ CRITICAL opened: dnsmasq-not-running on r-231-VM"
    assert "Fix: Fix dnsmasq-not-running" in email.body
    assert body["link"] in email.body


def test_a_finding_that_stays_open_is_told_once_not_per_collection(receiver, matrix, judge):
    matrix.fire("dnsmasq-not-running")
    for minute in range(5):
        judge(minute)
    assert len(receiver.bodies) == 1
    assert len(mail.outbox) == 1


def test_a_resolution_of_a_told_finding_is_told(receiver, matrix, judge):
    matrix.fire("var-log-nearly-full", "/var/log 97%")
    judge(0)
    matrix.quiet("var-log-nearly-full")
    judge(5)
    assert [body["event"] for body in receiver.bodies] == ["opened", "resolved"]
    assert receiver.bodies[1]["finding"]["resolved_at"] is not None
    assert mail.outbox[1].subject == "● RESOLVED: var-log-nearly-full on r-231-VM"


def test_an_info_finding_is_not_told(receiver, matrix, judge):
    matrix.fire("template-outdated")
    judge()
    assert receiver.bodies == []
    assert kinds() == []


def test_an_escalation_is_told(receiver, matrix, judge, router):
    matrix.fire("template-outdated")
    judge(0)
    # The same rule now judges worse: a warning is news.
    Finding.objects.filter(router=router, rule="template-outdated").update(severity="info")
    matrix.rules[2] = matrix.rule("template-outdated", "template", "warning", ("api",))
    judge(1)
    assert [body["event"] for body in receiver.bodies] == ["escalated"]


def test_a_webhook_answering_500_is_retried_until_it_accepts(receiver, matrix, judge):
    receiver.statuses = [500, 500]
    matrix.fire("dnsmasq-not-running")
    judge()
    assert len(receiver.bodies) == 3
    delivery = NotificationDelivery.objects.get(channel="webhook")
    assert delivery.status == DeliveryStatus.SENT
    assert delivery.attempts == 3


def test_a_dead_webhook_gives_up_after_its_retries_and_its_url_is_never_kept(receiver, matrix, judge):
    receiver.statuses = [500] * 10
    matrix.fire("dnsmasq-not-running")
    judge()
    assert len(receiver.bodies) == 3
    delivery = NotificationDelivery.objects.get(channel="webhook")
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 3
    assert delivery.error == "attempt 3: 127.0.0.1: HTTP 500"
    stored = " ".join(NotificationDelivery.objects.values_list("destination", "label", "error").first() or ())
    assert "s3cr3t" not in stored
    # The e-mail went all the same.
    assert NotificationDelivery.objects.get(channel="email").status == DeliveryStatus.SENT


def test_an_unreachable_webhook_does_not_hold_the_evaluation(settings, notify_queue, matrix, router, collection):
    settings.NOTIFY_WEBHOOKS = ["http://127.0.0.1:9/hook"]
    settings.NOTIFY_EMAILS = []
    matrix.fire("dnsmasq-not-running")
    matrix.evaluate(router, collection)
    # Decided and queued: delivering is the notify worker's business.
    assert NotificationDelivery.objects.get().status == DeliveryStatus.PENDING


def test_the_slack_form_sends_the_text_alone(receiver, settings, matrix, judge):
    settings.NOTIFY_WEBHOOKS = ["slack+" + receiver.url + "/hooks/abc"]
    matrix.fire("dnsmasq-not-running", "pidof dnsmasq returned nothing")
    judge()
    [body] = receiver.bodies
    assert list(body) == ["text"]
    assert "dnsmasq-not-running on r-231-VM" in body["text"]
    assert "pidof dnsmasq returned nothing" in body["text"]


def test_an_acknowledged_finding_tells_nobody_until_it_comes_back(receiver, matrix, judge, router):
    matrix.fire("dnsmasq-not-running")
    judge(0)
    finding = Finding.objects.get(router=router, rule="dnsmasq-not-running")
    finding.acknowledge(User.objects.create_user("ana"), "on it, ticket 4411", None, judge.start)
    judge(120)  # past the reminder interval: no reminder for an acknowledged finding
    matrix.quiet("dnsmasq-not-running")
    judge(121)  # resolved while acknowledged: held, and said why
    assert [body["event"] for body in receiver.bodies] == ["opened"]
    held = Notification.objects.get(kind=NotificationKind.RESOLVED)
    assert held.suppressed_because == "acknowledged by ana"
    assert not held.deliveries.exists()
    matrix.fire("dnsmasq-not-running")
    judge(200)  # it came back: the acknowledgement was of the last open period
    assert [body["event"] for body in receiver.bodies] == ["opened", "opened"]


def test_an_acknowledgement_that_expires_lets_the_finding_notify_again(receiver, matrix, judge, router):
    matrix.fire("dnsmasq-not-running")
    judge(0)
    finding = Finding.objects.get(router=router, rule="dnsmasq-not-running")
    finding.acknowledge(
        User.objects.create_user("ana"), "until the change", judge.start + timedelta(minutes=90), judge.start
    )
    assert finding.is_acknowledged
    judge(70)  # reminder due, acknowledgement in force
    assert [body["event"] for body in receiver.bodies] == ["opened"]
    judge(95)  # expired: back to normal, the reminder goes out
    assert [body["event"] for body in receiver.bodies] == ["opened", "reminder"]
    finding.refresh_from_db()
    assert not finding.acknowledgement_active(judge.start + timedelta(minutes=95))


def test_a_silenced_finding_is_held_and_told_when_the_silence_ends(receiver, matrix, judge, router):
    silence = Silence.objects.create(
        zone=router.zone,
        category="dhcp",
        starts=judge.start - timedelta(minutes=1),
        ends=judge.start + timedelta(minutes=30),
        reason="CHG-118 dnsmasq upgrade",
        username="ana",
    )
    matrix.fire("dnsmasq-not-running")
    judge(0)
    judge(10)
    assert receiver.bodies == []
    held = Notification.objects.get()
    assert held.suppressed_because.startswith("silenced by ana until ")
    assert held.suppressed_because.endswith(": CHG-118 dnsmasq upgrade")
    assert silence.in_force(judge.start)
    judge(31)  # the window is over and the finding still open: told now
    assert [body["event"] for body in receiver.bodies] == ["opened"]
    assert "No longer acknowledged or silenced." in receiver.bodies[0]["text"]


def test_a_silence_of_another_category_does_not_hold(receiver, matrix, judge, router):
    Silence.objects.create(
        router=router, category="disk", ends=judge.start + timedelta(hours=1), reason="disk work", username="ana"
    )
    matrix.fire("dnsmasq-not-running")
    judge()
    assert [body["event"] for body in receiver.bodies] == ["opened"]


def test_a_finding_still_open_is_reminded_after_the_interval(receiver, matrix, judge):
    matrix.fire("dnsmasq-not-running")
    judge(0)
    judge(30)
    judge(61)
    judge(90)
    judge(122)
    assert [body["event"] for body in receiver.bodies] == ["opened", "reminder", "reminder"]


def test_a_flapping_finding_is_told_once_as_flapping(receiver, matrix, judge):
    for cycle in range(5):
        matrix.fire("dnsmasq-not-running")
        judge(cycle * 4)
        matrix.quiet("dnsmasq-not-running")
        judge(cycle * 4 + 2)
    events = [body["event"] for body in receiver.bodies]
    assert events == ["opened", "resolved", "opened", "resolved", "flapping"]
    assert "Opened 3 times in 60 min." in receiver.bodies[-1]["text"]
