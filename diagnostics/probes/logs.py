"""Bounded tails of the VR's own logs, every line classified.

cloud.log mixes three timestamp styles (Python logging, bash `date` from `log_it`, and
`<date> : VR config: ...` from vr_cfg.sh; CLOUDSTACK.md §0.8); dnsmasq.log, daemon.log,
kern.log and messages are syslog lines. The template's rsyslog.conf sends `kern.*` to
kern.log and every facility's info/notice/warn (but daemon, cron, auth, mail, local0) to
messages, so kernel messages (conntrack table full, OOM kills, NIC link changes, martian
sources) are in those two and never in daemon.log, and the password server, which logs
through syslog as user.info, is in messages. Each line gets its timestamp, level, program, a `kind` naming what it
is evidence of (config apply failure, traceback, deleted rule, DHCP exhaustion, stale
lease, pool exhausted, DHCP request ignored, conntrack table full, OOM kill, link down,
martian source, password-server failure, VRRP transition, IKE error, service alert) and whether it is
an error, and if so whether it is one of the ERROR lines CloudStack logs on every healthy
router (§5.23). Python tracebacks are grouped so one failure counts once.

Every log line is printed with a `|` in front so that no line of a log can pass for a
section marker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from diagnostics.probes.base import MAX_LINE_CHARS, Facts, ParseError, Section, split_sections

CLOUD_LOG = "/var/log/cloud.log"
DNSMASQ_LOG = "/var/log/dnsmasq.log"
KERN_LOG = "/var/log/kern.log"
MESSAGES = "/var/log/messages"
FILES = (
    CLOUD_LOG,
    DNSMASQ_LOG,
    "/var/log/routerServiceMonitor.log",
    "/var/log/daemon.log",
    KERN_LOG,
    MESSAGES,
)
TAIL_LINES = 500
MAX_BYTES_PER_FILE = 256 * 1024
COMMAND = (
    f'for f in {" ".join(FILES)}; do echo "==> $f <=="; '
    f"tail -n {TAIL_LINES} \"$f\" 2>&1 | head -c {MAX_BYTES_PER_FILE} | sed 's/^/|/'; done"
)

# Kinds a line can be evidence of; "info" is everything else.
CONFIG_APPLY_FAILED = "config-apply-failed"
TRACEBACK = "traceback"
DELETE_RULE = "delete-rule"
DHCP_NO_ADDRESS = "dhcp-no-address"
DHCP_ADDRESS_LEASED = "dhcp-address-leased"
DHCP_IGNORED = "dhcp-ignored"
CONNTRACK_TABLE_FULL = "conntrack-table-full"
OOM_KILL = "oom-kill"
LINK_DOWN = "link-down"
MARTIAN_SOURCE = "martian-source"
PASSWORD_SERVER_FAILED = "password-server-failed"
VRRP_TRANSITION = "vrrp-transition"
VRRP_MISMATCH = "vrrp-mismatch"
IKE_ERROR = "ike-error"
SERVICE_ALERT = "service-alert"
BENIGN_ERROR = "benign-error"
ERROR = "error"
INFO = "info"
_PROBLEM_KINDS = {
    CONFIG_APPLY_FAILED,
    TRACEBACK,
    DHCP_NO_ADDRESS,
    DHCP_ADDRESS_LEASED,
    CONNTRACK_TABLE_FULL,
    IKE_ERROR,
    VRRP_MISMATCH,
    OOM_KILL,
    PASSWORD_SERVER_FAILED,
}

_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), start=1)}
_LEVELS = "DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL"
_PYTHON = re.compile(
    rf"^(?P<date>\d{{4}}-\d{{2}}-\d{{2}}) (?P<time>\d{{2}}:\d{{2}}:\d{{2}}),(?P<ms>\d{{3}})"
    rf"(?: (?P<level>{_LEVELS})(?= |$))?\s*(?P<rest>.*)$"
)
_DATE_CMD = re.compile(
    r"^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?P<month>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) "
    r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})(?: (?P<ampm>AM|PM))? "
    r"(?:(?P<zone>[A-Z]{2,5}|[+-]\d{2,4}) )?(?P<year>\d{4})(?: (?P<rest>.*))?$"
)
_SYSLOG = re.compile(r"^(?P<month>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<time>\d{2}:\d{2}:\d{2}) (?P<rest>.*)$")
_RFC3339 = re.compile(r"^(?P<stamp>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?)(?:Z|[+-]\d{2}:?\d{2})? (?P<rest>.*)$")
_SYSLOG_TAG = re.compile(r"^(?:(?P<host>[^\s\[\]:]+) )?(?P<program>[^\s\[\]:]+)(?:\[\d+\])?: (?P<message>.*)$")

_BENIGN = (
    re.compile(r"Command 'ip link show eth0 \| grep 'state DOWN'' returned non-zero exit status 1"),
    re.compile(r"Command 'nft list tables ip6 \| grep ip6_\w+' returned non-zero exit status 1"),
    re.compile(r"Not able to setup source-nat for a regular router yet"),
)
_KINDS = (
    (CONFIG_APPLY_FAILED, re.compile(r"VR config: execut(?:ing|ion) failed")),
    (DELETE_RULE, re.compile(r"Delete rule .* from table")),
    # Both wordings of an exhausted pool: "no address available" (a static range whose hosts are
    # all taken) and "no address range available for DHCP request via ethX" (no range serves it).
    (DHCP_NO_ADDRESS, re.compile(r"no address (?:range )?available")),
    # A request dnsmasq drops on purpose (`dhcp-ignore=tag:!known`: the MAC is not in dhcphosts.txt).
    (DHCP_IGNORED, re.compile(r"^DHCP[A-Z]+\(\S+\) (?:\S+ ){1,2}ignored$")),
    (DHCP_ADDRESS_LEASED, re.compile(r"not using configured address \S+ because it is leased to \S+")),
    (CONNTRACK_TABLE_FULL, re.compile(r"nf_conntrack: table full")),
    (OOM_KILL, re.compile(r"Out of memory: Kill(?:ed)? process|invoked oom-killer|oom-kill:")),
    # A NIC losing carrier: virtio and veth say "Link is Down", e1000-style drivers "NIC Link is Down".
    (LINK_DOWN, re.compile(r"\b(?:NIC )?Link is Down\b")),
    (MARTIAN_SOURCE, re.compile(r"martian source")),
    # passwd_server_ip.py's own syslog words when it dies or cannot keep a password.
    (PASSWORD_SERVER_FAILED, re.compile(r"serve_password(?: hit exception|: Unable to save)")),
    (
        VRRP_TRANSITION,
        re.compile(
            r"Entering (?:MASTER|BACKUP|FAULT) STATE|Transition to MASTER STATE"
            r"|Router switched to (?:master|primary|backup|fault) mode|Status: FAULT",
            re.IGNORECASE,
        ),
    ),
    # Adverts rejected because the pair's VIP lists differ (CLOUDSTACK.md §5.15, §5.17).
    (VRRP_MISMATCH, re.compile(r"received an unexpected ip number count")),
    (SERVICE_ALERT, re.compile(r"^\[ALERT\]")),
)
_IKE_PROGRAM = re.compile(r"^(?:charon|charon-systemd|ipsec|pluto|strongswan)$")
_IKE_FAILURE = re.compile(
    r"fail|error|NO_PROPOSAL_CHOSEN|AUTHENTICATION_FAILED|INVALID_|giving up|no proposal|retransmit", re.IGNORECASE
)
# charon's start-up inventory names plugins such as `error-notify`: a list of names, not a failure.
_IKE_PLUGIN_LIST = re.compile(r"\[LIB\] loaded plugins:")
_ERROR_WORDS = re.compile(r"\b(?:error|failed|failure|fatal|exception)\b", re.IGNORECASE)
TRACEBACK_START = "Traceback (most recent call last):"
TRACEBACK_CHAIN = ("During handling of the above exception", "The above exception was the direct cause")


@dataclass(frozen=True)
class LogLine(Facts):
    """One classified line.

    timestamp: ISO 8601 local time as written; syslog lines carry no year and are written
               `--MM-DDTHH:MM:SS` (the ISO 8601 form for a date without year); None if absent
    level:     the Python logging level when the line has one
    program:   the syslog tag (`dnsmasq-dhcp`, `Keepalived_vrrp`, `charon`) or "vr_cfg"
    error:     the line reports a failure; benign: it is one CloudStack logs on healthy routers
    error_count of a LogTail counts each traceback once and leaves benign lines out
    """

    number: int
    text: str
    timestamp: str | None
    level: str
    program: str
    kind: str
    error: bool
    benign: bool


@dataclass(frozen=True)
class LogTraceback(Facts):
    """A Python traceback: its line numbers (inclusive) and the final exception line."""

    first_line: int
    last_line: int
    exception: str


@dataclass(frozen=True)
class LogTail(Facts):
    """The tail of one log file."""

    path: str
    missing: bool
    lines: tuple[LogLine, ...]
    tracebacks: tuple[LogTraceback, ...]
    error_count: int
    benign_error_count: int
    first_timestamp: str | None
    last_timestamp: str | None

    def of_kind(self, kind: str) -> tuple[LogLine, ...]:
        """The lines classified as `kind`."""
        return tuple(line for line in self.lines if line.kind == kind)


@dataclass(frozen=True)
class LogsFacts(Facts):
    """One tail per file in FILES."""

    files: tuple[LogTail, ...]

    def file(self, path: str) -> LogTail | None:
        """The tail of one of FILES."""
        return next((f for f in self.files if f.path == path), None)


@dataclass(frozen=True)
class _Stamp:
    timestamp: str | None
    level: str
    program: str
    message: str


def _syslog_rest(rest: str, timestamp: str) -> _Stamp:
    tag = _SYSLOG_TAG.match(rest)
    if tag:
        return _Stamp(timestamp, "", tag["program"], tag["message"])
    return _Stamp(timestamp, "", "", rest)


def read_timestamp(text: str) -> _Stamp:
    """Split a line into timestamp, level, program and message, trying each known format."""
    if match := _PYTHON.match(text):
        stamp = f"{match['date']}T{match['time']}.{match['ms']}"
        return _Stamp(stamp, match["level"] or "", "", match["rest"])
    if (match := _DATE_CMD.match(text)) and match["month"] in _MONTHS:
        hour = int(match["hour"])
        if match["ampm"]:
            hour = hour % 12 + (12 if match["ampm"] == "PM" else 0)
        stamp = (
            f"{match['year']}-{_MONTHS[match['month']]:02d}-{int(match['day']):02d}"
            f"T{hour:02d}:{match['minute']}:{match['second']}"
        )
        rest = match["rest"] or ""
        if rest.startswith(": "):
            return _Stamp(stamp, "", "vr_cfg", rest[2:])
        return _Stamp(stamp, "", "", rest)
    if match := _RFC3339.match(text):
        return _syslog_rest(match["rest"], match["stamp"])
    if (match := _SYSLOG.match(text)) and match["month"] in _MONTHS:
        stamp = f"--{_MONTHS[match['month']]:02d}-{int(match['day']):02d}T{match['time']}"
        return _syslog_rest(match["rest"], stamp)
    return _Stamp(None, "", "", text)


def is_benign(message: str) -> bool:
    """One of the ERROR lines CloudStack logs on healthy routers (CLOUDSTACK.md §5.23)."""
    return any(pattern.search(message) for pattern in _BENIGN)


def classify(number: int, text: str) -> LogLine:
    """One line's timestamp, level, kind and error flags (tracebacks are found by `group_tracebacks`)."""
    stamp = read_timestamp(text)
    message = stamp.message
    kind = INFO
    for name, pattern in _KINDS:
        if pattern.search(message):
            kind = name
            break
    plugin_list = bool(_IKE_PROGRAM.match(stamp.program) and _IKE_PLUGIN_LIST.search(message))
    if kind == INFO and _IKE_PROGRAM.match(stamp.program) and _IKE_FAILURE.search(message) and not plugin_list:
        kind = IKE_ERROR
    benign = is_benign(message)
    error = not plugin_list and (
        stamp.level in ("ERROR", "CRITICAL")
        or kind in _PROBLEM_KINDS
        or (kind == VRRP_TRANSITION and "FAULT" in message.upper())
        or (not stamp.level and bool(_ERROR_WORDS.search(message)))
    )
    if benign:
        kind = BENIGN_ERROR
    elif kind == INFO and error:
        kind = ERROR
    return LogLine(number, text, stamp.timestamp, stamp.level, stamp.program, kind, error, benign)


def group_tracebacks(lines: list[LogLine]) -> tuple[list[LogLine], list[LogTraceback]]:
    """Mark traceback lines (start, indented frames, chained-exception notes, the exception line) and group them."""
    result = list(lines)
    groups: list[LogTraceback] = []
    index = 0
    while index < len(result):
        if TRACEBACK_START not in result[index].text:
            index += 1
            continue
        first = index
        exception = ""
        index += 1
        while index < len(result):
            text = result[index].text
            if not text.strip() or text[0] in " \t" or text.startswith(TRACEBACK_CHAIN) or TRACEBACK_START in text:
                index += 1
                continue
            exception = text
            index += 1
            break
        for position in range(first, index):
            line = result[position]
            result[position] = LogLine(
                line.number, line.text, line.timestamp, line.level, line.program, TRACEBACK, True, False
            )
        groups.append(LogTraceback(result[first].number, result[index - 1].number, exception))
    return result, groups


def _tail(section: Section) -> LogTail:
    texts = []
    for line in section.lines:
        if not line.startswith("|"):
            raise ParseError(f"expected every log line of {section.name} to start with '|'")
        texts.append(line[1:])
    missing = Section(section.name, tuple(texts)).missing
    if missing:
        texts = []
    classified, tracebacks = group_tracebacks([classify(n, text) for n, text in enumerate(texts, start=1)])
    stamps = [line.timestamp for line in classified if line.timestamp]
    return LogTail(
        path=section.name,
        missing=missing,
        lines=tuple(classified),
        tracebacks=tuple(tracebacks),
        # A traceback is one failure however many lines it spans.
        error_count=sum(1 for line in classified if line.error and not line.benign and line.kind != TRACEBACK)
        + len(tracebacks),
        benign_error_count=sum(1 for line in classified if line.benign),
        first_timestamp=stamps[0] if stamps else None,
        last_timestamp=stamps[-1] if stamps else None,
    )


def parse(text: str) -> LogsFacts:
    """One section per file of FILES, each line prefixed with `|`."""
    # The `|` prefix is not part of the line, so the cap leaves room for it.
    sections = split_sections(text, expected=FILES, line_limit=MAX_LINE_CHARS + 1)
    return LogsFacts(files=tuple(_tail(sections[path]) for path in FILES))
