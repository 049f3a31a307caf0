"""Tests of `manage.py collect ROUTER [--json]` against the loopback sshds."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from diagnostics.models import Collection
from diagnostics.probes.base import Probe
from tests.diagnostics.conftest import SILENT_ADDRESS, make_router
from tests.diagnostics.probe_doubles import parse_conntrack, parse_load, parse_refusing_everything
from vrconsole.models import Host, Region, Router, Zone

pytestmark = pytest.mark.django_db

COMMAND_PROBES = [
    Probe("system", "cat /proc/loadavg", parse_load, timeout=5),
    Probe("conntrack", "printf 'count=%s max=%s\\n' 7 70", parse_conntrack, timeout=5),
    Probe("garbage", "echo garbage", parse_refusing_everything, timeout=5),
]


@pytest.fixture(autouse=True)
def command_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("diagnostics.collect.default_probes", lambda: COMMAND_PROBES)


def run_json(target: str) -> tuple[dict, int]:
    out = StringIO()
    try:
        call_command("collect", target, "--json", stdout=out)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    return json.loads(out.getvalue().strip().splitlines()[-1]), code


def test_it_prints_one_json_object_on_the_last_line(ssh_settings: object, kvm_router: Router) -> None:
    payload, code = run_json(kvm_router.name)
    assert code == 0
    assert payload["router"]["uuid"] == kvm_router.uuid
    assert payload["collection"]["status"] == "succeeded"
    assert payload["facts"]["conntrack"] == {"count": 7, "max": 70, "used_percent": 10.0}


def test_it_lists_each_probe_with_its_outcome(ssh_settings: object, kvm_router: Router) -> None:
    payload, _ = run_json(kvm_router.uuid)
    probes = payload["collection"]["probes"]
    assert set(probes) == {"system", "conntrack", "garbage"}
    assert probes["system"]["ok"] is True and probes["garbage"]["ok"] is False
    assert probes["garbage"]["error"].startswith("unparseable output")


def test_it_records_the_run_as_a_command_collection(ssh_settings: object, kvm_router: Router) -> None:
    run_json(kvm_router.name)
    assert Collection.objects.get(router=kvm_router).trigger == "command"


def test_it_exits_non_zero_when_the_collection_failed(
    ssh_settings: object, region: Region, zone: Zone, kvm_host: Host
) -> None:
    router = make_router(region, zone, kvm_host, "r-40-VM", link_local_ip=SILENT_ADDRESS)
    payload, code = run_json(router.name)
    assert code == 1
    assert (payload["collection"]["status"], payload["collection"]["reason"]) == ("failed", "router_unreachable")


def test_it_prints_facts_readably_without_json(ssh_settings: object, kvm_router: Router) -> None:
    out = StringIO()
    call_command("collect", kvm_router.name, stdout=out)
    text = out.getvalue()
    assert "collection succeeded" in text
    assert "== conntrack" in text and '"max": 70' in text


def test_it_refuses_an_unknown_router(ssh_settings: object, kvm_router: Router) -> None:
    with pytest.raises(CommandError):
        call_command("collect", "r-999-VM")


def test_it_reports_an_errored_collection_and_exits_non_zero(
    ssh_settings: object, kvm_router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    class BrokenVerifier:
        def check(self, *args: object) -> None:
            raise RuntimeError("verifier bug")

    monkeypatch.setattr("diagnostics.collect.PinnedHostKeys", BrokenVerifier)
    payload, code = run_json(kvm_router.name)
    assert code == 1
    assert payload["collection"]["status"] == "errored"
