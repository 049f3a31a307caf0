"""Admin pages for collections, health samples, config snapshots, host key pins, action runs, failure evidence
and notifications (read-mostly)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from diagnostics.models import (
    ActionRun,
    Collection,
    ConfigSnapshot,
    FailureEvidence,
    HealthSample,
    HostKeyPin,
    Notification,
    NotificationDelivery,
    ProbeResult,
)


class ProbeResultInline(admin.TabularInline):
    model = ProbeResult
    extra = 0
    fields = ("name", "scope", "ok", "exit_status", "duration_s", "truncated", "error")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ("router", "trigger", "status", "reason", "probe_errors", "created", "duration_s")
    list_filter = ("status", "trigger", "reason", "keep")
    search_fields = ("router__name", "router__uuid")
    raw_id_fields = ("router", "requested_by")
    readonly_fields = ("started", "finished", "duration_s", "facts", "traceback", "access_path")
    inlines = [ProbeResultInline]


@admin.register(ProbeResult)
class ProbeResultAdmin(admin.ModelAdmin):
    """What a probe printed, as the collection stored it (redacted): evidence, so read-only."""

    list_display = ("name", "collection", "ok", "duration_s", "truncated")
    list_filter = ("ok", "name")
    raw_id_fields = ("collection",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(HealthSample)
class HealthSampleAdmin(admin.ModelAdmin):
    list_display = ("router", "at", "conntrack_percent", "cpu_percent", "memory_percent", "disk_root_percent", "load1")
    raw_id_fields = ("router", "collection")


@admin.register(ConfigSnapshot)
class ConfigSnapshotAdmin(admin.ModelAdmin):
    list_display = ("router", "kind", "taken_at", "sha256")
    list_filter = ("kind",)
    search_fields = ("router__name", "sha256")
    raw_id_fields = ("router", "collection")


@admin.register(HostKeyPin)
class HostKeyPinAdmin(admin.ModelAdmin):
    list_display = ("kind", "identity", "address", "key_type", "fingerprint", "last_seen", "mismatch_seen_at")
    list_filter = ("kind",)
    search_fields = ("identity", "address", "fingerprint")


@admin.register(ActionRun)
class ActionRunAdmin(admin.ModelAdmin):
    """Action runs are written by the console only; an admin reads them (and may mark a lost one failed)."""

    list_display = ("router", "action", "argument", "username", "status", "job_id", "created", "finished")
    list_filter = ("status", "action", "dry_run", "source")
    search_fields = ("router__name", "router__uuid", "username", "reason", "job_id")
    raw_id_fields = ("router", "requested_by", "evidence_collection", "after_collection", "audit_entry")
    readonly_fields = (
        "router",
        "action",
        "argument",
        "scope",
        "target_uuid",
        "target_name",
        "network_key",
        "requested_by",
        "username",
        "reason",
        "dry_run",
        "command",
        "parameters",
        "warnings",
        "job_id",
        "job_status",
        "result",
        "progress",
        "traceback",
        "created",
        "started",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(FailureEvidence)
class FailureEvidenceAdmin(admin.ModelAdmin):
    list_display = ("router", "status", "trigger", "failure_time", "created", "finished")
    list_filter = ("status", "trigger")
    search_fields = ("router__name", "router__uuid")
    raw_id_fields = ("router", "requested_by")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class NotificationDeliveryInline(admin.TabularInline):
    model = NotificationDelivery
    extra = 0
    fields = ("label", "status", "attempts", "error", "sent_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """What was told (or held, and why) about which finding; read-only: it is a record."""

    list_display = ("created", "router", "rule", "severity", "kind", "suppressed_because")
    list_filter = ("kind", "severity")
    search_fields = ("router__name", "router__uuid", "rule")
    raw_id_fields = ("router", "finding")
    readonly_fields = (
        "finding",
        "router",
        "rule",
        "severity",
        "kind",
        "subject",
        "message",
        "suppressed_because",
        "created",
    )
    inlines = [NotificationDeliveryInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
