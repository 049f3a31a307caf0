"""Log line classification: timestamps of every format, benign ERROR lines, kinds and traceback grouping."""

from __future__ import annotations

from diagnostics.probes import logs


def _tail(text: str) -> logs.LogsFacts:
    body = "".join(f"|{line}\n" for line in text.splitlines())
    return logs.parse("".join(f"==> {path} <==\n{body if path == logs.FILES[0] else ''}" for path in logs.FILES))


def test_it_reads_the_python_logging_timestamp_and_padded_level() -> None:
    line = logs.classify(1, "2025-03-06 14:21:10,953 INFO     Address 10.1.1.13/24 on device eth3 already configured")
    assert (line.timestamp, line.level, line.error) == ("2025-03-06T14:21:10.953", "INFO", False)


def test_it_reads_the_bash_log_it_timestamp_with_am_pm() -> None:
    line = logs.classify(1, "Tue Mar 18 09:43:11 PM UTC 2025 Starting guest services for kvm")
    assert line.timestamp == "2025-03-18T21:43:11"


def test_it_reads_midnight_and_noon_in_twelve_hour_form() -> None:
    midnight = logs.classify(1, "Wed Mar 19 12:05:00 AM UTC 2025 x").timestamp
    noon = logs.classify(1, "Wed Mar 19 12:05:00 PM UTC 2025 x").timestamp
    assert (midnight, noon) == ("2025-03-19T00:05:00", "2025-03-19T12:05:00")


def test_it_reads_the_vr_cfg_timestamp_and_marks_the_program() -> None:
    line = logs.classify(
        1, "Tue Mar 18 21:43:22 UTC 2025 : VR config: executing: /opt/cloud/bin/update_config.py a.json"
    )
    assert (line.timestamp, line.program, line.error) == ("2025-03-18T21:43:22", "vr_cfg", False)


def test_it_writes_syslog_timestamps_without_a_year() -> None:
    line = logs.classify(1, "Feb  2 10:59:34 dnsmasq-dhcp[1014]: DHCPACK(eth0) 10.1.1.13 02:00:4c:5e:00:01 web-1")
    assert (line.timestamp, line.program) == ("--02-02T10:59:34", "dnsmasq-dhcp")


def test_it_reads_rfc3339_syslog_lines() -> None:
    line = logs.classify(1, "2025-03-18T22:01:05.123456+00:00 r-12-VM charon: 09[IKE] giving up after 5 retransmits")
    assert (line.timestamp, line.program, line.kind) == ("2025-03-18T22:01:05.123456", "charon", logs.IKE_ERROR)


def test_it_recognises_each_benign_error_line() -> None:
    benign = [
        "2025-03-06 14:21:10,989 ERROR    Command 'ip link show eth0 | grep 'state DOWN'' returned non-zero exit status 1",
        "2025-03-06 14:21:10,989 ERROR    Command 'nft list tables ip6 | grep ip6_firewall' returned non-zero exit status 1",
        "2025-03-06 14:21:10,989 ERROR    Command 'nft list tables ip6 | grep ip6_acl' returned non-zero exit status 1",
        "2025-03-06 14:21:10,971 ERROR    Not able to setup source-nat for a regular router yet",
    ]
    assert all(logs.classify(1, text).benign for text in benign)


def test_it_does_not_call_other_failed_commands_benign() -> None:
    line = logs.classify(
        1,
        "2025-03-06 14:21:10,989 ERROR    Command 'ip route add default via 198.51.100.1 table Table_eth1' returned non-zero exit status 2",
    )
    assert (line.error, line.benign, line.kind) == (True, False, logs.ERROR)


def test_it_leaves_benign_lines_out_of_the_error_count() -> None:
    tail = _tail("2025-03-06 14:21:10,971 ERROR    Not able to setup source-nat for a regular router yet\n")
    cloud = tail.file("/var/log/cloud.log")
    assert cloud is not None and (cloud.error_count, cloud.benign_error_count) == (0, 1)


def test_it_flags_a_config_apply_failure() -> None:
    line = logs.classify(
        1, "Tue Mar 18 21:50:02 UTC 2025 : VR config: executing failed: /opt/cloud/bin/update_config.py x.json"
    )
    assert (line.kind, line.error) == (logs.CONFIG_APPLY_FAILED, True)


def test_it_flags_deleted_rules_without_calling_them_errors() -> None:
    line = logs.classify(1, "2025-03-18 21:50:01,530 INFO     Delete rule -A PREROUTING -j X from table nat")
    assert (line.kind, line.error) == (logs.DELETE_RULE, False)


def test_it_flags_a_stale_lease_message() -> None:
    text = "Feb 20 10:59:40 dnsmasq-dhcp[1014]: not using configured address 10.1.1.14 because it is leased to 1e:00:ac:00:08:8d"
    assert logs.classify(1, text).kind == logs.DHCP_ADDRESS_LEASED


def test_it_flags_a_full_conntrack_table() -> None:
    text = "Mar 18 22:01:04 r-12-VM kernel: [ 8123.442211] nf_conntrack: table full, dropping packet"
    assert logs.classify(1, text).kind == logs.CONNTRACK_TABLE_FULL


def test_it_flags_keepalived_transitions_and_only_fault_as_an_error() -> None:
    master = logs.classify(1, "Mar 18 21:43:34 r-12-VM Keepalived_vrrp[2211]: (inside_network) Entering MASTER STATE")
    fault = logs.classify(1, "Mar 18 22:01:03 r-12-VM Keepalived_vrrp[2211]: (inside_network) Entering FAULT STATE")
    assert (master.kind, master.error, fault.kind, fault.error) == (
        logs.VRRP_TRANSITION,
        False,
        logs.VRRP_TRANSITION,
        True,
    )


def test_it_groups_a_traceback_into_one_failure() -> None:
    tail = _tail(
        "2025-03-18 21:50:01,402 INFO     Processing JSON file x\n"
        "Traceback (most recent call last):\n"
        '  File "/opt/cloud/bin/configure.py", line 1392, in main\n'
        "    config.address().process()\n"
        "KeyError: 'public_ip'\n"
        "2025-03-18 21:50:01,602 INFO     next\n"
    ).file("/var/log/cloud.log")
    assert tail is not None
    assert [(t.first_line, t.last_line, t.exception) for t in tail.tracebacks] == [(2, 5, "KeyError: 'public_ip'")]
    assert [line.kind for line in tail.lines] == ["info", "traceback", "traceback", "traceback", "traceback", "info"]
    assert tail.error_count == 1


def test_it_keeps_chained_tracebacks_in_one_group() -> None:
    tail = _tail('Traceback (most recent call last):\n  File "a.py", line 1, in <module>\nValueError: first\n').file(
        "/var/log/cloud.log"
    )
    chained = _tail(
        "Traceback (most recent call last):\n"
        '  File "a.py", line 1, in <module>\n'
        "\n"
        "During handling of the above exception, another exception occurred:\n"
        "\n"
        "Traceback (most recent call last):\n"
        '  File "b.py", line 2, in <module>\n'
        "OSError: second\n"
    ).file("/var/log/cloud.log")
    assert tail is not None and chained is not None
    assert [t.exception for t in chained.tracebacks] == ["OSError: second"]
    assert len(tail.tracebacks) == 1


def test_it_closes_a_traceback_cut_off_by_the_tail() -> None:
    tail = _tail('Traceback (most recent call last):\n  File "a.py", line 1, in <module>\n').file("/var/log/cloud.log")
    assert tail is not None and [(t.last_line, t.exception) for t in tail.tracebacks] == [(2, "")]


def test_it_cannot_be_fooled_by_a_log_line_that_looks_like_a_section_marker() -> None:
    tail = _tail("==> /var/log/daemon.log <==\nnext\n")
    cloud, daemon = tail.file("/var/log/cloud.log"), tail.file("/var/log/daemon.log")
    assert cloud is not None and daemon is not None
    assert [line.text for line in cloud.lines] == ["==> /var/log/daemon.log <==", "next"] and daemon.lines == ()


def test_it_strips_control_characters_and_caps_long_lines() -> None:
    tail = _tail("bell\x07 esc\x1b[31m tab\there\n" + "A" * 10000 + "\n").file("/var/log/cloud.log")
    assert tail is not None
    assert tail.lines[0].text == "bell esc[31m tab\there" and len(tail.lines[1].text) == 2000


def test_it_reports_a_missing_file_as_missing() -> None:
    text = "".join(
        f"==> {path} <==\n|tail: cannot open '{path}' for reading: No such file or directory\n" for path in logs.FILES
    )
    assert all(f.missing and f.lines == () for f in logs.parse(text).files)


def test_it_does_not_take_charons_plugin_list_for_an_ike_failure() -> None:
    line = "Dec  3 05:31:20 r-12-VM charon: 00[LIB] loaded plugins: charon aes sha1 error-notify counters"
    sections = {path: "" for path in logs.FILES}
    sections["/var/log/daemon.log"] = f"|{line}\n"
    facts = logs.parse("".join(f"==> {path} <==\n{body}" for path, body in sections.items()))
    assert [entry.kind for tail in facts.files for entry in tail.lines] == ["info"]
