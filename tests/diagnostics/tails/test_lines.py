"""Tests of diagnostics.tails.lines: bytes from a router become safe, bounded, classified, timed lines."""

from __future__ import annotations

from datetime import UTC, datetime

from diagnostics.tails import lines
from diagnostics.tails.lines import LineSplitter, SeverityTracker, already_shown, line_time_ms

NOW = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def test_it_joins_a_line_split_across_reads() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"2025-03-06 14:21:10,953 INFO   Exec") == []
    assert splitter.feed(b"uting: ip rule\nnext") == ["2025-03-06 14:21:10,953 INFO   Executing: ip rule"]
    assert splitter.flush() == ["next"]


def test_it_cuts_a_line_that_never_ends_and_drops_the_rest_of_it() -> None:
    splitter = LineSplitter(max_bytes=10)
    assert splitter.feed(b"x" * 25) == ["x" * 10 + lines.CUT_MARK]
    assert splitter.feed(b"y" * 5000) == []
    assert splitter.feed(b"zz\nshort\n") == ["short"]


def test_it_writes_control_characters_and_escapes_as_visible_text() -> None:
    splitter = LineSplitter()
    [line] = splitter.feed(b"<script>alert(1)</script> \x1b[31mred\x1b[0m \x00 bell\x07\r\n")
    assert line == "<script>alert(1)</script> \\x1b[31mred\\x1b[0m \\x00 bell\\x07"


def test_it_replaces_bytes_that_are_not_utf8() -> None:
    assert LineSplitter().feed(b"caf\xe9 \xff\n") == ["caf\ufffd \ufffd"]


def test_it_keeps_tabs() -> None:
    assert LineSplitter().feed(b"a\tb\n") == ["a\tb"]


def test_it_marks_errors_warnings_and_conntrack_table_full_by_severity() -> None:
    tracker = SeverityTracker()
    assert tracker.severity("2025-03-06 14:21:10,971 ERROR    Failed to apply rules") == lines.CRIT
    assert tracker.severity("2025-03-06 14:21:10,971 WARNING  route table missing") == lines.WARN
    assert tracker.severity("Feb 20 10:59:34 r-1-VM kernel: nf_conntrack: table full, dropping packet") == lines.CRIT
    assert tracker.severity("2025-03-06 14:21:10,953 INFO     Executing: ip rule show") == lines.PLAIN


def test_it_dims_the_error_lines_cloudstack_logs_on_healthy_routers() -> None:
    tracker = SeverityTracker()
    benign = [
        "2025-03-06 14:21:10,971 ERROR    Not able to setup source-nat for a regular router yet",
        "2025-03-06 14:21:10,989 ERROR    Command 'nft list tables ip6 | grep ip6_acl' returned non-zero exit status 1",
        "2025-03-06 14:21:10,989 ERROR    Command 'ip link show eth0 | grep 'state DOWN'' returned non-zero exit status 1",
    ]
    assert [tracker.severity(line) for line in benign] == [lines.BENIGN] * 3


def test_it_marks_every_line_of_a_python_traceback_and_stops_after_the_exception() -> None:
    tracker = SeverityTracker()
    stream = [
        "Traceback (most recent call last):",
        '  File "/opt/cloud/bin/cs/CsHelper.py", line 184, in execute',
        "    result = subprocess.check_output(command, shell=True)",
        "subprocess.CalledProcessError: Command 'ip rule' returned non-zero exit status 2.",
        "2025-03-06 14:21:11,000 INFO     Processing JSON file ips.json",
    ]
    assert [tracker.severity(line) for line in stream] == [lines.CRIT] * 4 + [lines.PLAIN]


def test_it_reads_the_time_of_each_vr_log_format() -> None:
    assert line_time_ms("2025-03-06 14:21:10,953 INFO     x", NOW) == ms(2025, 3, 6, 14, 21, 10) + 953
    assert line_time_ms("Tue Mar 18 09:43:11 PM UTC 2025 Starting guest services", NOW) == ms(2025, 3, 18, 21, 43, 11)
    assert line_time_ms("2024-05-01 10:00:00.123+0000: starting up libvirt", NOW) == ms(2024, 5, 1, 10) + 123
    assert line_time_ms("Wed Dec  2 14:11:03 2026: Starting Keepalived v2.2.7", NOW) == ms(2026, 12, 2, 14, 11, 3)


def test_it_gives_a_syslog_line_of_late_december_read_in_january_the_previous_year() -> None:
    assert line_time_ms("Dec 31 23:59:58 r-1-VM dnsmasq[1]: started", NOW) == ms(2025, 12, 31, 23, 59, 58)
    assert line_time_ms("Jan  1 00:00:01 r-1-VM dnsmasq[1]: started", NOW) == ms(2026, 1, 1, 0, 0, 1)


def test_it_has_no_time_for_a_line_without_one_or_with_an_impossible_one() -> None:
    assert line_time_ms('  File "x.py", line 3', NOW) is None
    assert line_time_ms("2024-13-45 10:00:00,000 INFO x", NOW) is None


def test_it_finds_the_lines_a_reconnect_repeats() -> None:
    shown = ["a", "b", "c", "d"]
    assert already_shown(shown, ["b", "c", "d", "e", "f"]) == 3
    assert already_shown(shown, ["a", "b", "c", "d"]) == 4
    assert already_shown(shown, ["x", "b", "c", "d", "e"]) == 4


def test_it_cannot_line_up_what_shares_too_little_with_what_was_shown() -> None:
    assert already_shown(["a", "b", "c", "d"], ["x", "y"]) is None
    assert already_shown(["a", "b", "c", "d"], ["d", "e"]) is None  # one common line could be chance
    assert already_shown([], ["a"]) is None
    assert already_shown(["a"], []) is None


def test_it_lines_up_a_short_history_in_full() -> None:
    assert already_shown(["only"], ["only", "new"]) == 1


def test_it_lines_up_on_the_longest_run_and_the_latest_one_when_runs_tie() -> None:
    # The agent log restarts with many matching lines; the shown ones sit in the middle.
    shown = ["ok", "check r-1", "ok"]
    incoming = ["ok", "check r-1", "ok", "other", "check r-1", "ok", "new"]
    assert already_shown(shown, incoming, minimum=2) == 3
    assert already_shown(["x", "x", "x"], ["x", "x", "x", "new"]) == 3
