"""Admin pages of the inventory side: the audit log (read-only, search, CSV export) and audited user changes."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.forms import ModelForm
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


# Who may do what is decided by these flags and the role groups: a change of any of them is
# written to the audit log with the admin who made it.
AUDITED_USER_FIELDS = ("is_active", "is_staff", "is_superuser", "groups")

admin.site.unregister(User)


@admin.register(User)
class ConsoleUserAdmin(UserAdmin):
    """Django's user admin, with account and role changes audited under the acting admin's name."""

    def save_related(self, request: HttpRequest, form: ModelForm, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        user = form.instance
        changed = [name for name in AUDITED_USER_FIELDS if name in form.changed_data]
        if not changed:
            return
        now = []
        for name in changed:
            if name == "groups":
                now.append("groups: " + (", ".join(sorted(g.name for g in user.groups.all())) or "none"))
            else:
                now.append(f"{name}: {getattr(user, name)}")
        AuditEntry.record(
            "account.changed", user=request.user, target=user.get_username(), detail="; ".join(now), outcome="changed"
        )
