"""URL routes of the console.

Every view declares what it needs with `vrconsole.roles.requires` (tests/test_permissions.py
walks these patterns and fails on a view that declares nothing); the admin site asks the
roles itself. /healthz and /readyz are answered by vrconsole.health's middleware.
"""

from django.contrib import admin
from django.urls import URLPattern, include, path
from django_rq import urls as rq_urls

from vrconsole.accounts import login_view, logout_view
from vrconsole.roles import Capability, requires


def _superusers_only(patterns: list) -> list[URLPattern]:
    """django-rq's pages (enqueue, requeue, stop jobs) for superusers only, not every staff user."""
    return [URLPattern(p.pattern, requires(Capability.SUPERUSER)(p.callback), p.default_args, p.name) for p in patterns]


urlpatterns = [
    path("login/", login_view, name="login"),
    path("logout/", logout_view, name="logout"),
    path("admin/", admin.site.urls),
    path("rq/", include((_superusers_only(rq_urls.urlpatterns), "django_rq"))),
    path("", include("diagnostics.live_urls")),
    path("", include("diagnostics.action_urls")),
    path("", include("diagnostics.oncall_urls")),
    path("", include("diagnostics.urls")),
    path("", include("vrconsole.dashboard.urls")),
]

# A database or Redis outage answers a clear 503 page instead of a 500 (vrconsole/health.py).
handler500 = "vrconsole.health.server_error"
