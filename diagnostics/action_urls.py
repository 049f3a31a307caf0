"""URL routes of the router page's actions: start one, the routers' offerings, read CloudStack's record."""

from django.urls import path

from diagnostics import action_views

urlpatterns = [
    path("routers/<int:router_id>/actions/", action_views.start_action, name="router-action"),
    path("routers/<int:router_id>/actions/offerings.json", action_views.router_offerings, name="router-offerings"),
    path("routers/<int:router_id>/failure-evidence/", action_views.failure_evidence, name="router-failure-evidence"),
]
