"""URL routes of the diagnostics pages: the matrix reference and the findings of a router as JSON."""

from django.urls import path

from diagnostics import views

urlpatterns = [
    path("matrix/", views.matrix_page, name="matrix"),
    path("routers/<str:uuid>/findings.json", views.router_findings_json, name="router-findings-json"),
]
