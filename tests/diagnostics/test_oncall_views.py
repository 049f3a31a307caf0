"""Tests of the on-call pages: acknowledging, silencing, the ticket report, and the router page's order."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from diagnostics import reports
from diagnostics.models import Finding, RouterHealth, Silence
from tests.diagnostics.matrix_doubles import FakeMatrix, finished_collection, stored_facts
from tests.vrconsole.router_factory import make_host, make_network, make_region, make_router, make_zone
from vrconsole.models import AuditEntry, Router
from vrconsole.roles import OPERATOR

pytestmark = pytest.mark.django_db


@pytest.fixture
def router() -> Router:
    zone = make_zone(make_region(), name="zone-a")
    return make_router(
        zone, name="r-231-VM", host=make_host(zone, name="kvm-07"), network=make_network(zone, name="shop-prod")
    )


@pytest.fixture
def finding(router: Router) -> Finding:
    matrix = FakeMatrix()
    matrix.fire("dnsmasq-not-running", "pidof dnsmasq returned nothing")
    matrix.evaluate(router, finished_collection(router, facts=stored_facts("processes", "disk")))
    return Finding.objects.get(router=router, rule="dnsmasq-not-running")


def signed_in(client: Client, name: str, operator: bool) -> Client:
    user = get_user_model().objects.create_user(name, password="a-password-for-tests")
    if operator:
        user.groups.add(Group.objects.get_or_create(name=OPERATOR)[0])
    client.force_login(user)
    return client


@pytest.fixture
def operator(client: Client) -> Client:
    return signed_in(client, "ana", operator=True)


@pytest.fixture
def viewer(client: Client) -> Client:
    return signed_in(client, "vic", operator=False)


def ack_url(router: Router, rule: str = "dnsmasq-not-running") -> str:
    return reverse("finding-acknowledge", args=[router.uuid, rule])


def test_an_operator_acknowledges_a_finding_with_a_comment_and_an_end(operator, router, finding):
    until = (timezone.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    response = operator.post(ack_url(router), {"comment": "on it, INC-4411", "until": until})
    assert response.status_code == 302
    assert response["Location"] == f"/routers/{router.uuid}/#finding-dnsmasq-not-running"
    finding.refresh_from_db()
    assert (finding.acknowledged_by_name, finding.acknowledgement_comment) == ("ana", "on it, INC-4411")
    assert finding.acknowledged_until is not None and finding.is_acknowledged
    assert RouterHealth.objects.get(router=router).acknowledged_findings == 1
    entry = AuditEntry.objects.get(action="finding.acknowledge")
    assert (entry.username, entry.target, entry.outcome) == ("ana", "dnsmasq-not-running", "ok")
    assert "on it, INC-4411" in entry.detail


def test_the_router_page_and_the_wall_mark_an_acknowledged_finding(operator, router, finding):
    operator.post(ack_url(router), {"comment": "on it"})
    page = operator.get(reverse("router-detail", args=[router.uuid])).content.decode()
    assert "✓ Acknowledged by <strong>ana</strong>" in page
    assert "until it resolves" in page
    wall = operator.get(reverse("fleet")).content.decode()
    assert "✓ ack" in wall


def test_a_viewer_cannot_acknowledge_and_the_refusal_is_audited(viewer, router, finding):
    response = viewer.post(ack_url(router), {"comment": "me too"})
    assert response.status_code == 403
    finding.refresh_from_db()
    assert finding.acknowledged_at is None
    assert AuditEntry.objects.get(action="finding.acknowledge").outcome == "forbidden"


def test_an_end_in_the_past_is_refused_and_the_comment_kept(operator, router, finding):
    response = operator.post(ack_url(router), {"comment": "typed with care", "until": "2020-01-01T00:00"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "is in the past (times are UTC)" in page
    assert 'value="typed with care"' in page
    finding.refresh_from_db()
    assert finding.acknowledged_at is None


def test_a_resolved_finding_cannot_be_acknowledged(operator, router, finding):
    Finding.objects.filter(pk=finding.pk).update(resolved_at=timezone.now())
    response = operator.post(ack_url(router), {"comment": "late"})
    assert response.status_code == 400
    assert "nothing to acknowledge" in response.content.decode()


def test_an_acknowledgement_can_be_taken_back(operator, router, finding):
    operator.post(ack_url(router), {"comment": "on it"})
    response = operator.post(reverse("finding-unacknowledge", args=[router.uuid, finding.rule]))
    assert response.status_code == 302
    finding.refresh_from_db()
    assert not finding.is_acknowledged
    assert RouterHealth.objects.get(router=router).acknowledged_findings == 0
    assert AuditEntry.objects.filter(action="finding.unacknowledge", outcome="ok").count() == 1


def test_an_operator_silences_a_zones_category_for_a_window(operator, router):
    ends = (timezone.now() + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")
    response = operator.post(
        reverse("silences"), {"zone": "zone-a", "category": "dhcp", "ends": ends, "reason": "CHG-118 dnsmasq upgrade"}
    )
    assert response.status_code == 302
    silence = Silence.objects.get()
    assert (silence.zone, silence.category, silence.username) == (router.zone, "dhcp", "ana")
    assert silence.in_force()
    entry = AuditEntry.objects.get(action="silence.create")
    assert entry.outcome == "ok" and "zone zone-a, category dhcp" in entry.detail
    listing = operator.get(reverse("silences")).content.decode()
    assert "CHG-118 dnsmasq upgrade" in listing and "⊘ in force" in listing


def test_a_silence_that_matches_nothing_is_refused_with_the_reason_kept(operator):
    ends = (timezone.now() + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")
    response = operator.post(reverse("silences"), {"ends": ends, "reason": "kept reason"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Say what to silence" in page
    assert 'value="kept reason"' in page
    assert not Silence.objects.exists()


def test_a_silence_of_an_unknown_rule_or_router_says_so(operator):
    ends = (timezone.now() + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")
    response = operator.post(
        reverse("silences"), {"rule": "dnsmasq-not-runing", "router": "r-404-VM", "ends": ends, "reason": "x"}
    )
    page = response.content.decode()
    assert response.status_code == 400
    assert "is not a rule of the matrix" in page
    assert "No present router is named or has the uuid" in page


def test_a_silence_can_be_ended_early(operator, router):
    silence = Silence.objects.create(router=router, ends=timezone.now() + timedelta(hours=1), reason="work")
    operator.post(reverse("silence-lift", args=[silence.pk]))
    silence.refresh_from_db()
    assert silence.lifted_at is not None and silence.lifted_by_name == "ana"
    assert not silence.in_force()
    assert AuditEntry.objects.get(action="silence.lift").outcome == "ok"


def test_a_viewer_cannot_silence(viewer, router):
    ends = (timezone.now() + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")
    response = viewer.post(reverse("silences"), {"router": router.uuid, "ends": ends, "reason": "x"})
    assert response.status_code == 403
    assert not Silence.objects.exists()
    assert AuditEntry.objects.get(action="silence.create").outcome == "forbidden"


def test_the_router_page_answers_before_the_triage_table(operator, router, finding):
    page = operator.get(reverse("router-detail", args=[router.uuid])).content.decode()
    answer, findings, triage = (
        page.index('id="router-answer"'),
        page.index('id="findings"'),
        page.index('id="live-panel"'),
    )
    assert answer < findings < triage
    assert page.index('id="finding-dnsmasq-not-running"') < triage
    assert "last collected" in page[answer:findings]
    assert "Copy for ticket" in page[answer:findings]
    # The triage panel is one line: probes, failures, how long, how old, and the collection.
    assert "0 probes, 0 failed, in 4.0 s," in page[triage:]


def test_the_router_page_says_when_its_last_collection_is_stale(operator, router, settings):
    finished_collection(router, minutes_ago=3 * settings.SWEEP_INTERVAL_SECONDS // 60 + 5)
    page = operator.get(reverse("router-detail", args=[router.uuid])).content.decode()
    assert "◷ stale" in page


def test_the_report_endpoints_answer_markdown_and_text(operator, router, finding):
    markdown = operator.get(reverse("router-report-md", args=[router.uuid]))
    assert markdown["Content-Type"] == "text/markdown; charset=utf-8"
    assert "`dnsmasq-not-running`" in markdown.content.decode()
    text = operator.get(reverse("router-report-txt", args=[router.uuid])).content.decode()
    assert "[CRITICAL] dnsmasq-not-running (dhcp)" in text
    assert "  | pidof dnsmasq returned nothing" in text


def test_the_markdown_report_keeps_router_output_from_becoming_markup(router, finding):
    Finding.objects.filter(pk=finding.pk).update(evidence=["```", "a\x1b[31m line *with* `ticks`"], title="x *y* <b>")
    text = reports.to_markdown(reports.build_report(router))
    assert "````\n```\na\\x1b[31m line *with* `ticks`\n````" in text
    assert r"x \*y\* \<b\>" in text


def test_the_report_names_the_router_and_its_place(router, finding, settings):
    settings.CONSOLE_URL = "https://console.example.org"
    report = reports.build_report(router)
    assert dict(report.identity) == {
        "Router": "r-231-VM",
        "UUID": router.uuid,
        "Zone": "zone-a",
        "Account": router.account or "—",
        "Network": "network shop-prod",
        "Host": "kvm-07",
        "Version": router.template_version or "—",
    }
    assert report.router_url == f"https://console.example.org/routers/{router.uuid}/"
    assert report.collection_url.startswith("https://console.example.org/collections/")
