"""The shape every probe has: a fixed read-only command and a pure parser of its output.

A probe's command is a constant string chosen by us (never built from router names, log
contents or API data). Host-side probes that need the router's instance name or address
take them only after strict validation (see `validate_instance_name`, `validate_ip`).
Parsers are pure: text in, a dataclass of typed facts out, `ParseError` on garbage.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import json
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal


class ParseError(ValueError):
    """The output is not what the command prints; the message says what was expected."""


@dataclass(frozen=True)
class Probe:
    """One read-only probe.

    name:     short id, also the key of its facts (`conntrack`, `iptables_filter`, ...)
    command:  the exact command line run on the target; a constant for router probes
    parse:    pure parser from the command's stdout to a facts dataclass
    timeout:  seconds before the command is abandoned
    scope:    "router" (run inside the VR) or "host" (run on the KVM host, see `host_command`)
    host_command: for host probes, builds the command from validated router identity
    redact_output: for probes reading files that hold secrets, the raw output as it may be stored
    hypervisors: for host probes, the hypervisors (lower case) whose hosts have what they read;
              empty means every one. Elsewhere the probe does not apply: it is not run, and
              that is neither a failure nor a fact (`not_applicable_on`).
    """

    name: str
    command: str
    parse: Callable[[str], Any]
    timeout: float = 10.0
    scope: Literal["router", "host"] = "router"
    host_command: Callable[[str, str], str] | None = None  # (instance_name, link_local_ip) -> command
    redact_output: Callable[[str], str] | None = None
    hypervisors: frozenset[str] = frozenset()

    def not_applicable_on(self, hypervisor: str) -> str:
        """Why the probe does not apply to a router on this hypervisor, or "" when it does."""
        name = hypervisor.strip()
        if not self.hypervisors or name.lower() in self.hypervisors:
            return ""
        only = ", ".join(sorted(h.upper() if h == "kvm" else h for h in self.hypervisors))
        return f"does not apply on {name or 'an unknown hypervisor'}: only {only} hosts have what it reads"

    def command_line(self, instance_name: str = "", link_local_ip: str = "") -> str:
        """The command to run: the constant for router probes, built from validated identity for host probes."""
        if self.scope == "router":
            return self.command
        if self.host_command is None:
            raise ValueError(f"host probe {self.name} has no host_command")
        return self.host_command(instance_name, link_local_ip)


_INSTANCE_NAME = re.compile(r"^[rsv]-\d{1,10}-[A-Za-z0-9]{1,16}$")


def validate_instance_name(name: str) -> str:
    """A CloudStack instance name such as `r-123-VM`; anything else is refused."""
    if not _INSTANCE_NAME.match(name):
        raise ValueError(f"not a CloudStack instance name: {name!r}")
    return name


def validate_ip(address: str) -> str:
    """An IPv4 or IPv6 address in canonical form; anything else is refused."""
    return str(ipaddress.ip_address(address))


# Shared by the parsers: the output format of multi-file probes, line hygiene, and the
# JSON storage form of facts.

MAX_LINE_CHARS = 2000
"""Longer lines are cut: one hostile or corrupt log line must not bloat the stored facts."""

MAX_JSON_CHARS = 4 * 1024 * 1024
"""`ip -j` prints its whole answer on one line; commands cut it at this size with `head -c`."""

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_SECTION_MARKER = re.compile(r"^==> (?P<name>[^\s<>]{1,200}) <==$")
# Only a tool's own complaint counts: a log line that merely mentions a missing file starts with its timestamp.
_MISSING_FILE = re.compile(r"^(?:cat|head|tail|grep|stat|ls|df|sh|bash|dash): .*No such file or directory\s*$")


def clean_line(line: str, limit: int = MAX_LINE_CHARS) -> str:
    """One line with control characters other than tab removed and its length capped."""
    # Cut before cleaning too, so a multi-megabyte line costs no more than a long one.
    return _CONTROL_CHARS.sub("", line[: limit * 4].rstrip("\r\n"))[:limit]


def clean_lines(text: str, limit: int = MAX_LINE_CHARS) -> list[str]:
    """The text split on newlines, each line cleaned; a trailing empty line is dropped."""
    lines = [clean_line(line, limit) for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines


@dataclass(frozen=True)
class Section:
    """The part of a multi-file probe's output after one `==> name <==` marker."""

    name: str
    lines: tuple[str, ...]

    @property
    def missing(self) -> bool:
        """True when the only output is the shell's or a tool's "no such file" complaint."""
        return len(self.lines) > 0 and len(self.lines) <= 2 and all(_MISSING_FILE.search(x) for x in self.lines)

    @property
    def text(self) -> str:
        """The section's lines joined back with newlines."""
        return "\n".join(self.lines)


def split_sections(
    text: str, expected: tuple[str, ...] | None = None, line_limit: int = MAX_LINE_CHARS
) -> dict[str, Section]:
    """Split output printed as `==> name <==` markers each followed by that part's lines.

    Lines before the first marker are refused, as are duplicate markers; when `expected`
    is given, every one of those names must be present (a missing file still prints its
    marker, so an absent marker means the output was cut or is not ours). JSON sections
    are one long line: callers reading them pass a larger `line_limit`.
    """
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in clean_lines(text, line_limit):
        match = _SECTION_MARKER.match(line)
        if match:
            name = match.group("name")
            if name in sections:
                raise ParseError(f"section marker '==> {name} <==' appears twice")
            current = sections[name] = []
        elif current is None:
            if line.strip():
                raise ParseError(f"expected a '==> name <==' section marker first, got {line[:80]!r}")
        else:
            current.append(line)
    if expected is not None:
        absent = [name for name in expected if name not in sections]
        if absent:
            raise ParseError(f"expected section markers for {', '.join(absent)}")
    return {name: Section(name, tuple(lines)) for name, lines in sections.items()}


_COUNT = re.compile(r"[0-9]{1,20}")


def small_count(value: str) -> int | None:
    """A non-negative integer written in ASCII digits that fits in 64 bits, else None (no exceptions)."""
    return int(value) if _COUNT.fullmatch(value) else None


def parse_int(value: str, what: str, base: int = 10) -> int:
    """An integer field that fits in 64 bits (as every kernel counter does), or ParseError naming the field."""
    digits = value.strip()
    # Longer numbers are corrupt output; refusing them keeps every later float() and sum() finite.
    if len(digits.lstrip("+-")) > (16 if base == 16 else 20):
        raise ParseError(f"expected a 64-bit integer for {what}, got {len(digits)} digits")
    try:
        return int(digits, base)
    except ValueError:
        raise ParseError(f"expected an integer for {what}, got {value[:40]!r}") from None


class Facts:
    """Mixin for facts dataclasses: `to_dict()` is the JSON storage form, `from_dict()` reads it back.

    Tuples are stored as lists and nested dataclasses as dicts; `from_dict` restores them
    from the class's type hints, so `cls.from_dict(facts.to_dict()) == facts`.
    """

    def to_dict(self) -> dict[str, Any]:
        """The facts as JSON-ready plain data."""
        return _to_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Facts rebuilt from their `to_dict()` form."""
        return _from_plain(cls, data)


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _to_plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_to_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _to_plain(item) for key, item in value.items()}
    return value


@functools.cache
def _type_hints(kind: type) -> dict[str, Any]:
    # Resolving string annotations is costly and a dataclass's never change: once per class.
    return typing.get_type_hints(kind)


def _from_plain(kind: Any, value: Any) -> Any:
    origin = typing.get_origin(kind)
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        hints = _type_hints(kind)
        # A field added later with a default is absent from facts stored before it: it takes the default.
        return kind(
            **{
                f.name: _from_plain(hints[f.name], value[f.name])
                for f in dataclasses.fields(kind)
                if f.init
                and (f.name in value or (f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING))
            }
        )
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        options = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        return _from_plain(options[0], value)
    if origin is tuple:
        args = typing.get_args(kind)
        item_kind = args[0] if args else Any
        return tuple(_from_plain(item_kind, item) for item in value)
    if origin is dict:
        _, item_kind = typing.get_args(kind)
        return {key: _from_plain(item_kind, item) for key, item in value.items()}
    return value


def parse_json_objects(text: str, what: str) -> list[dict[str, Any]]:
    """The JSON array of objects that `ip -j` and `bridge -j` print; empty output is an empty list."""
    if not text.strip():
        return []
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        # RecursionError: hostile or corrupt input nested deeper than the decoder's stack.
        raise ParseError(f"expected a JSON array from {what}") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ParseError(f"expected a JSON array of objects from {what}")
    return data


def text_field(data: dict[str, Any], key: str, default: str = "") -> str:
    """A string member of untrusted JSON, cleaned; anything not a string gives the default."""
    value = data.get(key, default)
    return clean_line(value, 400) if isinstance(value, str) else default


def int_field(data: dict[str, Any], key: str, default: int = 0) -> int:
    """An integer member of untrusted JSON; anything not an integer gives the default."""
    value = data.get(key, default)
    return value if isinstance(value, int) and not isinstance(value, bool) else default
