"""URL routes of the router page's live part: the operator's "Collect now"."""

from django.urls import path

from diagnostics import live_views

urlpatterns = [
    path("routers/<int:router_id>/collect/", live_views.collect_now, name="router-collect"),
]
