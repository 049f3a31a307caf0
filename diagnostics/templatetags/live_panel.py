"""Template tag of the router page's live panel: the addresses and numbers its script needs.

The partial puts them in data-* attributes, so the script carries no URL of its own, and
states the cost of "Collect now" before the click from what past runs actually took.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

from diagnostics.jobs import collection_time_bound
from diagnostics.live_state import reason_labels, usual_collection_seconds
from diagnostics.routing import router_socket_path
from vrconsole.models import Router

register = template.Library()


@register.simple_tag
def live_panel_config(router: Router) -> dict[str, Any]:
    """Socket path, collect URL, usual and worst-case collection seconds, and failure reason labels."""
    return {
        "socket_path": router_socket_path(router.pk),
        "collect_url": reverse("router-collect", args=[router.pk]),
        "usual_seconds": usual_collection_seconds(router.pk),
        "worst_seconds": round(collection_time_bound()),
        "reasons": reason_labels(),
    }
