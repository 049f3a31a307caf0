"""Roles of the console, as Django groups.

Viewers see everything read-only; operators may also run actions (sync now, collect,
triage) and open live tails. Superusers have every role.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser, AnonymousUser

OPERATOR = "operator"
VIEWER = "viewer"
ROLES = (OPERATOR, VIEWER)


def is_operator(user: AbstractUser | AnonymousUser) -> bool:
    """True when the user may run actions and open live tails."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name=OPERATOR).exists()
