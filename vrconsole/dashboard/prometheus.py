"""The console's view of the fleet in the Prometheus text format, for the Grafana operators already run.

Per present router: its status (one series per status, 1 for the current one), whether it is
Running, its open findings per severity, and the latest numbers of a fresh sample (conntrack
fill, softirq and CPU busy share, memory and disk use, the sample's time); fleet-wide: routers
per state and per status, open findings per category and severity, each region's last
successful sync. Built with prometheus_client, so names, labels and escaping follow the
format. A fixed handful of queries whatever the fleet size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime

from django.db.models import Count
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from diagnostics.matrix.base import CATEGORIES
from diagnostics.models import Finding, RouterHealth, RouterStatus, Severity
from vrconsole.dashboard.trends import latest_samples
from vrconsole.models import Region, Router

ROUTER_LABELS = ["router", "uuid", "zone", "region"]
SAMPLE_GAUGES = (
    (
        "conntrack_percent",
        "vrconsole_router_conntrack_fill_percent",
        "conntrack entries as a share of nf_conntrack_max",
    ),
    ("softirq_percent", "vrconsole_router_softirq_percent", "softirq share of all CPU time"),
    ("cpu_percent", "vrconsole_router_cpu_busy_percent", "CPU busy (100 - idle)"),
    ("memory_percent", "vrconsole_router_memory_used_percent", "memory used (MemTotal - MemAvailable)"),
)
DISKS = (("disk_root_percent", "/"), ("disk_log_percent", "/var/log"))


class FleetCollector(Collector):
    """Reads the database at scrape time and yields the gauges."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or timezone.now()

    def collect(self) -> Iterator[Metric]:
        routers = list(
            Router.objects.filter(removed_at__isnull=True)
            .select_related("zone", "region")
            .only("pk", "name", "uuid", "state", "zone__name", "region__name")
        )
        labels = {r.pk: [r.name or r.uuid, r.uuid, r.zone.name if r.zone else "", r.region.name] for r in routers}
        statuses = dict(RouterHealth.objects.filter(router_id__any=list(labels)).values_list("router_id", "status"))

        status = GaugeMetricFamily(
            "vrconsole_router_status",
            "1 for the router's current status (worst open finding)",
            labels=[*ROUTER_LABELS, "status"],
        )
        running = GaugeMetricFamily("vrconsole_router_running", "1 when CloudStack says Running", labels=ROUTER_LABELS)
        for router in routers:
            current = statuses.get(router.pk, RouterStatus.UNKNOWN)
            for name in RouterStatus.values:
                status.add_metric([*labels[router.pk], name], 1.0 if name == current else 0.0)
            running.add_metric(labels[router.pk], 1.0 if router.state == "Running" else 0.0)
        yield status
        yield running

        findings = GaugeMetricFamily(
            "vrconsole_router_open_findings", "open findings per severity", labels=[*ROUTER_LABELS, "severity"]
        )
        per_router: dict[int, dict[str, int]] = defaultdict(dict)
        for router_id, severity, count in (
            Finding.objects.open()
            .of_present_routers()
            .values_list("router_id", "severity")
            .annotate(n=Count("id"))
            .values_list("router_id", "severity", "n")
        ):
            per_router[router_id][severity] = count
        for router_id in labels:
            for severity in Severity.values:
                findings.add_metric([*labels[router_id], severity], float(per_router[router_id].get(severity, 0)))
        yield findings

        yield from self._sample_gauges(labels)
        yield from self._fleet_gauges(routers, statuses)

    def _sample_gauges(self, labels: dict[int, list[str]]) -> Iterator[Metric]:
        gauges = {field: GaugeMetricFamily(name, text, labels=ROUTER_LABELS) for field, name, text in SAMPLE_GAUGES}
        disk = GaugeMetricFamily(
            "vrconsole_router_disk_used_percent", "filesystem space used", labels=[*ROUTER_LABELS, "mount"]
        )
        taken = GaugeMetricFamily(
            "vrconsole_router_sample_timestamp_seconds", "when the latest sample was taken", labels=ROUTER_LABELS
        )
        fields = [field for field, _, _ in SAMPLE_GAUGES] + [field for field, _ in DISKS]
        for sample in latest_samples(self.now).values("router_id", "at", *fields):
            router_labels = labels.get(sample["router_id"])
            if router_labels is None:
                continue
            for field, gauge in gauges.items():
                if sample[field] is not None:
                    gauge.add_metric(router_labels, float(sample[field]))
            for field, mount in DISKS:
                if sample[field] is not None:
                    disk.add_metric([*router_labels, mount], float(sample[field]))
            taken.add_metric(router_labels, sample["at"].timestamp())
        yield from gauges.values()
        yield disk
        yield taken

    def _fleet_gauges(self, routers: list[Router], statuses: dict[int, str]) -> Iterator[Metric]:
        by_state = GaugeMetricFamily("vrconsole_routers", "present routers per CloudStack state", labels=["state"])
        counts: dict[str, int] = defaultdict(int)
        for router in routers:
            counts[router.state or "Unknown"] += 1
        for state, count in sorted(counts.items()):
            by_state.add_metric([state], float(count))
        yield by_state
        by_status = GaugeMetricFamily("vrconsole_routers_by_status", "present routers per status", labels=["status"])
        status_counts: dict[str, int] = defaultdict(int)
        for router in routers:
            status_counts[statuses.get(router.pk, RouterStatus.UNKNOWN)] += 1
        for name in RouterStatus.values:
            by_status.add_metric([name], float(status_counts.get(name, 0)))
        yield by_status
        open_findings = Finding.objects.open().of_present_routers()
        # A finding counts under every category its fault takes down (dnsmasq down: dhcp and dns).
        categories = GaugeMetricFamily("vrconsole_open_findings", "open findings per category", labels=["category"])
        for category, count in open_findings.count_by_category(CATEGORIES).items():
            if count:
                categories.add_metric([category], float(count))
        yield categories
        severities = GaugeMetricFamily(
            "vrconsole_open_findings_by_severity", "open findings per severity", labels=["severity"]
        )
        found = dict(open_findings.values_list("severity").annotate(n=Count("id")).values_list("severity", "n"))
        for severity in Severity.values:
            severities.add_metric([severity], float(found.get(severity, 0)))
        yield severities
        synced = GaugeMetricFamily(
            "vrconsole_region_last_sync_success_timestamp_seconds", "last successful inventory sync", labels=["region"]
        )
        for name, last in Region.objects.values_list("name", "last_success"):
            if last is not None:
                synced.add_metric([name], last.timestamp())
        yield synced


def render_metrics(now: datetime | None = None) -> bytes:
    """The whole exposition, text format 0.0.4."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(now))
    return generate_latest(registry)
