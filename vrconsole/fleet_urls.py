"""URL routes of the fleet dashboard."""

from django.urls import path

from vrconsole import fleet_views

urlpatterns = [
    path("", fleet_views.fleet, name="fleet"),
]
