"""Diagnostics models: collections, facts, health samples, config snapshots, verdicts, evidence and actions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import models
from django.db.models import Count, Q
from django.utils import timezone

from diagnostics.series import METRICS, ROLLUP_STATS
from diagnostics.ssh import AccessReason
from vrconsole.models import AuditEntry, Router, Zone


class CollectionTrigger(models.TextChoices):
    SCHEDULE = "schedule", "schedule"
    OPERATOR = "operator", "operator"
    COMMAND = "command", "command"
    TRIAGE = "triage", "triage"
    # Evidence taken before an operator action, or the re-collection after it.
    ACTION = "action", "action"


class CollectionStatus(models.TextChoices):
    PENDING = "pending", "pending"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    # An expected failure (unreachable, refused, timed out): `reason` says which.
    FAILED = "failed", "failed"
    # A bug: `traceback` keeps the evidence.
    ERRORED = "errored", "errored"


class CollectionReason(models.TextChoices):
    """Why a collection failed: the SSH access reasons plus the ones only a job can see."""

    HOST_UNREACHABLE = AccessReason.HOST_UNREACHABLE.value, AccessReason.HOST_UNREACHABLE.label
    HOST_AUTH_REFUSED = AccessReason.HOST_AUTH_REFUSED.value, AccessReason.HOST_AUTH_REFUSED.label
    HOST_KEY_CHANGED = AccessReason.HOST_KEY_CHANGED.value, AccessReason.HOST_KEY_CHANGED.label
    ROUTER_UNREACHABLE = AccessReason.ROUTER_UNREACHABLE.value, AccessReason.ROUTER_UNREACHABLE.label
    AUTH_REFUSED = AccessReason.AUTH_REFUSED.value, AccessReason.AUTH_REFUSED.label
    TIMEOUT = AccessReason.TIMEOUT.value, AccessReason.TIMEOUT.label
    PROTOCOL_ERROR = AccessReason.PROTOCOL_ERROR.value, AccessReason.PROTOCOL_ERROR.label
    NO_ADDRESS = AccessReason.NO_ADDRESS.value, AccessReason.NO_ADDRESS.label
    KEY_MISSING = AccessReason.KEY_MISSING.value, AccessReason.KEY_MISSING.label
    NOT_ALLOWED = AccessReason.NOT_ALLOWED.value, AccessReason.NOT_ALLOWED.label
    JOB_LOST = "job_lost", "the job was lost (worker killed or Redis restarted)"
    # The batch job ran out of its RQ job timeout before reaching this router.
    BATCH_TIMEOUT = "batch_timeout", "the batch ran out of time before this router"


class CollectionQuerySet(models.QuerySet["Collection"]):
    def in_flight(self) -> CollectionQuerySet:
        return self.filter(status__in=[CollectionStatus.PENDING, CollectionStatus.RUNNING])


class SweepQuerySet(models.QuerySet["Sweep"]):
    def in_flight(self) -> SweepQuerySet:
        return self.filter(finished__isnull=True)


class Sweep(models.Model):
    """One scheduled pass over the fleet: what it queued, when it ended, and whether it overran.

    Progress (done, failed) is counted from its collections, so a killed worker can never leave
    a stale counter behind. At most one sweep is in flight: the next scheduled one is skipped
    while it runs, and `overran` records that it could not finish within its interval.
    """

    started = models.DateTimeField(default=timezone.now)
    finished = models.DateTimeField(null=True, blank=True)
    # Collections queued by this sweep, and routers left out because a collection was in flight.
    total = models.PositiveIntegerField(default=0)
    busy = models.PositiveIntegerField(default=0)
    # Batches (RQ jobs) it queued, and the sweep interval it had to finish within.
    batches = models.PositiveIntegerField(default=0)
    interval_s = models.PositiveIntegerField(default=0)
    # Still running when the next one was due (that one was skipped): the fleet needs more workers.
    overran = models.BooleanField(default=False)
    skipped_sweeps = models.PositiveIntegerField(default=0)

    objects = SweepQuerySet.as_manager()

    class Meta:
        ordering = ["-started", "-id"]

    def __str__(self) -> str:
        return f"sweep {self.started:%Y-%m-%d %H:%M:%S} ({self.total} routers)"


class Collection(models.Model):
    """One run of the probes on one router: a row per job run, whatever its outcome."""

    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="collections")
    trigger = models.CharField(max_length=16, choices=CollectionTrigger.choices, default=CollectionTrigger.SCHEDULE)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=16, choices=CollectionStatus.choices, default=CollectionStatus.PENDING)
    reason = models.CharField(max_length=32, choices=CollectionReason.choices, blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    access_path = models.CharField(max_length=255, blank=True)
    created = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    # Parsed facts of the probes that succeeded, keyed by probe name.
    facts = models.JSONField(default=dict, blank=True)
    probe_errors = models.PositiveSmallIntegerField(default=0)
    # Evidence captured before a destructive action (raw outputs, the last lines of every
    # log): recreating the router wipes the originals, so retention must never delete it.
    keep = models.BooleanField(default=False)
    # The sweep that queued it (none for an operator's, a triage's or a command's collection),
    # and the RQ job that runs it: its state in Redis says whether the row was lost.
    sweep = models.ForeignKey(Sweep, null=True, blank=True, on_delete=models.SET_NULL, related_name="collections")
    job_id = models.CharField(max_length=64, blank=True)

    objects = CollectionQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["router", "-created"]), models.Index(fields=["status"])]
        # The console's role permissions (vrconsole/roles.py), held by the role groups.
        permissions = [
            ("operate_routers", "Can act on routers: collect, triage, actions, live tails"),
            ("administer_console", "Can administer the console: admin site, job queues, audit log, roles"),
        ]

    def __str__(self) -> str:
        return f"collection {self.router} {self.created:%Y-%m-%d %H:%M:%S} {self.status}"

    @property
    def is_done(self) -> bool:
        return self.status not in {CollectionStatus.PENDING, CollectionStatus.RUNNING}


class ProbeResult(models.Model):
    """One probe of one collection: timing, outcome and its raw output kept as evidence."""

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="probe_results")
    name = models.CharField(max_length=64)
    scope = models.CharField(max_length=8, default="router")
    command = models.TextField(blank=True)
    ok = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    exit_status = models.IntegerField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    stdout = models.TextField(blank=True)
    stderr = models.TextField(blank=True)
    # The command's output hit SSH_MAX_OUTPUT_BYTES, or the stored copy hit RAW_OUTPUT_MAX_BYTES.
    truncated = models.BooleanField(default=False)
    # Why the probe was not run because it does not apply to this router ("does not apply on
    # XenServer: ..."): neither ok nor failed, and never a fact about the router.
    not_applicable = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["collection", "id"]
        constraints = [models.UniqueConstraint(fields=["collection", "name"], name="probe_result_collection_name")]

    def __str__(self) -> str:
        return f"{self.name} {'ok' if self.ok else 'not applicable' if self.not_applicable else 'error'}"

    @property
    def state(self) -> str:
        """ok, failed, or not-applicable (a host probe on a hypervisor it does not exist on)."""
        if self.ok:
            return "ok"
        return "not-applicable" if self.not_applicable else "failed"


class HealthSample(models.Model):
    """The numbers of one successful collection, for history charts; a field is null when its probe failed.

    The fixed series are columns (diagnostics.series.METRICS); the per-interface and per-CPU
    ones are JSON objects keyed by interface or CPU name.
    """

    # No index of its own: the (router, at) index serves every lookup by router.
    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="health_samples", db_index=False)
    # The collection outlives nothing: retention prunes collections (raw probe output) sooner
    # than samples, and rewriting millions of sample rows to clear the link would cost more
    # than the link. A sample whose collection is gone keeps its id; the page says "pruned".
    collection = models.OneToOneField(
        Collection,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="health_sample",
    )
    at = models.DateTimeField(default=timezone.now)
    conntrack_count = models.BigIntegerField(null=True, blank=True)
    conntrack_max = models.BigIntegerField(null=True, blank=True)
    conntrack_percent = models.FloatField(null=True, blank=True)
    cpu_percent = models.FloatField(null=True, blank=True)
    softirq_percent = models.FloatField(null=True, blank=True)
    load1 = models.FloatField(null=True, blank=True)
    memory_percent = models.FloatField(null=True, blank=True)
    disk_root_percent = models.FloatField(null=True, blank=True)
    disk_log_percent = models.FloatField(null=True, blank=True)
    inode_root_percent = models.FloatField(null=True, blank=True)
    inode_log_percent = models.FloatField(null=True, blank=True)
    dhcp_leases = models.IntegerField(null=True, blank=True)
    dhcp_range_size = models.IntegerField(null=True, blank=True)
    filter_rules = models.IntegerField(null=True, blank=True)
    nat_rules = models.IntegerField(null=True, blank=True)
    mangle_rules = models.IntegerField(null=True, blank=True)
    softnet_drops_ps = models.FloatField(null=True, blank=True)
    # {"eth0": [rx_bps, tx_bps, rx_errors_ps, tx_errors_ps, rx_drops_ps, tx_drops_ps], ...}
    per_nic = models.JSONField(default=dict, blank=True)
    # {"cpu0": [softirq_percent, softnet_drops_ps], ...}
    per_cpu = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["router", "-at"])]

    def __str__(self) -> str:
        return f"health {self.router} {self.at:%Y-%m-%d %H:%M:%S}"


class RollupSpan(models.IntegerChoices):
    HOUR = 3600, "hour"
    DAY = 86400, "day"


class HealthRollup(models.Model):
    """A router's health samples of one hour (or one day) folded into min / max / sum / count per series.

    Written continuously by the history job (diagnostics.rollup), so charts over days read
    one row per hour instead of every sample and keep the peaks; kept far longer than the
    raw samples (HEALTH_ROLLUP_RETENTION_DAYS). The `<series>_min/_max/_sum/_n` columns are
    added below from diagnostics.series.METRICS; `per_nic` and `per_cpu` hold, per key, the
    same four values for each field, flattened.
    """

    # No index of its own: the (router, span, start) constraint's index serves lookups by router.
    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="health_rollups", db_index=False)
    span = models.IntegerField(choices=RollupSpan.choices, default=RollupSpan.HOUR)
    start = models.DateTimeField()
    samples = models.PositiveIntegerField(default=0)
    per_nic = models.JSONField(default=dict, blank=True)
    per_cpu = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["router", "span", "start"]
        constraints = [
            models.UniqueConstraint(fields=["router", "span", "start"], name="health_rollup_router_span_start")
        ]
        indexes = [models.Index(fields=["span", "start"])]

    def __str__(self) -> str:
        return f"{self.get_span_display()} of {self.router} from {self.start:%Y-%m-%d %H:%M}"


for _series in METRICS:
    for _stat in ROLLUP_STATS:
        _field: models.Field = (
            models.PositiveIntegerField(default=0) if _stat == "n" else models.FloatField(null=True, blank=True)
        )
        HealthRollup.add_to_class(f"{_series.name}_{_stat}", _field)


class ConfigKind(models.TextChoices):
    IPTABLES_FILTER = "iptables-filter", "iptables filter"
    IPTABLES_NAT = "iptables-nat", "iptables nat"
    IPTABLES_MANGLE = "iptables-mangle", "iptables mangle"
    DNSMASQ = "dnsmasq", "dnsmasq"
    HAPROXY = "haproxy", "haproxy"
    KEEPALIVED = "keepalived", "keepalived"


class ConfigSnapshot(models.Model):
    """A router's configuration of one kind, stored only when it differs from the previous one."""

    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="config_snapshots")
    # Retention prunes collections sooner than the snapshots they took.
    collection = models.ForeignKey(
        Collection, null=True, blank=True, on_delete=models.SET_NULL, related_name="config_snapshots"
    )
    kind = models.CharField(max_length=32, choices=ConfigKind.choices)
    content = models.TextField()
    sha256 = models.CharField(max_length=64)
    taken_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-taken_at", "-id"]
        indexes = [models.Index(fields=["router", "kind", "-taken_at"])]

    def __str__(self) -> str:
        return f"{self.kind} of {self.router} at {self.taken_at:%Y-%m-%d %H:%M:%S}"


class HostKeyPin(models.Model):
    """The SSH host key first seen for a CloudStack identity (router or host uuid).

    Public keys are not secrets. A recreated router has a new uuid and so gets a new pin; a
    different key under the same uuid is refused and recorded in `mismatch_*`.
    """

    class Kind(models.TextChoices):
        ROUTER = "router", "router"
        HOST = "host", "host"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    identity = models.CharField(max_length=64)
    address = models.CharField(max_length=64, blank=True)
    key_type = models.CharField(max_length=64)
    key_base64 = models.TextField()
    fingerprint = models.CharField(max_length=80)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    mismatch_seen_at = models.DateTimeField(null=True, blank=True)
    mismatch_fingerprint = models.CharField(max_length=80, blank=True)
    mismatch_address = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["kind", "identity"]
        constraints = [models.UniqueConstraint(fields=["kind", "identity"], name="host_key_pin_kind_identity")]

    def __str__(self) -> str:
        return f"{self.kind} {self.identity} {self.fingerprint}"


# --- The troubleshooting matrix's results ------------------------------------------------


class Severity(models.TextChoices):
    CRITICAL = "critical", "critical"
    WARNING = "warning", "warning"
    INFO = "info", "info"


# Worst first: a higher rank sorts and wins above a lower one.
SEVERITY_RANKS: dict[str, int] = {Severity.CRITICAL: 3, Severity.WARNING: 2, Severity.INFO: 1}


def _severity_rank_expression() -> models.Case:
    return models.Case(
        *[models.When(severity=name, then=models.Value(rank)) for name, rank in SEVERITY_RANKS.items()],
        default=models.Value(0),
        output_field=models.IntegerField(),
    )


class VerdictRecord(models.Model):
    """One verdict of one rule on one collection, kept as given: the evidence of that moment."""

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="verdicts")
    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="verdict_records")
    rule = models.CharField(max_length=64)
    # The primary category (the one the rule is filed under) ...
    category = models.CharField(max_length=32)
    # ... and every category the fault takes down, primary first, comma-separated ("dhcp,dns");
    # blank on rows written before they were kept: the primary alone.
    categories = models.CharField(max_length=200, blank=True)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    title = models.CharField(max_length=500)
    evidence = models.JSONField(default=list, blank=True)
    remediation = models.TextField(blank=True)
    # The console action the remedy names (diagnostics.actions key), "" when none fits.
    action = models.CharField(max_length=64, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["collection", "id"]
        indexes = [models.Index(fields=["router", "-created"])]

    def __str__(self) -> str:
        return f"{self.rule} {self.severity} on {self.router}"

    @property
    def category_list(self) -> list[str]:
        """Every category the fault takes down, the primary first."""
        return [name for name in self.categories.split(",") if name] or [self.category]


def in_category(name: str) -> Q:
    """Findings that take `name` down: their primary category, or one of their further ones."""
    return (
        Q(category=name)
        | Q(categories=name)
        | Q(categories__startswith=f"{name},")
        | Q(categories__endswith=f",{name}")
        | Q(categories__contains=f",{name},")
    )


class FindingQuerySet(models.QuerySet["Finding"]):
    def open(self) -> FindingQuerySet:
        return self.filter(resolved_at__isnull=True)

    def resolved(self) -> FindingQuerySet:
        return self.filter(resolved_at__isnull=False)

    def resolved_since(self, moment: datetime) -> FindingQuerySet:
        return self.filter(resolved_at__gte=moment)

    def for_router(self, router: Router | int) -> FindingQuerySet:
        return self.filter(router=router)

    def in_category(self, name: str) -> FindingQuerySet:
        """Findings whose fault takes `name` down, as primary or further category."""
        return self.filter(in_category(name))

    def count_by_category(self, names: Sequence[str]) -> dict[str, int]:
        """How many of these findings take each named category down (a dhcp+dns finding counts under both), one query."""
        counts = self.aggregate(
            **{f"category_{index}": Count("id", filter=in_category(name)) for index, name in enumerate(names)}
        )
        return {name: counts[f"category_{index}"] or 0 for index, name in enumerate(names)}

    def of_present_routers(self) -> FindingQuerySet:
        return self.filter(router__removed_at__isnull=True)

    def worst_first(self) -> FindingQuerySet:
        """Critical before warning before info; within a severity the longest-failing first."""
        return self.annotate(worst_rank=_severity_rank_expression()).order_by("-worst_rank", "opened_at", "rule")

    def acknowledged(self, now: datetime | None = None) -> FindingQuerySet:
        """Findings whose acknowledgement is in force."""
        moment = now or timezone.now()
        return self.filter(acknowledged_at__isnull=False).filter(
            Q(acknowledged_until__isnull=True) | Q(acknowledged_until__gt=moment)
        )


class Finding(models.Model):
    """What one rule says about one router over time: open while it fires, resolved when it stops.

    One row per router and rule. When the rule fires again after a resolution the same row
    reopens and `times_opened` counts it, so a flapping problem reads as one finding that
    came back N times rather than N unrelated ones.
    """

    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="findings")
    rule = models.CharField(max_length=64)
    # The primary category (the one the rule is filed under) ...
    category = models.CharField(max_length=32)
    # ... and every category the fault takes down, primary first, comma-separated ("dhcp,dns");
    # blank on rows written before they were kept: the primary alone.
    categories = models.CharField(max_length=200, blank=True)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    title = models.CharField(max_length=500)
    evidence = models.JSONField(default=list, blank=True)
    remediation = models.TextField(blank=True)
    # The console action the remedy names (diagnostics.actions key), "" when none fits.
    action = models.CharField(max_length=64, blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    # Start of the current (or last) open period: "failing since".
    opened_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    times_opened = models.PositiveIntegerField(default=1)
    first_collection = models.ForeignKey(Collection, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_collection = models.ForeignKey(Collection, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # "I'm on it": who acknowledged the current open period, when, why, and until when (none:
    # until it resolves). Cleared when the finding resolves; an expired one simply stops counting.
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_by_name = models.CharField(max_length=150, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_until = models.DateTimeField(null=True, blank=True)
    acknowledgement_comment = models.TextField(blank=True)

    objects = FindingQuerySet.as_manager()

    class Meta:
        ordering = ["router", "rule"]
        constraints = [models.UniqueConstraint(fields=["router", "rule"], name="finding_router_rule")]
        indexes = [models.Index(fields=["resolved_at", "category"]), models.Index(fields=["router", "resolved_at"])]

    def __str__(self) -> str:
        return f"{self.rule} on {self.router} ({'open' if self.is_open else 'resolved'})"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    @property
    def category_list(self) -> list[str]:
        """Every category the fault takes down, the primary first."""
        return [name for name in self.categories.split(",") if name] or [self.category]

    @property
    def reopened(self) -> int:
        """How many times it came back after being resolved."""
        return self.times_opened - 1

    @property
    def severity_rank(self) -> int:
        return SEVERITY_RANKS.get(self.severity, 0)

    def acknowledgement_active(self, now: datetime | None = None) -> bool:
        """Acknowledged, and the acknowledgement has not expired."""
        if self.acknowledged_at is None:
            return False
        return self.acknowledged_until is None or self.acknowledged_until > (now or timezone.now())

    @property
    def is_acknowledged(self) -> bool:
        return self.acknowledgement_active()

    @property
    def acknowledgement_expired(self) -> bool:
        """Acknowledged once in this open period, but its time ran out: the finding is back to normal."""
        return self.acknowledged_at is not None and not self.acknowledgement_active()

    def acknowledge(self, user: AbstractBaseUser, comment: str, until: datetime | None, now: datetime) -> None:
        """Mark the current open period as in hand (replacing an earlier acknowledgement)."""
        self.acknowledged_by = user if isinstance(user, models.Model) else None  # type: ignore[assignment]
        self.acknowledged_by_name = user.get_username()
        self.acknowledged_at = now
        self.acknowledged_until = until
        self.acknowledgement_comment = comment
        self.save(update_fields=ACKNOWLEDGEMENT_FIELDS)

    def clear_acknowledgement(self) -> None:
        self.acknowledged_by = None
        self.acknowledged_by_name = ""
        self.acknowledged_at = None
        self.acknowledged_until = None
        self.acknowledgement_comment = ""


ACKNOWLEDGEMENT_FIELDS = [
    "acknowledged_by",
    "acknowledged_by_name",
    "acknowledged_at",
    "acknowledged_until",
    "acknowledgement_comment",
]


class FindingEventKind(models.TextChoices):
    OPENED = "opened", "opened"
    REOPENED = "reopened", "reopened"
    RESOLVED = "resolved", "resolved"


class FindingEvent(models.Model):
    """A finding opening, reopening or resolving, on the collection whose evaluation did it.

    The history a Finding row does not keep (it holds only its current period): the router
    charts draw these as markers, and retention keeps the collections they point to longer.
    """

    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="finding_events")
    rule = models.CharField(max_length=64)
    category = models.CharField(max_length=32)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    kind = models.CharField(max_length=16, choices=FindingEventKind.choices)
    title = models.CharField(max_length=500, blank=True)
    at = models.DateTimeField(default=timezone.now)
    collection = models.ForeignKey(
        Collection, null=True, blank=True, on_delete=models.SET_NULL, related_name="finding_events"
    )

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["router", "-at"]), models.Index(fields=["at"])]

    def __str__(self) -> str:
        return f"{self.rule} {self.kind} on {self.router} at {self.at:%Y-%m-%d %H:%M:%S}"


class FleetCountDimension(models.TextChoices):
    STATUS = "status", "routers per status"
    CATEGORY = "category", "open findings per category"
    SEVERITY = "severity", "open findings per severity"


class FleetCount(models.Model):
    """One fleet-wide count at one moment (routers per status, open findings per category...).

    Written by the history job every HISTORY_INTERVAL_SECONDS, so the fleet trends page
    draws "over time" from a few rows per moment instead of replaying every finding.
    """

    at = models.DateTimeField(default=timezone.now)
    dimension = models.CharField(max_length=16, choices=FleetCountDimension.choices)
    key = models.CharField(max_length=32)
    value = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["at", "dimension", "key"]
        indexes = [models.Index(fields=["dimension", "at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.dimension} {self.key}={self.value}"


class RouterStatus(models.TextChoices):
    CRITICAL = "critical", "critical"
    WARNING = "warning", "warning"
    OK = "ok", "ok"
    UNKNOWN = "unknown", "unknown"


# Sort rank of a status: the fleet list sorts the worst routers first on "status".
STATUS_RANKS: dict[str, int] = {
    RouterStatus.CRITICAL: 3,
    RouterStatus.WARNING: 2,
    RouterStatus.OK: 1,
    RouterStatus.UNKNOWN: 0,
}


class RouterHealth(models.Model):
    """A router's current verdict status and open categories, rewritten by every evaluation.

    Denormalised on purpose: the fleet list joins this one small row per router instead of
    aggregating findings and collections for ten thousand routers on every refresh. A router
    without a row has never been evaluated, which reads as unknown.
    """

    router = models.OneToOneField(Router, on_delete=models.CASCADE, primary_key=True, related_name="health")
    status = models.CharField(max_length=16, choices=RouterStatus.choices, default=RouterStatus.UNKNOWN)
    rank = models.PositiveSmallIntegerField(default=0)
    status_since = models.DateTimeField(default=timezone.now)
    # Categories of the open findings, worst first, comma-separated ("dhcp,disk").
    categories = models.CharField(max_length=400, blank=True)
    open_findings = models.PositiveSmallIntegerField(default=0)
    # Open findings someone acknowledged (as of the last evaluation or acknowledgement): the wall
    # marks a router whose every open finding is in hand.
    acknowledged_findings = models.PositiveSmallIntegerField(default=0)
    collection = models.ForeignKey(Collection, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    collection_status = models.CharField(max_length=16, blank=True)
    evaluated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["status"]), models.Index(fields=["rank"])]

    def __str__(self) -> str:
        return f"{self.router_id} {self.status}"

    @property
    def category_list(self) -> list[str]:
        return [name for name in self.categories.split(",") if name]

    @classmethod
    def status_of(cls, router: Router) -> str:
        """The router's status, unknown when it was never evaluated."""
        row = cls.objects.filter(router=router).values_list("status", flat=True).first()
        return row or RouterStatus.UNKNOWN


# --- Why CloudStack failed a router, and what operators did about it ---------------------


class EvidenceStatus(models.TextChoices):
    PENDING = "pending", "pending"
    RUNNING = "running", "running"
    # Every part answered.
    COMPLETE = "complete", "complete"
    # Some parts could not be read: each says why in `unknown`; what was read is kept.
    PARTIAL = "partial", "partial"
    # Nothing could be read (the API refused or is away).
    FAILED = "failed", "failed"
    ERRORED = "errored", "errored"


class FailureEvidenceQuerySet(models.QuerySet["FailureEvidence"]):
    def gathered(self) -> FailureEvidenceQuerySet:
        return self.filter(status__in=[EvidenceStatus.COMPLETE, EvidenceStatus.PARTIAL])

    def in_flight(self) -> FailureEvidenceQuerySet:
        return self.filter(status__in=[EvidenceStatus.PENDING, EvidenceStatus.RUNNING])


class FailureEvidence(models.Model):
    """What CloudStack recorded about a failing router, gathered at one moment through the API.

    The router's recent events (ERROR and WARN first), its failed async jobs with their
    error text, its host, its zone's system VM template, its network or VPC, and optionally
    the management-server log lines that name it. A part that could not be read is listed
    in `unknown` with the reason: a failed read is "unknown", never "nothing happened".
    """

    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="failure_evidence")
    trigger = models.CharField(max_length=16, choices=CollectionTrigger.choices, default=CollectionTrigger.SCHEDULE)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=16, choices=EvidenceStatus.choices, default=EvidenceStatus.PENDING)
    # Why the router deserved a look: "in Error", "stuck in Starting for 14 min", "host kvm-07 Disconnected".
    conditions = models.JSONField(default=list, blank=True)
    router_state = models.CharField(max_length=32, blank=True)
    cloudstack_version = models.CharField(max_length=64, blank=True)
    events = models.JSONField(default=list, blank=True)
    failed_jobs = models.JSONField(default=list, blank=True)
    host = models.JSONField(default=dict, blank=True)
    template = models.JSONField(default=dict, blank=True)
    network = models.JSONField(default=dict, blank=True)
    management_log = models.JSONField(default=dict, blank=True)
    # part name -> why it could not be read
    unknown = models.JSONField(default=dict, blank=True)
    # When the failure happened, as CloudStack recorded it (the failed job or ERROR event).
    failure_time = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    created = models.DateTimeField(default=timezone.now)
    finished = models.DateTimeField(null=True, blank=True)

    objects = FailureEvidenceQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["router", "-created"])]

    def __str__(self) -> str:
        return f"failure evidence {self.router} {self.created:%Y-%m-%d %H:%M:%S} {self.status}"

    @property
    def is_done(self) -> bool:
        return self.status not in {EvidenceStatus.PENDING, EvidenceStatus.RUNNING}


class ActionStatus(models.TextChoices):
    PENDING = "pending", "queued"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    # Expected: CloudStack failed the job, refused the call, or the router refused the command.
    FAILED = "failed", "failed"
    # A bug of ours: `traceback` keeps the evidence.
    ERRORED = "errored", "errored"
    # A dry run: what would have happened, nothing done.
    PLANNED = "planned", "dry run"


IN_FLIGHT_ACTION_STATUSES = (ActionStatus.PENDING, ActionStatus.RUNNING)


class ActionRunQuerySet(models.QuerySet["ActionRun"]):
    def in_flight(self) -> ActionRunQuerySet:
        return self.filter(status__in=IN_FLIGHT_ACTION_STATUSES)

    def holding(self, network_key: str) -> ActionRunQuerySet:
        """Runs that hold the network's slot for exclusive actions now."""
        return self.in_flight().filter(network_key=network_key, exclusive=True, dry_run=False)


class ActionRun(models.Model):
    """One operator action on a router (or its network): who, why, what CloudStack did, and how it ended.

    A row per request, dry runs included. An exclusive action (anything that changes the
    router or its network) holds its network's slot while pending or running: the database
    refuses a second one on the same network (constraint `one_exclusive_action_per_network`),
    whatever page, command or worker asks.
    """

    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="action_runs")
    action = models.CharField(max_length=64)
    # Parameter of the action: the service of restart-service, the offering of change-offering.
    argument = models.CharField(max_length=255, blank=True)
    label = models.CharField(max_length=255, blank=True)
    # What the action works on: router, network or vpc, with CloudStack's uuid and name.
    scope = models.CharField(max_length=16, default="router")
    target_uuid = models.CharField(max_length=64, blank=True)
    target_name = models.CharField(max_length=255, blank=True)
    # "<region id>:network:<uuid>" (or vpc, or router for a router without either).
    network_key = models.CharField(max_length=160)
    exclusive = models.BooleanField(default=True)
    destructive = models.BooleanField(default=False)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    username = models.CharField(max_length=150, blank=True)
    source = models.CharField(max_length=16, default="page")
    reason = models.TextField()
    dry_run = models.BooleanField(default=False)
    capture_evidence = models.BooleanField(default=False)
    # The warnings the operator was shown and acknowledged (a PRIMARY whose BACKUP is unhealthy...).
    warnings = models.JSONField(default=list, blank=True)
    # The API command and its parameters (ids and flags only), or the SSH command.
    command = models.CharField(max_length=255, blank=True)
    parameters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=ActionStatus.choices, default=ActionStatus.PENDING)
    job_id = models.CharField(max_length=64, blank=True)
    # CloudStack's own job outcome: succeeded, failed, or "" when there was no job.
    job_status = models.CharField(max_length=16, blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    # Final states: the router's (and its network's routers') after the action, the job result.
    result = models.JSONField(default=dict, blank=True)
    final_state = models.CharField(max_length=32, blank=True)
    # The steps so far, for a page opened mid-run: [{"at", "step", "status", "message"}].
    progress = models.JSONField(default=list, blank=True)
    evidence_collection = models.ForeignKey(
        Collection, null=True, blank=True, on_delete=models.SET_NULL, related_name="evidence_for"
    )
    after_collection = models.ForeignKey(
        Collection, null=True, blank=True, on_delete=models.SET_NULL, related_name="after_action"
    )
    audit_entry = models.ForeignKey(AuditEntry, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(default=timezone.now)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    objects = ActionRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["router", "-created"]), models.Index(fields=["status"])]
        constraints = [
            models.UniqueConstraint(
                fields=["network_key"],
                condition=Q(exclusive=True, dry_run=False, status__in=["pending", "running"]),
                name="one_exclusive_action_per_network",
            ),
            models.CheckConstraint(condition=~Q(reason=""), name="action_run_reason_required"),
        ]

    def __str__(self) -> str:
        return f"{self.action} on {self.router} by {self.username or 'system'} ({self.status})"

    @property
    def is_done(self) -> bool:
        return self.status not in IN_FLIGHT_ACTION_STATUSES

    @property
    def duration_s(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return round((self.finished - self.started).total_seconds(), 1)


# --- On call: silences and notifications ---------------------------------------------------


class SilenceQuerySet(models.QuerySet["Silence"]):
    def active(self, now: datetime | None = None) -> SilenceQuerySet:
        """Silences in force at `now` (started, not ended, not lifted)."""
        moment = now or timezone.now()
        return self.filter(starts__lte=moment, ends__gt=moment, lifted_at__isnull=True)

    def current_or_upcoming(self, now: datetime | None = None) -> SilenceQuerySet:
        moment = now or timezone.now()
        return self.filter(ends__gt=moment, lifted_at__isnull=True)


class Silence(models.Model):
    """A maintenance window: while it lasts, findings it matches notify nobody.

    It matches by router, rule, category and zone; every criterion given must match (a
    silence of zone Z and category dhcp is the DHCP findings of zone Z's routers; a finding
    matches a category it takes down beside its primary one). Findings
    still open and show on every page; only notifications are held.
    """

    router = models.ForeignKey(Router, null=True, blank=True, on_delete=models.CASCADE, related_name="silences")
    rule = models.CharField(max_length=64, blank=True)
    category = models.CharField(max_length=32, blank=True)
    zone = models.ForeignKey(Zone, null=True, blank=True, on_delete=models.CASCADE, related_name="silences")
    starts = models.DateTimeField(default=timezone.now)
    ends = models.DateTimeField()
    reason = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150, blank=True)
    created = models.DateTimeField(default=timezone.now)
    # Ended early by an operator.
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by_name = models.CharField(max_length=150, blank=True)

    objects = SilenceQuerySet.as_manager()

    class Meta:
        ordering = ["-starts", "-id"]
        indexes = [models.Index(fields=["ends"])]
        constraints = [
            models.CheckConstraint(condition=Q(ends__gt=models.F("starts")), name="silence_ends_after_start"),
            models.CheckConstraint(condition=~Q(reason=""), name="silence_reason_required"),
            models.CheckConstraint(
                condition=Q(router__isnull=False) | ~Q(rule="") | ~Q(category="") | Q(zone__isnull=False),
                name="silence_matches_something",
            ),
        ]

    def __str__(self) -> str:
        return f"silence of {self.scope_text} from {self.starts:%Y-%m-%d %H:%M} to {self.ends:%Y-%m-%d %H:%M}"

    @property
    def scope_text(self) -> str:
        """What it silences, in words: "router r-1-VM, category dhcp"."""
        parts = []
        if self.router is not None:
            parts.append(f"router {self.router.name or self.router.uuid}")
        if self.zone is not None:
            parts.append(f"zone {self.zone.name}")
        if self.rule:
            parts.append(f"rule {self.rule}")
        if self.category:
            parts.append(f"category {self.category}")
        return ", ".join(parts)

    def matches(self, finding: Finding, router: Router) -> bool:
        """Every criterion the silence names holds for the finding on its router."""
        return (
            (self.router_id is None or self.router_id == router.pk)
            and (self.zone_id is None or self.zone_id == router.zone_id)
            and (not self.rule or self.rule == finding.rule)
            and (not self.category or self.category in finding.category_list)
        )

    def in_force(self, now: datetime | None = None) -> bool:
        moment = now or timezone.now()
        return self.lifted_at is None and self.starts <= moment < self.ends


class NotificationKind(models.TextChoices):
    OPENED = "opened", "opened"
    ESCALATED = "escalated", "escalated"
    REMINDER = "reminder", "still open"
    FLAPPING = "flapping", "flapping"
    RESOLVED = "resolved", "resolved"
    TEST = "test", "test"


class Notification(models.Model):
    """One message about one finding (or a test): what it says, and why it was held if it was.

    The message is built when the evaluation decides to send it, so it says what was true
    then; each destination's delivery is a NotificationDelivery row worked by the notify queue.
    A held message (acknowledged or silenced finding) keeps `suppressed_because` and has no
    deliveries: the console can say why nobody was paged.
    """

    finding = models.ForeignKey(Finding, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications")
    router = models.ForeignKey(Router, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications")
    rule = models.CharField(max_length=64, blank=True)
    severity = models.CharField(max_length=16, blank=True)
    kind = models.CharField(max_length=16, choices=NotificationKind.choices)
    subject = models.CharField(max_length=300)
    # The message as sent: the JSON webhook body (text included).
    message = models.JSONField(default=dict, blank=True)
    suppressed_because = models.CharField(max_length=300, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["finding", "-created"]), models.Index(fields=["router", "-created"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.rule} on {self.router_id} at {self.created:%Y-%m-%d %H:%M:%S}"

    @property
    def was_sent(self) -> bool:
        return not self.suppressed_because


class DeliveryChannel(models.TextChoices):
    WEBHOOK = "webhook", "webhook"
    EMAIL = "email", "e-mail"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "queued"
    # Failed at least once, another attempt is queued with backoff.
    RETRYING = "retrying", "retrying"
    SENT = "sent", "sent"
    FAILED = "failed", "failed"


class NotificationDelivery(models.Model):
    """One notification to one destination: its attempts and how it ended.

    A webhook is named by its host and a hash of its URL, never the URL itself: a Slack or
    Mattermost webhook URL is a secret. The job finds the URL again in NOTIFY_WEBHOOKS by the hash.
    """

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=16, choices=DeliveryChannel.choices)
    # webhook: "<sha256 of the URL, 16 hex>"; email: the address.
    destination = models.CharField(max_length=254)
    label = models.CharField(max_length=300)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    created = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["notification", "id"]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.label}: {self.status}"
