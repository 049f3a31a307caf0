"""Tests for the files a lab router holds, in their real formats (pure, no root needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from devcloud.lab.router_files import RouterFile, bash_date, config_apply_failure, python_log_line, router_files
from devcloud.lab.topology import Router, plan_lab

CREATED = datetime(2026, 3, 18, 21, 43, 11, tzinfo=UTC)


def _files(kind: str) -> tuple[Router, dict[str, RouterFile]]:
    plan = plan_lab("vrc", 0)
    router = next(router for router in plan.routers if router.kind == kind)
    return router, router_files(plan, router, CREATED, "ssh-rsa AAAA test", "note")


def test_it_formats_bash_dates_as_log_it_does() -> None:
    assert bash_date(CREATED) == "Wed Mar 18 09:43:11 PM UTC 2026"


def test_it_pads_the_level_name_to_eight_characters() -> None:
    assert python_log_line(CREATED, "INFO", "x") == "2026-03-18 21:43:11,000 INFO     x"


def test_it_ends_an_apply_failure_with_the_vr_cfg_line() -> None:
    text = config_apply_failure(CREATED, "0b1c")
    assert "Traceback (most recent call last):" in text
    assert text.splitlines()[-1].startswith("Wed Mar 18 09:43:11 PM UTC 2026 : VR config: executing failed: ")


def test_it_writes_databags_as_sorted_indented_json() -> None:
    _, files = _files("isolated")
    text = files["/etc/cloudstack/ips.json"].content.decode()
    assert text == json.dumps(json.loads(text), indent=4, sort_keys=True) + "\n"


def test_it_seeds_leases_as_csdhcp_does() -> None:
    router, files = _files("isolated")
    vm = router.vms[0]
    assert f"0 {vm.macaddress} {vm.ipaddress} {vm.name} *" in files["/var/lib/misc/dnsmasq.leases"].content.decode()


def test_it_writes_the_keepalived_instance_of_the_template() -> None:
    router, files = _files("redundant")
    conf = files["/etc/keepalived/keepalived.conf"].content.decode()
    for line in ("vrrp_instance inside_network {", "state BACKUP", "nopreempt", "virtual_router_id 51", "advert_int 1"):
        assert line in conf
    assert f"{router.guest_nics()[0].gateway}/24" in conf


def test_it_pins_sshd_to_the_control_address_on_3922() -> None:
    router, files = _files("vpc")
    conf = files["/etc/ssh/sshd_config"].content.decode()
    assert "Port 3922" in conf and f"ListenAddress {router.control.ipaddress}" in conf


def test_it_names_haproxy_sections_after_the_public_ip_and_port() -> None:
    router, files = _files("isolated")
    assert (
        f"listen {router.public.ipaddress.replace('.', '_')}-80" in files["/etc/haproxy/haproxy.cfg"].content.decode()
    )
