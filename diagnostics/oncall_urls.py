"""URL routes of the on-call pages: acknowledgements, silences, the ticket report."""

from django.urls import path

from diagnostics import oncall_views

urlpatterns = [
    path(
        "routers/<str:uuid>/findings/<str:rule>/acknowledge/",
        oncall_views.acknowledge_finding,
        name="finding-acknowledge",
    ),
    path(
        "routers/<str:uuid>/findings/<str:rule>/unacknowledge/",
        oncall_views.unacknowledge_finding,
        name="finding-unacknowledge",
    ),
    path("routers/<str:uuid>/report.md", oncall_views.router_report, {"fmt": "md"}, name="router-report-md"),
    path("routers/<str:uuid>/report.txt", oncall_views.router_report, {"fmt": "txt"}, name="router-report-txt"),
    path("silences/", oncall_views.silences_page, name="silences"),
    path("silences/<int:pk>/lift/", oncall_views.lift_silence, name="silence-lift"),
]
