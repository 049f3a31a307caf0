"""Helpers of the error-triage and action tests: picking synced routers, users, a recording publisher."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User

from devcloud.simulator.server import RunningSimulator
from vrconsole.models import Region, Router
from vrconsole.roles import OPERATOR

REGION = "lab"


def pick(sim: RunningSimulator, synced: Region, **wanted: Any) -> Router:
    """The first synced router whose API data matches (e.g. state="Running", isredundantrouter=False, vpc=False)."""
    vpc = wanted.pop("vpc", None)
    for router in sim.cloud.fleet.routers:
        data = router.data
        if vpc is not None and bool(data.get("vpcid")) != vpc:
            continue
        if all(data.get(key) == value for key, value in wanted.items()):
            return Router.objects.select_related("region", "zone", "host", "network", "vpc").get(
                region=synced, uuid=router.id
            )
    raise AssertionError(f"no simulated router with {wanted}")


def operator(name: str = "oncall") -> User:
    """An operator (the same one when asked twice by name)."""
    user = get_user_model().objects.filter(username=name).first()
    if user is None:
        user = get_user_model().objects.create_user(name, password="operator-password-1")
        user.groups.add(Group.objects.get_or_create(name=OPERATOR)[0])
    return user


def viewer(name: str = "watcher") -> User:
    return get_user_model().objects.create_user(name, password="viewer-password-1")


class Published:
    """A publisher that keeps what a job published (and passes nothing to Redis)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, group: str, event: Mapping[str, Any]) -> None:
        self.events.append((group, dict(event)))

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [event for _, event in self.events if event.get("type") == kind]


def recording_collect() -> Any:
    """The real collect_and_evaluate, remembering each call's collection id and probe list."""
    from diagnostics.jobs import collect_and_evaluate

    calls: list[tuple[int, Any]] = []

    def collect(collection: Any, **options: Any) -> Any:
        calls.append((collection.pk, options.get("probes")))
        return collect_and_evaluate(collection, **options)

    collect.calls = calls  # type: ignore[attr-defined]
    return collect
