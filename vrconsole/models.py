"""Inventory models: the routers, hosts, networks, VPCs and zones as CloudStack reports them.

Rows are upserted by the sync (vrconsole/sync.py) keyed on (region, CloudStack uuid). A row
is never deleted because the API stopped listing it: it is marked removed and keeps its
history, so "this router vanished at 02:14" stays answerable. API keys are not stored here:
a Region row only mirrors the name and endpoint of a configured region.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Q
from django.utils import timezone

from vrconsole.fields import JSONTextField


class SyncStatus(models.TextChoices):
    NEVER = "never", "never synced"
    RUNNING = "running", "running"
    OK = "ok", "ok"
    FAILED = "failed", "failed"


class Region(models.Model):
    """One CloudStack management endpoint (a cloud, or a region of one)."""

    name = models.CharField(max_length=64, unique=True)
    endpoint = models.CharField(max_length=500, blank=True)
    last_sync_started = models.DateTimeField(null=True, blank=True)
    last_sync_finished = models.DateTimeField(null=True, blank=True)
    last_sync_status = models.CharField(max_length=16, choices=SyncStatus.choices, default=SyncStatus.NEVER)
    last_sync_error = models.TextField(blank=True)
    last_success = models.DateTimeField(null=True, blank=True)
    # Something the operator should know although the sync worked (e.g. a non-admin API key).
    last_sync_warning = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def sync_is_stale(self) -> bool:
        """True when the last good sync is older than three sync intervals."""
        if self.last_success is None:
            return True
        age = timezone.now() - self.last_success
        return age > timedelta(seconds=3 * settings.SYNC_INTERVAL_SECONDS)


class SyncRun(models.Model):
    """One run of the inventory sync for one region: a row per job run, like NetBox's jobs."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "schedule"
        COMMAND = "command", "command"
        OPERATOR = "operator", "operator"
        TRIAGE = "triage", "triage"

    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="sync_runs")
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.SCHEDULE)
    status = models.CharField(max_length=16, choices=SyncStatus.choices, default=SyncStatus.RUNNING)
    started = models.DateTimeField(default=timezone.now)
    finished = models.DateTimeField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    routers = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    state_changes = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    warnings = models.TextField(blank=True)

    class Meta:
        ordering = ["-started"]
        indexes = [models.Index(fields=["region", "-started"])]

    def __str__(self) -> str:
        return f"sync {self.region} {self.started:%Y-%m-%d %H:%M:%S} {self.status}"


class CloudObject(models.Model):
    """Fields every mirrored CloudStack object has."""

    region = models.ForeignKey(Region, on_delete=models.CASCADE)
    uuid = models.CharField(max_length=64)
    name = models.CharField(max_length=255, blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    # When this row's API data last changed (rows are written only then); present rows were
    # last confirmed by their region's last successful sync (Region.last_success).
    api_changed_at = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True)
    # Digest of the API item last applied: an unchanged item costs the sync no write.
    api_digest = models.CharField(max_length=32, blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name or self.uuid


class Zone(CloudObject):
    """A CloudStack zone."""

    network_type = models.CharField(max_length=32, blank=True)
    allocation_state = models.CharField(max_length=32, blank=True)
    # listTemplates templatefilter=system: [{name, hypervisor, isready, status}] in this zone.
    # A router whose hypervisor has no ready system template cannot be recreated here.
    system_templates = models.JSONField(default=list, blank=True)

    def system_template_for(self, hypervisor: str) -> dict | None:
        """The system VM template of that hypervisor in this zone; a ready one wins over others."""
        matching = [t for t in self.system_templates if str(t.get("hypervisor", "")).lower() == hypervisor.lower()]
        ready = [t for t in matching if t.get("isready")]
        return (ready or matching or [None])[0]

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["region", "uuid"], name="zone_region_uuid")]


class Host(CloudObject):
    """A hypervisor host. `ipaddress` is the address the console SSHes to for KVM routers."""

    zone = models.ForeignKey(Zone, null=True, blank=True, on_delete=models.SET_NULL, related_name="hosts")
    ipaddress = models.GenericIPAddressField(null=True, blank=True)
    state = models.CharField(max_length=32, blank=True)
    resource_state = models.CharField(max_length=32, blank=True)
    hypervisor = models.CharField(max_length=32, blank=True)
    hypervisor_version = models.CharField(max_length=64, blank=True)
    host_type = models.CharField(max_length=32, blank=True)
    pod_name = models.CharField(max_length=255, blank=True)
    cluster_name = models.CharField(max_length=255, blank=True)
    agent_version = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["region", "uuid"], name="host_region_uuid")]


class Vpc(CloudObject):
    """A CloudStack VPC."""

    zone = models.ForeignKey(Zone, null=True, blank=True, on_delete=models.SET_NULL, related_name="vpcs")
    cidr = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=32, blank=True)
    account = models.CharField(max_length=255, blank=True)
    domain = models.CharField(max_length=255, blank=True)
    project = models.CharField(max_length=255, blank=True)
    redundant = models.BooleanField(default=False)
    restart_required = models.BooleanField(default=False)
    public_mtu = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["region", "uuid"], name="vpc_region_uuid")]


class Network(CloudObject):
    """A guest network (isolated, shared, L2, or a VPC tier)."""

    zone = models.ForeignKey(Zone, null=True, blank=True, on_delete=models.SET_NULL, related_name="networks")
    vpc = models.ForeignKey(Vpc, null=True, blank=True, on_delete=models.SET_NULL, related_name="tiers")
    network_type = models.CharField(max_length=32, blank=True)
    traffic_type = models.CharField(max_length=32, blank=True)
    state = models.CharField(max_length=32, blank=True)
    cidr = models.CharField(max_length=64, blank=True)
    gateway = models.CharField(max_length=64, blank=True)
    netmask = models.CharField(max_length=64, blank=True)
    network_domain = models.CharField(max_length=255, blank=True)
    vlan = models.CharField(max_length=64, blank=True)
    broadcast_uri = models.CharField(max_length=255, blank=True)
    account = models.CharField(max_length=255, blank=True)
    domain = models.CharField(max_length=255, blank=True)
    project = models.CharField(max_length=255, blank=True)
    redundant = models.BooleanField(default=False)
    restart_required = models.BooleanField(default=False)
    egress_default_policy = models.BooleanField(null=True, blank=True)
    offering_name = models.CharField(max_length=255, blank=True)
    services = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["region", "uuid"], name="network_region_uuid")]


class RouterState(models.TextChoices):
    STARTING = "Starting"
    RUNNING = "Running"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    DESTROYED = "Destroyed"
    EXPUNGING = "Expunging"
    MIGRATING = "Migrating"
    ERROR = "Error"
    UNKNOWN = "Unknown"
    SHUTDOWN = "Shutdown"
    RESTORING = "Restoring"


TRANSITIONAL_STATES = frozenset({"Starting", "Stopping", "Expunging", "Migrating", "Restoring"})


class RedundantState(models.TextChoices):
    """CloudStack's redundant states; MASTER (before 4.16) is stored as PRIMARY."""

    PRIMARY = "PRIMARY"
    BACKUP = "BACKUP"
    FAULT = "FAULT"
    UNKNOWN = "UNKNOWN"


class RouterType(models.TextChoices):
    ISOLATED = "isolated", "isolated"
    VPC = "vpc", "VPC"
    SHARED = "shared", "shared"


def _as_ip_address(text: str) -> str | None:
    """The text as a canonical IP address, or None when it is not a whole one."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


class RouterQuerySet(models.QuerySet["Router"]):
    def present(self) -> RouterQuerySet:
        """Routers the API still lists."""
        return self.filter(removed_at__isnull=True)

    def with_uuid(self, uuid: str) -> RouterQuerySet:
        """Routers with this CloudStack uuid, the one the API still lists first.

        A uuid names one router for CloudStack, but the console keeps removed rows (and a
        region re-added under another name keeps its old ones), so an address like
        /routers/<uuid>/ must prefer the router that exists now.
        """
        return self.filter(uuid=uuid).order_by(models.F("removed_at").desc(nulls_first=True), "-pk")

    def search(self, text: str) -> RouterQuerySet:
        """Match part of a name, uuid, account, network or VPC name, or any IP (API fields and NICs)."""
        text = text.strip()
        if not text:
            return self
        exact_ip = _as_ip_address(text)
        if exact_ip is not None:
            # A whole address: equality hits the IP indexes instead of a pattern scan.
            nic_exact = RouterNic.objects.filter(router=models.OuterRef("pk"), ip_address=exact_ip)
            return self.filter(
                Q(guest_ip=exact_ip) | Q(public_ip=exact_ip) | Q(link_local_ip=exact_ip) | Q(models.Exists(nic_exact))
            )
        nic_match = RouterNic.objects.filter(router=models.OuterRef("pk"), ip_address__startswith=text)
        # Networks and VPCs by name as subqueries (a few matching ids), not joined to every router.
        networks = Network.objects.filter(name__icontains=text).values("pk")
        vpcs = Vpc.objects.filter(name__icontains=text).values("pk")
        return self.filter(
            Q(name__icontains=text)
            | Q(uuid__istartswith=text)
            | Q(account__icontains=text)
            | Q(project__icontains=text)
            | Q(network__in=networks)
            | Q(vpc__in=vpcs)
            | Q(guest_ip__startswith=text)
            | Q(public_ip__startswith=text)
            | Q(link_local_ip__startswith=text)
            | Q(models.Exists(nic_match))
        )


class Router(CloudObject):
    """A virtual router as listRouters reports it (root-admin view)."""

    state = models.CharField(max_length=32, choices=RouterState.choices, blank=True)
    state_since = models.DateTimeField(null=True, blank=True)
    is_redundant = models.BooleanField(default=False)
    redundant_state = models.CharField(max_length=16, blank=True)
    role = models.CharField(max_length=32, blank=True)
    router_type = models.CharField(max_length=16, choices=RouterType.choices, default=RouterType.ISOLATED)
    link_local_ip = models.GenericIPAddressField(null=True, blank=True)
    guest_ip = models.GenericIPAddressField(null=True, blank=True)
    public_ip = models.GenericIPAddressField(null=True, blank=True)
    gateway = models.CharField(max_length=64, blank=True)
    host = models.ForeignKey(Host, null=True, blank=True, on_delete=models.SET_NULL, related_name="routers")
    host_name = models.CharField(max_length=255, blank=True)
    hypervisor = models.CharField(max_length=32, blank=True)
    zone = models.ForeignKey(Zone, null=True, blank=True, on_delete=models.SET_NULL, related_name="routers")
    pod_name = models.CharField(max_length=255, blank=True)
    account = models.CharField(max_length=255, blank=True)
    domain = models.CharField(max_length=255, blank=True)
    project = models.CharField(max_length=255, blank=True)
    network = models.ForeignKey(Network, null=True, blank=True, on_delete=models.SET_NULL, related_name="routers")
    vpc = models.ForeignKey(Vpc, null=True, blank=True, on_delete=models.SET_NULL, related_name="routers")
    template_name = models.CharField(max_length=255, blank=True)
    template_version = models.CharField(max_length=64, blank=True)
    scripts_version = models.CharField(max_length=64, blank=True)
    software_version = models.CharField(max_length=64, blank=True)
    requires_upgrade = models.BooleanField(default=False)
    service_offering = models.CharField(max_length=255, blank=True)
    network_domain = models.CharField(max_length=255, blank=True)
    dns1 = models.CharField(max_length=64, blank=True)
    dns2 = models.CharField(max_length=64, blank=True)
    health_checks = JSONTextField(default=list, blank=True)
    # Computed from health_checks: listRouters' own flag is unreliable (apache/cloudstack#12630).
    health_checks_failed = models.BooleanField(default=False)
    health_checks_failed_api = models.BooleanField(null=True, blank=True)
    created_in_cloudstack = models.DateTimeField(null=True, blank=True)
    # The last listRouters item as received, for the detail page ("everything CloudStack says").
    # Both JSON values are kept as text (vrconsole.fields): read whole, never queried inside.
    api_data = JSONTextField(default=dict, blank=True)

    objects = RouterQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["region", "uuid"], name="router_region_uuid")]
        indexes = [
            models.Index(fields=["state"]),
            models.Index(fields=["name"]),
            models.Index(fields=["account"]),
            models.Index(fields=["guest_ip"]),
            models.Index(fields=["public_ip"]),
            models.Index(fields=["link_local_ip"]),
            models.Index(fields=["removed_at", "state"]),
            # On PostgreSQL, migration 0006 adds router_summary: this index with the columns the
            # fleet summary reads INCLUDEd, so its pass over the fleet is an index-only scan.
        ]

    @property
    def is_transitional(self) -> bool:
        return self.state in TRANSITIONAL_STATES

    @property
    def is_stuck(self) -> bool:
        """In a transitional state for longer than STUCK_TRANSITION_MINUTES."""
        if not self.is_transitional or self.state_since is None:
            return False
        return timezone.now() - self.state_since > timedelta(minutes=settings.STUCK_TRANSITION_MINUTES)

    @property
    def failed_health_checks(self) -> list[dict]:
        return [c for c in self.health_checks if isinstance(c, dict) and c.get("success") is False]

    @property
    def network_label(self) -> str:
        if self.vpc_id and self.vpc is not None:
            return self.vpc.name
        if self.network_id and self.network is not None:
            return self.network.name
        return ""

    def ssh_command(self) -> str:
        """The ssh command an engineer types to reach this router by hand, or "" when it cannot be built.

        KVM and XenServer routers are reachable only from their host, at the link-local control
        address, with the system key kept on the host; VMware and Hyper-V routers are reached
        directly at their control (pod private) address from the management server. Ports and
        the host login come from the console's settings (VR_SSH_PORT, HOST_SSH_USER/PORT).
        """
        control_ip = self.link_local_ip
        if not control_ip:
            return ""
        port = settings.VR_SSH_PORT
        hypervisor = (self.hypervisor or "").lower()
        if hypervisor in {"vmware", "hyperv", "hyper-v"}:
            return f"ssh -i /var/cloudstack/management/.ssh/id_rsa -p {port} root@{control_ip}"
        host_ip = self.host.ipaddress if self.host is not None else None
        if not host_ip:
            return ""
        jump = f"{settings.HOST_SSH_USER}@{host_ip}"
        if settings.HOST_SSH_PORT != 22:
            jump += f":{settings.HOST_SSH_PORT}"
        return f"ssh -J {jump} -i /root/.ssh/id_rsa.cloud -p {port} root@{control_ip}"

    def redundant_peers(self) -> RouterQuerySet:
        """Other present routers of the same redundant network or VPC."""
        if not self.is_redundant:
            return Router.objects.none()
        peers = Router.objects.present().filter(region_id=self.region_id, is_redundant=True).exclude(pk=self.pk)
        if self.vpc_id:
            return peers.filter(vpc_id=self.vpc_id)
        if self.network_id:
            return peers.filter(network_id=self.network_id)
        return Router.objects.none()


class RouterNic(models.Model):
    """One NIC of a router, from the `nic` array of listRouters (admin only)."""

    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="nics")
    uuid = models.CharField(max_length=64, blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    traffic_type = models.CharField(max_length=32, blank=True)
    guest_type = models.CharField(max_length=32, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    netmask = models.CharField(max_length=64, blank=True)
    gateway = models.CharField(max_length=64, blank=True)
    mac_address = models.CharField(max_length=32, blank=True)
    network_uuid = models.CharField(max_length=64, blank=True)
    network_name = models.CharField(max_length=255, blank=True)
    broadcast_uri = models.CharField(max_length=255, blank=True)
    isolation_uri = models.CharField(max_length=255, blank=True)
    ip6_address = models.CharField(max_length=64, blank=True)
    is_default = models.BooleanField(default=False)
    mtu = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["router", "position"]
        indexes = [models.Index(fields=["ip_address"])]

    def __str__(self) -> str:
        return f"{self.traffic_type} {self.ip_address or ''}".strip()


class RouterStateChange(models.Model):
    """A change of a router's state or redundant state seen by a sync (from, to, when)."""

    class Kind(models.TextChoices):
        STATE = "state", "state"
        REDUNDANT = "redundant_state", "redundant state"
        PRESENCE = "presence", "presence"

    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="state_changes")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.STATE)
    from_state = models.CharField(max_length=32, blank=True)
    to_state = models.CharField(max_length=32, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["router", "-at"])]

    def __str__(self) -> str:
        return f"{self.router} {self.kind}: {self.from_state or '∅'} → {self.to_state or '∅'}"


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    def update(self, **kwargs: Any) -> int:
        raise PermissionDenied("the audit log is append-only: entries are never changed")


class AuditEntry(models.Model):
    """Who did what: every operator action, every SSH session, sign-ins and role changes.

    Append-only through the console: an entry is written once and never changed (saving an
    existing entry, `update()` and deleting one raise); only retention removes entries older
    than AUDIT_RETENTION_DAYS, in bulk. The admin shows them read-only, with search and export.
    """

    at = models.DateTimeField(default=timezone.now)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64)
    router = models.ForeignKey(Router, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries")
    target = models.CharField(max_length=255, blank=True)
    detail = models.TextField(blank=True)
    outcome = models.CharField(max_length=32, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["-at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.target}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The one integrity rule of the log, not business logic: a written entry stays as written.
        if self.pk is not None and not self._state.adding:
            raise PermissionDenied("the audit log is append-only: entries are never changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionDenied("the audit log is append-only: only retention removes old entries")

    @classmethod
    def record(
        cls,
        action: str,
        *,
        user: User | AnonymousUser | None = None,
        router: Router | None = None,
        target: str = "",
        detail: str = "",
        outcome: str = "",
    ) -> AuditEntry:
        """Write one entry; without a signed-in user the actor is "system" (a schedule or a worker)."""
        actor = user if isinstance(user, User) and user.is_authenticated else None
        signed_in = actor is not None
        if not target and router is not None:
            target = router.name or router.uuid
        return cls.objects.create(
            user=actor,
            username=user.get_username() if signed_in and user is not None else "system",
            action=action,
            router=router,
            target=target[:255],
            detail=detail,
            outcome=outcome[:32],
        )
