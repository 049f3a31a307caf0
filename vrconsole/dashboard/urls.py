"""URL routes of the fleet dashboard: the fleet list and its live rows, one page per router (by
CloudStack uuid), trends, /metrics."""

from django.urls import path

from vrconsole.dashboard import views

urlpatterns = [
    path("", views.fleet_page, name="fleet"),
    path("fleet/rows/", views.fleet_rows, name="fleet-rows"),
    path("routers/<str:uuid>/", views.router_detail, name="router-detail"),
    path("trends/", views.fleet_trends, name="fleet-trends"),
    path("metrics", views.prometheus_metrics, name="metrics"),
]
