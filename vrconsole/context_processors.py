"""Template context shared by every page."""

from __future__ import annotations

from django.http import HttpRequest

from vrconsole.roles import is_operator


def console(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    return {"user_is_operator": bool(user is not None and is_operator(user))}
