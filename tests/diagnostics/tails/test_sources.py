"""Tests of diagnostics.tails.sources: the allowlist, its fixed commands, and which logs a router has."""

from __future__ import annotations

import pytest

from diagnostics.models import Collection, CollectionStatus
from diagnostics.tails.sources import (
    SOURCES_BY_NAME,
    available_sources,
    offered_source,
    offered_sources,
    tail_command,
)
from tests.vrconsole.router_factory import make_region, make_router, make_zone


def files(*paths: str) -> dict:
    return {"files": [{"path": path, "rotated": path.endswith((".1", ".gz"))} for path in paths]}


def test_it_follows_a_router_log_by_name_and_ends_with_its_standard_input() -> None:
    command = tail_command(SOURCES_BY_NAME["cloud"], 200, "r-12-VM", "169.254.3.93")
    assert command == "{ tail -n 200 -F -- /var/log/cloud.log; kill 0; } & read -r line; kill 0"


def test_it_follows_the_qemu_log_of_the_routers_domain_on_the_host() -> None:
    command = tail_command(SOURCES_BY_NAME["qemu"], 50, "r-12-VM", "169.254.3.93")
    assert "tail -n 50 -F -- /var/log/libvirt/qemu/r-12-VM.log;" in command


def test_it_keeps_only_the_agent_lines_that_name_the_router_as_words() -> None:
    command = tail_command(SOURCES_BY_NAME["agent"], 200, "r-12-VM", "169.254.3.93")
    assert "tail -n 5000 -F -- /var/log/cloudstack/agent/agent.log | " in command
    assert "grep --line-buffered -w -F -e r-12-VM -e 169.254.3.93;" in command


@pytest.mark.parametrize(
    ("name", "address"),
    [("r-1-VM; rm -rf /", "169.254.0.2"), ("../../etc/shadow", "169.254.0.2"), ("r-1-VM", "169.254.0.2 -e root")],
)
def test_it_refuses_to_build_a_host_command_from_anything_but_a_name_and_an_address(name: str, address: str) -> None:
    with pytest.raises(ValueError):
        tail_command(SOURCES_BY_NAME["agent"], 10, name, address)


def test_it_offers_the_router_logs_the_last_collection_listed() -> None:
    facts = {"logfiles": files("/var/log/cloud.log", "/var/log/cloud.log.1", "/var/log/dnsmasq.log", "/var/log/wtmp")}
    assert [s.name for s in available_sources(facts, "r-1-VM")] == ["cloud", "dnsmasq"]


def test_it_offers_the_heartbeat_log_only_on_a_redundant_router() -> None:
    assert "keepalived" in [s.name for s in available_sources({"vrrp": {"redundant": True}}, "r-1-VM")]
    assert "keepalived" not in [s.name for s in available_sources({"vrrp": {"redundant": False}}, "r-1-VM")]


def test_it_offers_the_host_logs_the_host_probe_found() -> None:
    facts = {"host_logfiles": files("/var/log/libvirt/qemu/r-1-VM.log")}
    assert [s.name for s in available_sources(facts, "r-1-VM")] == ["qemu"]
    facts = {"host_logfiles": files("/var/log/libvirt/qemu/r-1-VM.log", "/var/log/cloudstack/agent/agent.log")}
    assert [s.name for s in available_sources(facts, "r-1-VM")] == ["qemu", "agent"]


def test_it_offers_nothing_from_garbage_facts() -> None:
    assert available_sources({"logfiles": {"files": "nope"}, "vrrp": [], "host_logfiles": None}, "r-1-VM") == []
    assert available_sources({"host_logfiles": files("/var/log/cloudstack/agent/agent.log")}, "not a name") == []


@pytest.mark.django_db
def test_it_reads_the_offer_from_the_latest_collection_that_listed_files() -> None:
    router = make_router(make_zone(make_region()), name="r-5-VM")
    Collection.objects.create(
        router=router, status=CollectionStatus.SUCCEEDED, facts={"logfiles": files("/var/log/cloud.log")}
    )
    Collection.objects.create(
        router=router, status=CollectionStatus.SUCCEEDED, facts={"logfiles": files("/var/log/dnsmasq.log")}
    )
    Collection.objects.create(router=router, status=CollectionStatus.FAILED, facts={})
    assert [s.name for s in offered_sources(router)] == ["dnsmasq"]
    assert offered_source(router.pk, "dnsmasq") == (router, SOURCES_BY_NAME["dnsmasq"])
    assert offered_source(router.pk, "cloud") is None
    assert offered_source(router.pk, "../../etc/shadow") is None
    assert offered_source(999_999, "dnsmasq") is None


@pytest.mark.django_db
def test_it_offers_nothing_before_a_collection_listed_files() -> None:
    router = make_router(make_zone(make_region()))
    assert offered_sources(router) == []
