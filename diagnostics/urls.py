"""URL routes of the diagnostics pages: the matrix, a router's findings, chart data, exports and snapshot diffs, collections."""

from django.urls import path

from diagnostics import views

urlpatterns = [
    path("matrix/", views.matrix_page, name="matrix"),
    path("routers/<str:uuid>/findings.json", views.router_findings_json, name="router-findings-json"),
    path("routers/<str:uuid>/history.json", views.router_history_json, name="router-history-json"),
    path("routers/<str:uuid>/samples.csv", views.router_samples_export, {"fmt": "csv"}, name="router-samples-csv"),
    path("routers/<str:uuid>/samples.json", views.router_samples_export, {"fmt": "json"}, name="router-samples-json"),
    path("routers/<str:uuid>/snapshots/diff/", views.snapshot_diff, name="router-snapshot-diff"),
    path("collections/<int:pk>/", views.collection_detail, name="collection-detail"),
]
