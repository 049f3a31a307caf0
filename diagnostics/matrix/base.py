"""The shape of the troubleshooting matrix: rules, the context they read, the verdicts they give.

A rule is a small pure unit: it reads a `RouterContext` (what CloudStack says, what the last
collection found, the redundant peers, the previous collection, settings thresholds) and
returns zero or more `Verdict`s — each with the exact evidence it is based on and the
remediation. Rules import nothing from Django models or paramiko, so they are tested on
plain data; `diagnostics.evaluate` builds the context from the database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

# The fixed vocabulary of categories (issue 4; password and userdata since issue 13).
CATEGORIES = (
    "access",
    "api-state",
    "config-apply",
    "conntrack",
    "cpu",
    "dhcp",
    "disk",
    "dns",
    "firewall",
    "haproxy",
    "interfaces",
    "logs",
    "memory",
    "mtu",
    "nat",
    "password",
    "softirq",
    "template",
    "userdata",
    "vpn",
    "vrrp",
)

Severity = Literal["critical", "warning", "info"]


def categories_of(primary: str, also: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The primary category first, then each further one once (a fault that takes DHCP and DNS down: dhcp, dns)."""
    return tuple(dict.fromkeys([primary, *also]))


SEVERITIES: tuple[Severity, ...] = ("critical", "warning", "info")
SEVERITY_RANK = {"critical": 3, "warning": 2, "info": 1}


@dataclass(frozen=True)
class NicView:
    """One NIC as CloudStack lists it."""

    position: int
    traffic_type: str  # Guest, Control, Public
    ip_address: str | None
    netmask: str
    gateway: str
    mac_address: str
    mtu: int | None
    network_uuid: str
    is_default: bool
    broadcast_uri: str = ""  # vlan://100, vxlan://5001, ... (admin only; "" when unknown)


@dataclass(frozen=True)
class RouterView:
    """What CloudStack says about the router (the inventory row, flattened)."""

    id: int
    uuid: str
    name: str
    state: str
    state_since: datetime | None
    router_type: str  # isolated, vpc, shared
    hypervisor: str
    is_redundant: bool
    redundant_state: str  # PRIMARY, BACKUP, FAULT, UNKNOWN or ""
    template_version: str
    scripts_version: str
    software_version: str
    requires_upgrade: bool
    link_local_ip: str | None
    guest_ip: str | None
    public_ip: str | None
    health_checks: tuple[Mapping[str, Any], ...]  # {checkname, checktype, success, lastupdated, details}
    nics: tuple[NicView, ...]
    zone_name: str = ""
    host_name: str = ""
    host_ip: str | None = None
    host_state: str = ""
    network_name: str = ""
    egress_default_allow: bool | None = None
    network_services: tuple[str, ...] = ()
    # System VM template of the router's zone: True ready, False not ready, None unknown.
    zone_system_template_ready: bool | None = None
    zone_system_template_name: str = ""
    # The network or VPC the router serves: its state as CloudStack lists it ("" when unknown).
    network_state: str = ""


@dataclass(frozen=True)
class CollectionView:
    """The last collection of the router: its outcome and the parsed facts by probe name."""

    id: int | None
    status: str  # pending, running, succeeded, failed, errored (or "none": never collected)
    reason: str  # CollectionReason value when failed (host_unreachable, auth_refused, ...)
    error: str
    finished: datetime | None
    access_path: str  # "host" (KVM hop) or "direct"
    facts: Mapping[str, Any]  # probe name -> facts dataclass (diagnostics.probes.*)
    probe_errors: Mapping[str, str] = field(default_factory=dict)  # probe name -> error text

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    def fact(self, probe: str) -> Any | None:
        """The facts of one probe, or None when the probe failed or did not run."""
        return self.facts.get(probe)


@dataclass(frozen=True)
class PeerView:
    """A redundant peer of the router: its inventory and its last collection."""

    router: RouterView
    collection: CollectionView | None


@dataclass(frozen=True)
class FailureView:
    """What CloudStack recorded about the router's current failure (diagnostics.failure_evidence).

    events: {level, type, state, description, username, created}, ERROR and WARN first;
    jobs: failed and pending async jobs {jobid, command, status, errortext, errorcode,
    instance_type, instance_id, created, completed}; host/template/network: the summaries;
    log_entries: management-server log entries naming the router; unknown: part -> why it
    could not be read (never to be read as "nothing happened").
    """

    gathered_at: datetime
    events: tuple[Mapping[str, Any], ...] = ()
    jobs: tuple[Mapping[str, Any], ...] = ()
    host: Mapping[str, Any] = field(default_factory=dict)
    template: Mapping[str, Any] = field(default_factory=dict)
    network: Mapping[str, Any] = field(default_factory=dict)
    log_entries: tuple[Mapping[str, Any], ...] = ()
    log_configured: bool = False
    unknown: Mapping[str, str] = field(default_factory=dict)
    failure_time: datetime | None = None

    def failed_jobs(self, instance_id: str | None = None) -> list[Mapping[str, Any]]:
        """Failed jobs, newest first; only those on one resource when `instance_id` is given."""
        return [
            job
            for job in self.jobs
            if job.get("status") == "failed" and (instance_id is None or job.get("instance_id") == instance_id)
        ]

    def pending_jobs(self) -> list[Mapping[str, Any]]:
        return [job for job in self.jobs if job.get("status") == "pending"]

    def error_events(self) -> list[Mapping[str, Any]]:
        return [event for event in self.events if event.get("level") in ("ERROR", "WARN", "WARNING")]


@dataclass(frozen=True)
class RouterContext:
    """Everything a rule may read."""

    router: RouterView
    collection: CollectionView | None  # None: never collected
    previous: CollectionView | None  # the collection before, for counters that rise
    peers: tuple[PeerView, ...]
    thresholds: Mapping[str, float]  # rule thresholds by name (settings.MATRIX_THRESHOLDS merged on defaults)
    now: datetime
    # What CloudStack recorded about the router's current failure; None when not gathered.
    failure: FailureView | None = None

    def threshold(self, name: str) -> float:
        return float(self.thresholds[name])


@dataclass(frozen=True)
class Verdict:
    """One finding about one router, as a senior engineer would write it in a ticket."""

    rule: str
    category: str
    severity: Severity
    title: str
    evidence: tuple[str, ...]  # exact values and log lines, not a paraphrase
    remediation: str  # the steps, and the CloudStack action where one applies
    # The console action that carries the remedy out (diagnostics.actions key), "" when none fits.
    action: str = ""
    # Further categories the fault takes down for the tenant, beside the primary `category`.
    also: tuple[str, ...] = ()

    @property
    def categories(self) -> tuple[str, ...]:
        """Every category the fault takes down, the primary first."""
        return categories_of(self.category, self.also)

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "category": self.category,
            "categories": list(self.categories),
            "severity": self.severity,
            "title": self.title,
            "evidence": list(self.evidence),
            "remediation": self.remediation,
            "action": self.action,
        }


@dataclass(frozen=True)
class Rule:
    """A registered rule: its id reads as a finding (`dnsmasq-not-running`)."""

    id: str
    category: str
    severity: Severity  # the worst severity it can give
    summary: str  # what it checks, one sentence, for the /matrix/ page
    remedy: str  # the remediation, for the /matrix/ page
    reads: tuple[str, ...]  # what it reads: "api", "facts:<probe>", "peer", "history"
    thresholds: tuple[str, ...]  # names of the thresholds it uses
    check: Callable[[RouterContext], list[Verdict]]
    # Further categories its fault takes down for the tenant (dnsmasq down: DHCP and DNS), beside
    # the primary `category` that files the rule on the /matrix/ page.
    also: tuple[str, ...] = ()

    @property
    def categories(self) -> tuple[str, ...]:
        """Every category the rule's fault takes down, the primary first."""
        return categories_of(self.category, self.also)
