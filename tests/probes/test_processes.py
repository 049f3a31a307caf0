"""Service detection and defunct counting from ps output."""

from __future__ import annotations

import pytest

from diagnostics.probes import processes
from diagnostics.probes.base import ParseError

PS = """\
    1     0 Ss      9000 /sbin/init
  400     1 Ss      8000 /usr/sbin/haproxy -f /etc/haproxy/haproxy.cfg -p /var/run/haproxy.pid -D
  401   400 Z        100 [haproxy] <defunct>
  402   400 Z        100 [haproxy] <defunct>
  410     1 S       7000 /usr/sbin/dnsmasq --conf-file=/etc/dnsmasq.conf
  420     1 Ss      6000 sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups
  421   420 Ss        10 sshd: root@notty
  430     1 S       5000 python3 /opt/cloud/bin/passwd_server_ip.py 10.1.1.1
  440     2 I          0 [kworker/0:1-events]
"""


def test_it_counts_defunct_children_of_haproxy() -> None:
    haproxy = processes.parse(PS).service("haproxy")
    assert (haproxy.running, haproxy.pids, haproxy.defunct) == (True, (400,), 2)


def test_it_reports_a_service_with_only_zombies_as_not_running() -> None:
    text = "  401   1 Z   100 [dnsmasq] <defunct>\n"
    dnsmasq = processes.parse(text).service("dnsmasq")
    assert (dnsmasq.running, dnsmasq.defunct) == (False, 1)


def test_it_finds_sshd_by_its_retitled_command_line() -> None:
    assert processes.parse(PS).service("sshd").pids == (420, 421)


def test_it_finds_the_password_server_by_its_script() -> None:
    assert processes.parse(PS).service("password_server").pids == (430,)


def test_it_reports_absent_services_as_not_running() -> None:
    assert processes.parse(PS).service("keepalived").running is False


def test_it_counts_all_zombies() -> None:
    assert processes.parse(PS).zombie_count == 2


def test_it_refuses_lines_that_are_not_ps_output() -> None:
    with pytest.raises(ParseError, match="pid ppid stat etimes args"):
        processes.parse("hello world\n")
