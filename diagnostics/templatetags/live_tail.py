"""Template tag of the router page's live tail: the logs it offers and where its sockets are.

The partial puts these in data-* attributes, so static/js/tail.js carries no URL of its own.
The logs offered are the router's (its last collection says which it has); on a redundant
router the peer's offered logs are given too, for the side-by-side view of the pair.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings

from diagnostics.routing import tail_socket_base
from diagnostics.tails.sources import offered_sources
from vrconsole.models import Router

register = template.Library()


@register.simple_tag
def live_tail_config(router: Router) -> dict[str, Any]:
    """Socket base path, offered logs, the redundant peer (if any) and the numbers the page states."""
    peer = router.redundant_peers().only("pk", "uuid", "name", "redundant_state").first()
    return {
        "socket_base": tail_socket_base(router.pk),
        "logs": [{"name": s.name, "label": s.label, "path": s.path_for(router.name)} for s in offered_sources(router)],
        "peer": (
            {
                "name": peer.name or peer.uuid,
                "redundant_state": peer.redundant_state or "UNKNOWN",
                "socket_base": tail_socket_base(peer.pk),
                "logs": " ".join(source.name for source in offered_sources(peer)),
            }
            if peer is not None
            else None
        ),
        "backfill": settings.TAIL_BACKFILL_LINES,
        "backlog": settings.TAIL_BACKLOG_LINES,
        "grace": round(settings.TAIL_GRACE_SECONDS),
    }
