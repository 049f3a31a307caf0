"""The router page's actions: the panels an operator and a viewer see, and the endpoints behind them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import django_rq
import pytest
from django.test import Client
from django.urls import reverse
from rq import Queue

from devcloud.simulator.server import RunningSimulator
from diagnostics.action_jobs import run_action
from diagnostics.models import ActionRun, ActionStatus, FailureEvidence, Finding
from tests.diagnostics.actions.support import operator, pick, viewer
from tests.vrconsole.router_factory import make_network, make_region, make_router, make_zone
from vrconsole.models import AuditEntry, Region, Router
from vrconsole.queues import ACTIONS

pytestmark = pytest.mark.django_db


@pytest.fixture
def actions_queue() -> Iterator[Queue]:
    queue = django_rq.get_queue(ACTIONS)
    queue.empty()
    yield queue
    queue.empty()


@pytest.fixture
def router() -> Router:
    zone = make_zone(make_region())
    return make_router(zone, name="r-31-VM", network=make_network(zone, name="shop-prod"), state="Error")


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page(client: Client, router: Router) -> str:
    return client.get(reverse("router-detail", args=[router.uuid])).content.decode()


def test_an_operator_sees_every_action_with_what_it_will_do(router: Router) -> None:
    html = page(signed_in(operator()), router)
    assert 'id="actions"' in html and "js/actions.js" in html and 'data-socket-path="/ws/routers/' in html
    assert 'id="action-dialog-restart-network-cleanup"' in html
    assert "CloudStack destroys every router of the network shop-prod (r-31-VM)" in html
    assert 'name="reason"' in html and "required" in html
    assert 'name="capture_evidence" value="on"' in html
    # dnsmasq cannot restart in a router that is not Running: the button is disabled with the reason.
    assert "✖ Restart dnsmasq: r-31-VM is Error: a service restart needs a Running router." in html


def test_a_viewer_sees_the_runs_but_no_action_and_no_script(router: Router) -> None:
    html = page(signed_in(viewer()), router)
    assert 'id="actions"' in html and "are run by operators" in html
    assert "action-dialog" not in html and "js/actions.js" not in html and "data-action-url" not in html


def test_a_viewer_is_refused_by_the_endpoint_and_it_is_audited(router: Router, actions_queue: Queue) -> None:
    response = signed_in(viewer()).post(
        reverse("router-action", args=[router.pk]), {"action": "reboot", "reason": "curious"}
    )
    assert response.status_code == 403 and response.json() == {"error": "Only operators can act on routers."}
    assert not ActionRun.objects.exists() and actions_queue.count == 0
    assert AuditEntry.objects.get(action="action.refused").outcome == "forbidden"


def test_an_operator_action_is_recorded_and_queued(
    router: Router, actions_queue: Queue, django_capture_on_commit_callbacks: Any
) -> None:
    # The test's transaction holds django-rq's enqueue until commit, as a view's would outside tests.
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in(operator()).post(
            reverse("router-action", args=[router.pk]),
            {"action": "restart-network-cleanup", "reason": "INC-9 router in Error", "capture_evidence": "on"},
        )
    assert response.status_code == 202, response.content
    run = ActionRun.objects.get(pk=response.json()["action_id"])
    assert (run.status, run.capture_evidence, run.username, run.source) == ("pending", True, "oncall", "page")
    assert [job.args for job in actions_queue.get_jobs()] == [(run.pk,)]


def test_a_missing_reason_and_a_busy_network_are_refused_with_the_reason(router: Router, actions_queue: Queue) -> None:
    client = signed_in(operator())
    url = reverse("router-action", args=[router.pk])
    assert client.post(url, {"action": "stop-forced", "reason": ""}).json()["error"].startswith("A reason is required")
    assert client.post(url, {"action": "stop-forced", "reason": "INC-1"}).status_code == 202
    busy = client.post(url, {"action": "restart-network", "reason": "INC-1 too"})
    assert busy.status_code == 409 and "one at a time per network" in busy.json()["error"]
    assert client.post(url, {"action": "explode", "reason": "x"}).status_code == 400


def test_the_remedy_of_a_finding_links_to_its_action(router: Router) -> None:
    Finding.objects.create(
        router=router,
        rule="router-in-error-state",
        category="api-state",
        severity="critical",
        title="in Error",
        remediation="Restart network with cleanup",
        action="restart-network-cleanup",
    )
    assert 'data-open-action="restart-network-cleanup">Restart network with cleanup</a>' in page(
        signed_in(operator()), router
    )
    assert "An operator can run it from this page: Restart network with cleanup" in page(signed_in(viewer()), router)


def test_the_evidence_panel_shows_cloudstacks_text(router: Router) -> None:
    FailureEvidence.objects.create(
        router=router,
        status="complete",
        failed_jobs=[
            {
                "jobid": "j-1",
                "command": "StartRouterCmd",
                "status": "failed",
                "errorcode": 533,
                "errortext": "Unable to create a deployment for VM[DomainRouter|r-31-VM]",
                "created": "2025-01-01T00:00:00+0000",
            }
        ],
        events=[{"level": "ERROR", "type": "ROUTER.START", "description": "Error while starting router Vm"}],
        host={"none": True},
        template={"found": True, "isready": True, "name": "systemvm-kvm-4.20.1"},
        network={"kind": "network", "name": "shop-prod", "state": "Implemented", "restartrequired": True},
        management_log={"configured": False, "servers": []},
    )
    html = page(signed_in(viewer()), router)
    assert "Why CloudStack failed it" in html and "r-31-VM in Error" in html
    assert "[533] Unable to create a deployment for VM[DomainRouter|r-31-VM]" in html
    assert "Error while starting router Vm" in html and "restart required" in html
    assert "set MANAGEMENT_SERVERS" in html
    assert "Read CloudStack&#x27;s record now" not in html  # viewers read, operators ask for a new read


def test_an_operator_asks_for_a_fresh_read_of_cloudstacks_record(router: Router, actions_queue: Queue) -> None:
    client = signed_in(operator())
    url = reverse("router-failure-evidence", args=[router.pk])
    answer = client.post(url)
    assert answer.status_code == 202
    assert client.post(url).json()["already_running"] is True
    assert signed_in(viewer()).post(url).status_code == 403
    fragment = client.get(url).content.decode()
    assert fragment.lstrip().startswith("<section") and "Reading CloudStack" in fragment


def test_the_queued_job_runs_the_action(sim: RunningSimulator, synced: Region, actions_queue: Queue) -> None:
    target = pick(sim, synced, state="Running", isredundantrouter=False, vpc=False)
    response = signed_in(operator()).post(
        reverse("router-action", args=[target.pk]), {"action": "reboot", "reason": "INC-11"}
    )
    assert response.status_code == 202
    assert run_action(response.json()["action_id"]) == ActionStatus.SUCCEEDED


def test_the_offerings_come_from_cloudstack(sim: RunningSimulator, synced: Region) -> None:
    target = pick(sim, synced, state="Running", isredundantrouter=False)
    answer = signed_in(operator()).get(reverse("router-offerings", args=[target.pk])).json()
    assert [o["name"] for o in answer["offerings"]] == [
        "System Offering For Software Router",
        "System Offering For Software Router - Large",
    ]
    assert signed_in(viewer()).get(reverse("router-offerings", args=[target.pk])).status_code == 403
