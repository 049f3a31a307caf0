"""URL routes of the fleet dashboard: the fleet list and one page per router (by CloudStack uuid)."""

from django.urls import path

from vrconsole import fleet_views

urlpatterns = [
    path("", fleet_views.fleet_page, name="fleet"),
    path("routers/<str:uuid>/", fleet_views.router_detail, name="router-detail"),
]
