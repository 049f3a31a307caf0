"""Tests of the router page's "Collect now" endpoint, with jobs queued on the real Redis collect queue."""

from __future__ import annotations

from collections.abc import Iterator

import django_rq
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from redis import Redis
from rq import Queue

from diagnostics import jobs
from diagnostics.jobs import collect_router
from diagnostics.models import Collection, CollectionStatus, CollectionTrigger
from tests.vrconsole.router_factory import make_region, make_router, make_zone
from vrconsole.models import AuditEntry, Router
from vrconsole.queues import COLLECT_NOW
from vrconsole.roles import OPERATOR

pytestmark = pytest.mark.django_db


@pytest.fixture
def collect_queue() -> Iterator[Queue]:
    queue = django_rq.get_queue(COLLECT_NOW)
    queue.empty()
    yield queue
    queue.empty()


@pytest.fixture
def router() -> Router:
    return make_router(make_zone(make_region()), name="r-7-VM")


@pytest.fixture
def operator_client(client: Client) -> Client:
    user = get_user_model().objects.create_user("oncall", password="operator-password-1")
    user.groups.add(Group.objects.get_or_create(name=OPERATOR)[0])
    client.force_login(user)
    return client


@pytest.fixture
def viewer_client(client: Client) -> Client:
    client.force_login(get_user_model().objects.create_user("watcher", password="viewer-password-1"))
    return client


def collect_url(router: Router) -> str:
    return reverse("router-collect", args=[router.pk])


def test_it_queues_a_collection_for_an_operator(
    operator_client, router, collect_queue, django_capture_on_commit_callbacks
):
    # The test's transaction holds django-rq's enqueue until commit, as a view's would outside tests.
    with django_capture_on_commit_callbacks(execute=True):
        response = operator_client.post(collect_url(router))
    assert response.status_code == 200
    collection = Collection.objects.get(pk=response.json()["collection_id"])
    assert (collection.router_id, collection.status) == (router.pk, CollectionStatus.PENDING)
    assert collection.trigger == CollectionTrigger.OPERATOR
    assert collection.requested_by.username == "oncall"
    [job] = collect_queue.get_jobs()
    assert job.func == collect_router
    assert job.args == (router.pk, collection.pk)


def test_it_writes_an_audit_entry_for_the_request(operator_client, router, collect_queue):
    response = operator_client.post(collect_url(router))
    entry = AuditEntry.objects.get(action="collect.requested")
    assert (entry.username, entry.router_id, entry.outcome) == ("oncall", router.pk, "queued")
    assert f"collection {response.json()['collection_id']}" in entry.detail


def test_it_refuses_a_viewer_with_403(viewer_client, router, collect_queue):
    response = viewer_client.post(collect_url(router))
    assert response.status_code == 403
    assert "operators" in response.json()["error"]
    assert collect_queue.count == 0
    assert not Collection.objects.filter(router=router).exists()
    assert not AuditEntry.objects.filter(router=router).exists()


def test_it_sends_an_anonymous_visitor_to_the_login_page(client, router, collect_queue):
    response = client.post(collect_url(router))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert collect_queue.count == 0


def test_it_refuses_a_get(operator_client, router, collect_queue):
    response = operator_client.get(collect_url(router))
    assert response.status_code == 405
    assert collect_queue.count == 0


def test_it_refuses_a_post_without_the_csrf_token(router, collect_queue):
    user = get_user_model().objects.create_user("oncall", password="operator-password-1", is_superuser=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(collect_url(router)).status_code == 403
    assert collect_queue.count == 0


def test_it_follows_the_collection_already_in_flight(operator_client, router, collect_queue):
    running = Collection.objects.create(router=router, status=CollectionStatus.RUNNING)
    answer = operator_client.post(collect_url(router)).json()
    assert (answer["collection_id"], answer["already_running"]) == (running.pk, True)
    assert collect_queue.count == 0


def test_it_refuses_a_router_the_api_no_longer_lists(operator_client, router, collect_queue):
    Router.objects.filter(pk=router.pk).update(removed_at=timezone.now())
    response = operator_client.post(collect_url(router))
    assert response.status_code == 409
    assert collect_queue.count == 0


def test_it_answers_404_for_an_unknown_router(operator_client, collect_queue):
    assert operator_client.post(reverse("router-collect", args=[999999])).status_code == 404


def test_it_says_the_queue_is_down_and_audits_it_when_redis_refuses(operator_client, router, monkeypatch):
    nowhere = Queue(COLLECT_NOW, connection=Redis(host="127.0.0.1", port=1, socket_connect_timeout=1))
    monkeypatch.setattr(jobs.django_rq, "get_queue", lambda name: nowhere)
    response = operator_client.post(collect_url(router))
    assert response.status_code == 503
    assert "job queue (Redis)" in response.json()["error"]
    assert AuditEntry.objects.get(action="collect.requested").outcome == "error"
    assert Collection.objects.get(router=router).reason == "job_lost"
