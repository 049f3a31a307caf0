"""Routing of the router: every table (`ip -j route show table all`) and the policy rules (`ip -j rule`).

CloudStack keeps a `Table_ethN` per public device and fwmark rules to pick it; VPC routers
add `static_route` and `static_route_back`. A table without a default route is how the
"Nexthop has invalid gateway" failure of a down eth1 shows up.
"""

from __future__ import annotations

from dataclasses import dataclass

from diagnostics.probes.base import (
    MAX_JSON_CHARS,
    Facts,
    ParseError,
    int_field,
    parse_json_objects,
    split_sections,
    text_field,
)

COMMAND = (
    "echo '==> routes <=='; ip -j route show table all | head -c 4194304; echo; "
    "echo '==> rules <=='; ip -j rule show | head -c 4194304; echo"
)


@dataclass(frozen=True)
class Route(Facts):
    """One route; `table` is `main` when ip omits it."""

    destination: str
    gateway: str
    device: str
    table: str
    protocol: str
    scope: str
    type: str
    source: str


@dataclass(frozen=True)
class Rule(Facts):
    """One policy-routing rule."""

    priority: int
    source: str
    destination: str
    fwmark: str
    iif: str
    table: str


@dataclass(frozen=True)
class RoutesFacts(Facts):
    """All routes and rules."""

    routes: tuple[Route, ...]
    rules: tuple[Rule, ...]


def parse(text: str) -> RoutesFacts:
    """Routes and rules from the two JSON sections."""
    sections = split_sections(text, expected=("routes", "rules"), line_limit=MAX_JSON_CHARS)
    routes = tuple(
        Route(
            destination=text_field(entry, "dst"),
            gateway=text_field(entry, "gateway"),
            device=text_field(entry, "dev"),
            table=text_field(entry, "table", "main"),
            protocol=text_field(entry, "protocol"),
            scope=text_field(entry, "scope"),
            type=text_field(entry, "type", "unicast"),
            source=text_field(entry, "prefsrc"),
        )
        for entry in parse_json_objects(sections["routes"].text, "ip -j route show table all")
    )
    rules = []
    for entry in parse_json_objects(sections["rules"].text, "ip -j rule show"):
        if "priority" not in entry:
            raise ParseError("expected every ip -j rule entry to have a priority")
        source = text_field(entry, "src", "all")
        if source != "all" and "srclen" in entry:
            source = f"{source}/{int_field(entry, 'srclen')}"
        destination = text_field(entry, "dst", "all")
        if destination != "all" and "dstlen" in entry:
            destination = f"{destination}/{int_field(entry, 'dstlen')}"
        rules.append(
            Rule(
                priority=int_field(entry, "priority"),
                source=source,
                destination=destination,
                fwmark=text_field(entry, "fwmark"),
                iif=text_field(entry, "iif"),
                table=text_field(entry, "table"),
            )
        )
    return RoutesFacts(routes=routes, rules=tuple(rules))
