"""A collection's numbers: rates from the previous collection's counters, the DHCP range size."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from diagnostics.collect import store_health_sample
from diagnostics.models import Collection, CollectionStatus
from diagnostics.samples import dhcp_range_size, health_numbers
from tests.vrconsole.router_factory import make_region, make_router, make_zone


def interfaces(rx_bytes: int, rx_errors: int = 0) -> dict:
    return {
        "interfaces": [
            {"name": "lo", "rx_bytes": 10**9, "tx_bytes": 10**9, "addresses": []},
            {
                "name": "eth0",
                "rx_bytes": rx_bytes,
                "tx_bytes": 2 * rx_bytes,
                "rx_errors": rx_errors,
                "tx_errors": 0,
                "rx_dropped": 0,
                "tx_dropped": 0,
                "addresses": [{"family": "inet", "address": "10.1.1.1", "prefixlen": 24}],
            },
        ]
    }


def test_interface_rates_are_bits_and_events_per_second_since_the_previous_collection() -> None:
    numbers = health_numbers(
        {"interfaces": interfaces(1_000_000, 30)}, {"interfaces": interfaces(250_000, 0)}, seconds=300.0
    )
    assert numbers["per_nic"] == {"eth0": [20000.0, 40000.0, 0.1, 0.0, 0.0, 0.0]}


def test_a_counter_that_went_back_or_a_first_collection_gives_no_rate_not_zero() -> None:
    rebooted = health_numbers({"interfaces": interfaces(1_000)}, {"interfaces": interfaces(9_000_000)}, 300.0)
    assert rebooted["per_nic"]["eth0"][:2] == [None, None]
    first = health_numbers({"interfaces": interfaces(1_000)})
    assert first["per_nic"]["eth0"] == [None] * 6


def test_softirq_per_cpu_and_softnet_drops_per_second() -> None:
    facts = {
        "cpu": {"per_cpu": [{"cpu": "cpu0", "softirq": 42.5, "interval_ticks": 100}]},
        "softnet": {"cpus": [{"cpu": 0, "dropped": 700}, {"cpu": 1, "dropped": 5}]},
    }
    before = {"softnet": {"cpus": [{"cpu": 0, "dropped": 100}, {"cpu": 1, "dropped": 5}]}}
    numbers = health_numbers(facts, before, 60.0)
    assert numbers["per_cpu"] == {"cpu0": [42.5, 10.0], "cpu1": [None, 0.0]}
    assert numbers["softnet_drops_ps"] == 10.0


def test_the_dhcp_range_of_a_static_cloudstack_range_is_the_guest_subnet_less_the_router() -> None:
    facts = {
        "interfaces": interfaces(0),
        "dnsmasq": {"ranges": [{"tag": "interface-eth0-0", "start": "10.1.1.1", "end": "", "mode": "static"}]},
    }
    assert dhcp_range_size(facts) == 253
    facts["dnsmasq"]["ranges"] = [{"tag": "x", "start": "10.1.1.100", "end": "10.1.1.149", "mode": ""}]
    assert dhcp_range_size(facts) == 50
    assert dhcp_range_size({"interfaces": interfaces(0)}) is None


@pytest.mark.django_db
def test_the_stored_sample_takes_its_rates_from_the_previous_successful_collection() -> None:
    router = make_router(make_zone(make_region()), name="r-5-VM")
    now = timezone.now()
    Collection.objects.create(
        router=router,
        status=CollectionStatus.SUCCEEDED,
        started=now - timedelta(seconds=100),
        facts={"interfaces": interfaces(0), "system": {"load1": 1.0}},
    )
    current = Collection.objects.create(
        router=router, status=CollectionStatus.RUNNING, started=now, facts={"interfaces": interfaces(1_000)}
    )
    sample = store_health_sample(current)
    assert sample.per_nic["eth0"][0] == 80.0
    assert sample.collection_id == current.pk
