"""The console's admin site: open to console admins (the admin role), with a status page.

Django's own site lets any staff user in; this one asks `vrconsole.roles` like every other
page (admins and superusers), so that a role change is the only way in. Its index links the
status page (`admin/status/`): the readiness report of /readyz, for a person.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin import AdminSite
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from vrconsole.accounts import ThrottledLoginMixin
from vrconsole.health import readiness
from vrconsole.roles import is_console_admin


class ConsoleAdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """Admits console admins (the role), not Django's staff flag."""

    def confirm_login_allowed(self, user: Any) -> None:
        if not is_console_admin(user):
            raise ValidationError(
                "This account is not a console admin. Sign in with an admin account.", code="invalid_login"
            )


class ConsoleAdminSite(AdminSite):
    site_header = "VR Console administration"
    site_title = "VR Console admin"
    index_title = "Administration"
    login_form = ConsoleAdminLoginForm
    index_template = "admin/console_index.html"

    def has_permission(self, request: HttpRequest) -> bool:
        return is_console_admin(request.user)

    def get_urls(self) -> list[Any]:
        own: list[URLPattern] = [path("status/", self.admin_view(self.status_view), name="console-status")]
        return own + super().get_urls()

    def status_view(self, request: HttpRequest) -> HttpResponse:
        """The console's own health: database, Redis, workers per queue, last sync and sweep."""
        status, report = readiness()
        context = {
            **self.each_context(request),
            "title": "Console status",
            "http_status": status,
            "report": report,
            "workers": sorted(report.get("workers", {}).items()),
        }
        return TemplateResponse(request, "admin/console_status.html", context)
