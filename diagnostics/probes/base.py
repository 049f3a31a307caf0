"""The shape every probe has: a fixed read-only command and a pure parser of its output.

A probe's command is a constant string chosen by us (never built from router names, log
contents or API data). Host-side probes that need the router's instance name or address
take them only after strict validation (see `validate_instance_name`, `validate_ip`).
Parsers are pure: text in, a dataclass of typed facts out, `ParseError` on garbage.
"""

from __future__ import annotations

import ipaddress
import re
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
    """

    name: str
    command: str
    parse: Callable[[str], Any]
    timeout: float = 10.0
    scope: Literal["router", "host"] = "router"
    host_command: Callable[[str, str], str] | None = None  # (instance_name, link_local_ip) -> command


_INSTANCE_NAME = re.compile(r"^[rsv]-\d{1,10}-[A-Za-z0-9]{1,16}$")


def validate_instance_name(name: str) -> str:
    """A CloudStack instance name such as `r-123-VM`; anything else is refused."""
    if not _INSTANCE_NAME.match(name):
        raise ValueError(f"not a CloudStack instance name: {name!r}")
    return name


def validate_ip(address: str) -> str:
    """An IPv4 or IPv6 address in canonical form; anything else is refused."""
    return str(ipaddress.ip_address(address))
