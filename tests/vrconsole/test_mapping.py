"""API items to inventory fields: odd data costs a field, never the sync."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrconsole.cloudstack import mapping


def test_master_is_stored_as_primary() -> None:
    assert mapping.redundant_state("MASTER") == "PRIMARY"
    assert mapping.redundant_state("BACKUP") == "BACKUP"
    assert mapping.redundant_state(None) == ""


def test_health_checks_failed_is_computed_from_the_results_not_the_flag() -> None:
    item = {
        "id": "u",
        "healthchecksfailed": False,
        "healthcheckresults": [
            {"checkname": "dns_check.py", "checktype": "advanced", "success": True, "details": "ok"},
            {"checkname": "router_version_check.py", "checktype": "basic", "success": False, "details": "mismatch"},
        ],
    }
    fields = mapping.router_fields(item)
    assert fields["health_checks_failed"] is True
    assert fields["health_checks_failed_api"] is False


def test_string_booleans_from_old_servers_are_understood() -> None:
    checks = mapping.health_checks([{"checkname": "a", "success": "false"}])
    assert checks[0]["success"] is False


def test_invalid_ips_become_null() -> None:
    fields = mapping.router_fields({"linklocalip": "N/A", "guestipaddress": "10.1.1.1 ", "publicip": 42})
    assert fields["link_local_ip"] is None
    assert fields["guest_ip"] == "10.1.1.1"
    assert fields["public_ip"] is None


def test_cloudstack_dates_are_parsed_with_their_offset() -> None:
    assert mapping.date("2025-03-06T14:21:10+0000") == datetime(2025, 3, 6, 14, 21, 10, tzinfo=UTC)
    assert mapping.date("yesterday") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" 2025-03-06T14:21:10+0530 ", datetime(2025, 3, 6, 8, 51, 10, tzinfo=UTC)),
        ("2025-03-06T14:21:10.250+0000", datetime(2025, 3, 6, 14, 21, 10, 250000, tzinfo=UTC)),
        ("2025-03-06T14:21:10-0100", datetime(2025, 3, 6, 15, 21, 10, tzinfo=UTC)),
        ("2025-02-30T14:21:10+0000", None),  # the fast path's shape, not a date
        ("2025-03-06T14:21:10", None),  # no offset: neither path takes it
        ("2025-03-06", None),
        ("2025-03-06T14:21:10+00:0x", None),
    ],
)
def test_both_date_paths_take_the_same_dates(text: str, expected: datetime | None) -> None:
    assert mapping.date(text) == expected


def test_long_and_nul_strings_are_made_storable() -> None:
    assert mapping.text("a\x00b" + "c" * 400, 10) == "abcccccccc"


def test_ip_addresses_are_stored_in_their_canonical_form() -> None:
    assert mapping.ip(" 10.1.1.1 ") == "10.1.1.1"
    assert mapping.ip("010.001.001.001") is None
    assert mapping.ip("10.1.1") is None
    assert mapping.ip("FD00:0:0::1") == "fd00::1"
    assert mapping.ip("N/A") is None


def test_nics_keep_their_api_order_and_mtu() -> None:
    nics = mapping.router_nics(
        {"nic": [{"traffictype": "Guest", "mtu": 1500}, "garbage", {"traffictype": "Control", "mtu": "1450"}]}
    )
    assert [(n["position"], n["traffic_type"], n["mtu"]) for n in nics] == [(0, "Guest", 1500), (2, "Control", 1450)]


def test_router_type_follows_vpc_and_shared_networks() -> None:
    assert mapping.router_type({"vpcid": "v"}, {}) == "vpc"
    assert mapping.router_type({"guestnetworkid": "n"}, {"n": "Shared"}) == "shared"
    assert mapping.router_type({"guestnetworkid": "n"}, {"n": "Isolated"}) == "isolated"


def test_the_digest_changes_with_the_content_only() -> None:
    assert mapping.digest({"a": 1, "b": [2, "x"]}) == mapping.digest({"a": 1, "b": [2, "x"]})
    assert mapping.digest({"a": 1}) != mapping.digest({"a": 2})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            sorted(
                {
                    "id",
                    "name",
                    "state",
                    "nic",
                    "healthcheckresults",
                    "linklocalip",
                    "created",
                    "isredundantrouter",
                    "redundantstate",
                    "version",
                    "requiresupgrade",
                    "zoneid",
                    "mtu",
                }
            )
        )
        | st.text(max_size=8),
        json_values,
        max_size=12,
    )
)
def test_any_json_item_maps_without_raising(item: dict) -> None:
    mapping.router_fields(item)
    mapping.router_nics(item)
    mapping.network_fields(item)
    mapping.host_fields(item)
    mapping.vpc_fields(item)
    mapping.zone_fields(item)
