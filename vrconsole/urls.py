"""URL routes of the console."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from vrconsole import views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="registration/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("rq/", include("django_rq.urls")),
    path("", include("diagnostics.live_urls")),
    path("", include("diagnostics.action_urls")),
    path("", include("diagnostics.oncall_urls")),
    path("", include("diagnostics.urls")),
    path("", include("vrconsole.dashboard.urls")),
]
