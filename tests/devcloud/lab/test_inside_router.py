"""Tests for what a lab router holds: files at their real paths, iptables, dnsmasq, keepalived."""

from __future__ import annotations

import json
import os

import pytest

from devcloud.lab.topology import LabPlan
from tests.devcloud.lab.conftest import in_router, router_of_kind

pytestmark = pytest.mark.lab

REAL_PATHS = [
    "/etc/cloudstack/cmdline.json",
    "/etc/cloudstack/ips.json",
    "/etc/cloudstack/guestnetwork.json",
    "/etc/cloudstack/dhcpentry.json",
    "/etc/dnsmasq.conf",
    "/etc/dnsmasq.d/cloud.conf",
    "/etc/dhcphosts.txt",
    "/etc/dhcpopts.txt",
    "/var/lib/misc/dnsmasq.leases",
    "/etc/cloudstack-release",
    "/var/cache/cloud/cloud-scripts-signature",
    "/opt/cloud/bin/checkrouter.sh",
    "/root/health_checks_data.json",
    "/var/log/cloud.log",
    "/var/log/routerServiceMonitor.log",
]


def test_it_shows_router_files_at_their_real_paths(running_lab: LabPlan) -> None:
    router = router_of_kind(running_lab, "isolated")
    in_router(router, "test", "-f", *REAL_PATHS[:1])
    for path in REAL_PATHS:
        assert in_router(router, "stat", "-c", "%n", path).strip() == path


def test_it_writes_the_boot_arguments_databag(running_lab: LabPlan) -> None:
    router = router_of_kind(running_lab, "vpc")
    config = json.loads(in_router(router, "cat", "/etc/cloudstack/cmdline.json"))["config"]
    assert (config["type"], config["eth0ip"]) == ("vpcrouter", router.control.ipaddress)


def test_it_gives_each_router_a_small_var_log(running_lab: LabPlan) -> None:
    router = router_of_kind(running_lab, "isolated")
    assert in_router(router, "findmnt", "-n", "-o", "FSTYPE", "/var/log").strip() == "tmpfs"


def test_it_writes_the_release_file(running_lab: LabPlan) -> None:
    router = router_of_kind(running_lab, "isolated")
    assert in_router(router, "cat", "/etc/cloudstack-release").startswith("Cloudstack Release 4.20.1 ")


def test_it_keeps_the_known_benign_errors_in_cloud_log(running_lab: LabPlan) -> None:
    log = in_router(router_of_kind(running_lab, "isolated"), "cat", "/var/log/cloud.log")
    assert " ERROR    Not able to setup source-nat for a regular router yet" in log


def test_it_lays_out_isolated_iptables(running_lab: LabPlan) -> None:
    router = router_of_kind(running_lab, "isolated")
    rules = in_router(router, "iptables-save")
    pub = router.public.ipaddress
    assert ":INPUT DROP" in rules and ":FORWARD DROP" in rules and ":OUTPUT ACCEPT" in rules
    assert f"-A POSTROUTING -o eth2 -j SNAT --to-source {pub}" in rules
    assert f"-A FIREWALL_{pub} -j DROP" in rules
    assert "-A FW_OUTBOUND -j FW_EGRESS_RULES" in rules
    assert "-A INPUT -i eth1 -p tcp -m tcp --dport 3922" in rules


def test_it_puts_the_vpc_acls_in_filter_and_mangle(running_lab: LabPlan) -> None:
    router = router_of_kind(running_lab, "vpc")
    assert "-A ACL_INBOUND_eth2 -j DROP" in in_router(router, "iptables-save", "-t", "filter")
    assert ":ACL_OUTBOUND_eth2" in in_router(router, "iptables-save", "-t", "mangle")
    assert "-A INPUT -i eth0 -p tcp -m tcp --dport 3922" in in_router(router, "iptables-save", "-t", "filter")


def test_it_runs_dnsmasq_for_dhcp_on_the_guest_side(running_lab: LabPlan) -> None:
    router = router_of_kind(running_lab, "isolated")
    sockets = in_router(router, "ss", "-H", "-lunp", "sport", "=", ":67")
    assert '"dnsmasq"' in sockets
    assert "except-interface=eth2" in in_router(router, "cat", "/etc/dnsmasq.conf")


def test_it_elects_exactly_one_primary_in_a_redundant_pair(running_lab: LabPlan) -> None:
    pair = [router for router in running_lab.routers if router.redundant]
    statuses = sorted(in_router(router, "/opt/cloud/bin/checkrouter.sh").strip() for router in pair)
    assert statuses == ["Status: BACKUP", "Status: PRIMARY"]


def test_it_runs_haproxy_with_a_listen_section_per_rule(running_lab: LabPlan) -> None:
    router = next(router for router in running_lab.routers if router.runs_haproxy)
    section = f"listen {router.public.ipaddress.replace('.', '_')}-80"
    assert section in in_router(router, "cat", "/etc/haproxy/haproxy.cfg")
    assert '"haproxy"' in in_router(router, "ss", "-H", "-ltnp", "sport", "=", ":80")


def test_it_logs_keepalived_through_the_routers_own_rsyslogd_into_daemon_log(running_lab: LabPlan) -> None:
    router = next(router for router in running_lab.routers if router.redundant)
    in_router(router, "test", "-S", "/dev/log")
    daemon_log = in_router(router, "cat", "/var/log/daemon.log")
    keepalived = [line for line in daemon_log.splitlines() if " Keepalived" in line]
    # rsyslog's traditional format: `Dec  3 05:31:02 r-13-VM Keepalived_vrrp[812]: ...`.
    assert keepalived and all(line.split()[3] == router.name for line in keepalived)


def test_it_keeps_the_machines_dev_free_of_the_routers_log_socket(running_lab: LabPlan) -> None:
    assert (
        not os.path.exists("/dev/log")
        or os.path.islink("/dev/log")
        or os.stat("/dev/log").st_ino
        != int(in_router(router_of_kind(running_lab, "isolated"), "stat", "-c", "%i", "/dev/log").strip())
    )


def test_it_logs_the_password_server_through_syslog_into_messages(running_lab: LabPlan) -> None:
    router = router_of_kind(running_lab, "isolated")
    messages = in_router(router, "cat", "/var/log/messages")
    assert f" {router.name} passwd_server_ip.py: serve_password running on " in messages


def test_it_serves_userdata_over_https_on_the_guest_address(running_lab: LabPlan) -> None:
    router = router_of_kind(running_lab, "isolated")
    guest = router.guest_nics()[0]
    assert f"{guest.ipaddress}:443" in in_router(router, "ss", "-H", "-ltn", "sport", "=", ":443")


def test_it_rewrites_latest_to_the_callers_own_files_over_https(running_lab: LabPlan) -> None:
    router = router_of_kind(running_lab, "isolated")
    guest = router.guest_nics()[0]
    # The router asks as itself, which has no userdata: mod_rewrite maps the request (a 404, not a 500).
    status = in_router(
        router, "curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", f"https://{guest.ipaddress}/latest/user-data"
    )
    assert status == "404"
