"""Admin pages of the inventory side: the audit log, read-only, with search and CSV export."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import path

from vrconsole.models import AuditEntry

EXPORT_COLUMNS = ("at", "username", "action", "target", "router_id", "outcome", "detail")


class _Echo:
    def write(self, value: str) -> str:
        return value


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The audit log: searchable, filterable, exported as CSV as filtered; never changed here."""

    list_display = ("at", "username", "action", "target", "outcome")
    list_filter = ("action", "outcome")
    search_fields = ("username", "action", "target", "detail", "router__name", "router__uuid")
    date_hierarchy = "at"
    list_select_related = ("router",)
    change_list_template = "admin/vrconsole/auditentry/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[Any]:
        export = path("export.csv", self.admin_site.admin_view(self.export_csv), name="vrconsole_auditentry_export")
        return [export, *super().get_urls()]

    def export_csv(self, request: HttpRequest) -> StreamingHttpResponse:
        """The entries the change list shows for the same query string (search, filters, dates), as CSV."""
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        changelist = self.get_changelist_instance(request)
        rows = changelist.get_queryset(request).values_list(*EXPORT_COLUMNS).iterator(chunk_size=2000)
        writer = csv.writer(_Echo())

        def lines() -> Iterator[str]:
            yield writer.writerow(EXPORT_COLUMNS)
            for row in rows:
                yield writer.writerow([value.isoformat() if hasattr(value, "isoformat") else value for value in row])

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="audit-log.csv"'
        return response
