"""Roles of the console and the one place that decides what a user may do.

Three roles, as Django groups carrying permissions (made by `ensure_roles` after every
migrate): a *viewer* sees everything read-only, an *operator* may also act on routers
(collect now, triage, actions, live tails), an *admin* may also administer the console (the
admin site, the job queues at /rq/, the audit log, roles). Every active signed-in user is at
least a viewer; superusers hold every role.

`allowed(user, capability, target=...)` is the only permission check of the console: views
declare theirs with `@requires(...)`, consumers with `required_capability`, the admin site and
/rq/ call it too. Views and sockets pass their URL arguments as `target`, so restricting a
user to CloudStack domains or zones later is a change to `allowed`, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase, JsonResponse

VIEWER = "viewer"
OPERATOR = "operator"
ADMIN = "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)


class Capability(StrEnum):
    """What a view, a socket or a page part needs."""

    PUBLIC = "public"  # no sign-in at all (the login page, /metrics with its own token)
    VIEW = "view"
    OPERATE = "operate"
    ADMINISTER = "administer"
    SUPERUSER = "superuser"  # the job queues (/rq/): enqueue, requeue and stop any job


# The permissions behind the capabilities (declared on diagnostics.Collection's Meta).
PERMISSIONS: dict[Capability, str] = {
    Capability.OPERATE: "diagnostics.operate_routers",
    Capability.ADMINISTER: "diagnostics.administer_console",
}
# Which role's group holds which capability permissions (an admin is an operator too).
ROLE_CAPABILITIES: dict[str, tuple[Capability, ...]] = {
    VIEWER: (),
    OPERATOR: (Capability.OPERATE,),
    ADMIN: (Capability.OPERATE, Capability.ADMINISTER),
}
REFUSED = {
    Capability.VIEW: "Sign in to see this.",
    Capability.OPERATE: "Only operators can do this.",
    Capability.ADMINISTER: "Only console admins can do this.",
    Capability.SUPERUSER: "Only superusers can manage the job queues.",
}

User = AbstractUser | AnonymousUser


def allowed(user: User | None, capability: Capability, *, target: Mapping[str, Any] | None = None) -> bool:
    """True when `user` may do what `capability` names, on `target` when one is concerned.

    `target` is what the request is about, as its route names it (`router_id`, `uuid`, `pk`:
    the view's or the socket's URL arguments). Every role is cloud-wide today, so it is not
    read yet; restricting users to CloudStack domains or zones resolves it here, and nowhere else.
    """
    if capability is Capability.PUBLIC:
        return True
    if user is None or not user.is_authenticated or not getattr(user, "is_active", False):
        return False
    if capability is Capability.VIEW or getattr(user, "is_superuser", False):
        return True
    if capability is Capability.SUPERUSER:
        return False
    return bool(user.has_perm(PERMISSIONS[capability]))


def is_operator(user: User | None) -> bool:
    """True when the user may run actions and open live tails."""
    return allowed(user, Capability.OPERATE)


def is_console_admin(user: User | None) -> bool:
    """True when the user may administer the console (admin site, /rq/, audit log)."""
    return allowed(user, Capability.ADMINISTER)


def role_of(user: User | None) -> str:
    """The highest role the user holds, for pages and the audit log ("" when signed out)."""
    if is_console_admin(user):
        return ADMIN
    if is_operator(user):
        return OPERATOR
    return VIEWER if allowed(user, Capability.VIEW) else ""


View = TypeVar("View", bound=Callable[..., HttpResponseBase])


def _wants_json(request: HttpRequest) -> bool:
    return (
        request.method != "GET"
        or request.path.endswith(".json")
        or "application/json" in request.headers.get("Accept", "")
    )


def requires(
    capability: Capability,
    *,
    post: Capability | None = None,
    message: str = "",
    audit: str = "access.refused",
) -> Callable[[View], View]:
    """Declare and enforce what a view needs; `post` is what a POST to it needs, when more.

    A signed-out visitor never gets here (LoginRequiredMiddleware sends them to the login
    page); a signed-in user without the capability gets 403 (JSON for scripts, the 403 page
    for a browser, `message` or the capability's own words) and the refusal is audited as
    `audit`. The capability is kept on the view (`required_capability`) so that the
    permission test can find a view that declares none.
    """

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            needed = post if post is not None and request.method == "POST" else capability
            if not allowed(request.user, needed, target=kwargs):
                text = message or REFUSED.get(needed, "Forbidden.")
                _audit_refusal(request, audit, needed)
                if _wants_json(request):
                    return JsonResponse({"error": text}, status=403)
                raise PermissionDenied(text)
            return view(request, *args, **kwargs)

        wrapped.required_capability = capability  # type: ignore[attr-defined]
        wrapped.required_post_capability = post or capability  # type: ignore[attr-defined]
        if capability is Capability.PUBLIC:
            wrapped.login_required = False  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorate


def _audit_refusal(request: HttpRequest, action: str, needed: Capability) -> None:
    from vrconsole.models import AuditEntry

    AuditEntry.record(
        action,
        user=request.user,
        target=request.path[:255],
        detail=f"{request.method} {request.path}: needs {needed.value}",
        outcome="forbidden",
    )


def ensure_roles(**kwargs: Any) -> None:
    """Create the three role groups with their permissions (idempotent; run after every migrate)."""
    from django.contrib.auth.models import Group, Permission

    for role, capabilities in ROLE_CAPABILITIES.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for capability in capabilities:
            app_label, codename = PERMISSIONS[capability].split(".")
            permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if permission is not None:
                wanted.append(permission)
        if role == ADMIN:
            # Admins manage users and roles and read everything in the admin site.
            wanted.extend(
                Permission.objects.filter(content_type__app_label="auth").exclude(codename__startswith="delete_")
            )
            wanted.extend(Permission.objects.filter(codename__startswith="view_"))
        group.permissions.add(*wanted)
