"""Tests for the files a lab router holds, in their real formats (pure, no root needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from devcloud.lab.router_files import (
    RouterFile,
    bash_date,
    config_apply_failure,
    python_log_line,
    router_files,
    syslog_time,
)
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


def test_it_writes_dnsmasq_conf_from_the_template_without_authoritative_or_log_dhcp() -> None:
    router, files = _files("isolated")
    conf = files["/etc/dnsmasq.conf"].content.decode().splitlines()
    assert "dhcp-authoritative" not in conf and "log-dhcp" not in conf
    assert f"dhcp-range={router.guest_nics()[0].ipaddress},static" in conf
    assert "dhcp-optsfile=/etc/dhcpopts.txt" in conf and "leasefile-ro" not in conf


def test_it_tags_a_non_default_nic_in_dhcphosts_and_dhcpopts() -> None:
    router, files = _files("isolated")
    vm = router.vms[-1]
    tag = vm.ipaddress.replace(".", "_")
    assert (
        f"{vm.macaddress},set:{tag},{vm.ipaddress},{vm.name},infinite" in files["/etc/dhcphosts.txt"].content.decode()
    )
    assert files["/etc/dhcpopts.txt"].content.decode().splitlines() == [f"{tag},3", f"{tag},6", f"{tag},15"]
    assert json.loads(files["/etc/cloudstack/dhcpentry.json"].content)[vm.ipaddress]["default_entry"] is False


def test_it_writes_etc_hosts_as_csdhcp_does_with_its_ipv6_lines() -> None:
    router, files = _files("isolated")
    lines = files["/etc/hosts"].content.decode().splitlines()
    assert lines[:5] == [
        "127.0.0.1\tlocalhost",
        f"127.0.1.1\t{router.name}",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "ff02::1\tip6-allnodes",
        "ff02::2\tip6-allrouters",
    ]
    assert f"{router.guest_nics()[0].ipaddress}\t{router.name} data-server" in lines


def test_it_keeps_the_load_balancer_databag_in_cloudstacks_shape() -> None:
    router, files = _files("isolated")
    bag = json.loads(files["/etc/cloudstack/loadbalancer.json"].content)
    rule = bag["config"][0]
    assert rule["add_rules"] == [f"{router.public.ipaddress}:80"]
    assert "\n".join(rule["configuration"]) + "\n" == files["/etc/haproxy/haproxy.cfg"].content.decode()


def test_it_keeps_vm_metadata_as_entries_and_serves_them() -> None:
    router, files = _files("isolated")
    vm = router.vms[0]
    entries = json.loads(files["/etc/cloudstack/vmdata.json"].content)[vm.ipaddress]
    assert ["metadata", "local-hostname", vm.name] in entries
    assert files[f"/var/www/html/userdata/{vm.ipaddress}/user-data"].content.startswith(b"#cloud-config")
    assert f"Allow from {vm.ipaddress}" in files[f"/var/www/html/metadata/{vm.ipaddress}/.htaccess"].content.decode()


def test_it_writes_vhosts_on_80_and_443_as_csapache_does() -> None:
    router, files = _files("redundant")
    guest = router.guest_nics()[0]
    vhost = files[f"/etc/apache2/sites-enabled/vhost-{guest.ipaddress}.conf"].content.decode()
    assert f"<VirtualHost {guest.ipaddress}:443 {guest.gateway}:443>" in vhost
    assert f"Listen {guest.ipaddress}:80" in vhost and f"Listen {guest.gateway}:443" in vhost


def test_it_writes_a_vpc_routers_dnsmasq_conf_from_vpcdnsmasq_conf() -> None:
    _, files = _files("vpc")
    conf = files["/etc/dnsmasq.conf"].content.decode().splitlines()
    assert "except-interface=lo" in conf and not [line for line in conf if line.startswith("dhcp-range")]
    assert files["/etc/dnsmasq.d/cloud.conf"].content.decode().splitlines()[0] == "dhcp-hostsfile=/etc/dhcphosts.txt"


def test_it_pads_syslog_days_with_a_space_as_rsyslog_does() -> None:
    assert syslog_time(datetime(2026, 12, 3, 5, 31, 2, tzinfo=UTC)) == "Dec  3 05:31:02"
