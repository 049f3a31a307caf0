"""URL routes of the fleet dashboard: the fleet list, its live rows, and one page per router (by CloudStack uuid)."""

from django.urls import path

from vrconsole.dashboard import views

urlpatterns = [
    path("", views.fleet_page, name="fleet"),
    path("fleet/rows/", views.fleet_rows, name="fleet-rows"),
    path("routers/<str:uuid>/", views.router_detail, name="router-detail"),
]
