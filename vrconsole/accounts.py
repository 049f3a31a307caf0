"""Signing in and out: throttled login (console and admin alike) and the audit of accounts.

Failed sign-ins are counted in Redis per username and per client address over
LOGIN_THROTTLE_WINDOW_SECONDS; past LOGIN_THROTTLE_FAILURES (per username) or
LOGIN_THROTTLE_ADDRESS_FAILURES (per address) the form refuses before checking the password,
so guessing costs the attacker the window, not us a hash per guess. While Redis does not
answer, each web process counts on its own (and says so in the log): the throttle holds, per
process instead of shared, and an outage locks nobody out who has not failed.
Sign-ins, failed sign-ins, sign-outs and role changes are written to the audit log, never a
password.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import Group, User
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.views.decorators.http import require_POST

from vrconsole.models import AuditEntry
from vrconsole.roles import ROLES, Capability, requires

logger = logging.getLogger(__name__)

WRONG_CREDENTIALS = "Wrong username or password. Both are case-sensitive."
THROTTLED = "Too many failed sign-ins. Wait {minutes} minutes, then try again."


def client_address(request: HttpRequest | None) -> str:
    """The client's address as the server saw it (daphne --proxy-headers puts the real one there)."""
    return str((request.META.get("REMOTE_ADDR") if request is not None else "") or "unknown")


def _keys(username: str, address: str) -> tuple[str, str]:
    # Hashed: a username typed into the password field must not sit in Redis in clear.
    name = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return f"vrconsole:login-failures:user:{name}", f"vrconsole:login-failures:addr:{address}"


def _redis() -> Any:
    import django_rq

    return django_rq.get_connection("default")


class _LocalFailures:
    """Failures counted in this process while Redis does not answer, with the same keys and window.

    Bounded: past MAX_KEYS the oldest counts go first, so addresses sprayed at the form
    cannot grow the process. Thread-safe (the web server runs forms on worker threads).
    """

    MAX_KEYS = 10_000

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: OrderedDict[str, tuple[int, float]] = OrderedDict()  # key -> (failures, expires at)

    def get(self, key: str) -> int:
        with self.lock:
            count, expires = self.counts.get(key, (0, 0.0))
            return count if expires > time.monotonic() else 0

    def incr(self, key: str, window: float) -> None:
        now = time.monotonic()
        with self.lock:
            count, expires = self.counts.pop(key, (0, 0.0))
            if expires <= now:  # the window starts at the first failure, as Redis' EXPIRE NX
                count, expires = 0, now + window
            self.counts[key] = (count + 1, expires)
            while len(self.counts) > self.MAX_KEYS:
                self.counts.popitem(last=False)

    def delete(self, key: str) -> None:
        with self.lock:
            self.counts.pop(key, None)

    def clear(self) -> None:
        with self.lock:
            self.counts.clear()


_local = _LocalFailures()


def is_throttled(username: str, address: str) -> bool:
    """True once the username or the address used up its failures of the window.

    Failures counted in this process during a Redis outage add to the shared counts once Redis
    is back (until their window ends).
    """
    keys = _keys(username, address)
    by_user, by_address = (_local.get(key) for key in keys)
    try:
        shared = _redis().mget(list(keys))
    except Exception as exc:
        logger.warning("login throttle: Redis unavailable (%s), counting in this process", type(exc).__name__)
    else:
        by_user, by_address = by_user + int(shared[0] or 0), by_address + int(shared[1] or 0)
    return by_user >= settings.LOGIN_THROTTLE_FAILURES or by_address >= settings.LOGIN_THROTTLE_ADDRESS_FAILURES


def count_failure(username: str, address: str) -> None:
    window = settings.LOGIN_THROTTLE_WINDOW_SECONDS
    keys = _keys(username, address)
    try:
        pipe = _redis().pipeline()
        for key in keys:
            pipe.incr(key)
            pipe.expire(key, window, nx=True)
        pipe.execute()
    except Exception as exc:
        logger.warning("login throttle: Redis unavailable (%s), failure counted in this process", type(exc).__name__)
        for key in keys:
            _local.incr(key, window)


def clear_failures(username: str) -> None:
    key = _keys(username, "")[0]
    _local.delete(key)
    try:
        _redis().delete(key)
    except Exception as exc:
        logger.warning("login throttle could not reset a count (Redis: %s)", type(exc).__name__)


class ThrottledLoginMixin:
    """The throttle and the audit around AuthenticationForm.clean (the console's and the admin's)."""

    request: HttpRequest | None
    cleaned_data: dict[str, Any]

    def clean(self) -> dict[str, Any]:
        username = str(self.cleaned_data.get("username") or "")
        address = client_address(self.request)
        if is_throttled(username, address):
            AuditEntry.record("login.throttled", target=username[:150], detail=f"from {address}", outcome="refused")
            minutes = max(1, settings.LOGIN_THROTTLE_WINDOW_SECONDS // 60)
            raise ValidationError(THROTTLED.format(minutes=minutes), code="throttled")
        try:
            cleaned = super().clean()  # type: ignore[misc]
        except ValidationError:
            count_failure(username, address)
            AuditEntry.record("login.failed", target=username[:150], detail=f"from {address}", outcome="refused")
            raise
        clear_failures(username)
        return cleaned


class ConsoleLoginForm(ThrottledLoginMixin, AuthenticationForm):
    error_messages = {**AuthenticationForm.error_messages, "invalid_login": WRONG_CREDENTIALS}


class ConsoleLoginView(LoginView):
    template_name = "registration/login.html"
    form_class = ConsoleLoginForm

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)
        AuditEntry.record("login", user=form.get_user(), detail=f"from {client_address(self.request)}", outcome="ok")
        return response


login_view = requires(Capability.PUBLIC)(ConsoleLoginView.as_view())


@requires(Capability.PUBLIC)
@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    """Sign out (POST only, as Django's LogoutView); the sign-out is audited."""
    if request.user.is_authenticated:
        AuditEntry.record("logout", user=request.user, detail=f"from {client_address(request)}", outcome="ok")
    logout(request)
    return HttpResponseRedirect(resolve_url(settings.LOGOUT_REDIRECT_URL))


def audit_role_change(sender: Any, instance: Any, action: str, pk_set: set[int] | None, **kwargs: Any) -> None:
    """A user's groups changed (admin, shell, command): one audit entry per change of a role."""
    if action not in {"post_add", "post_remove", "post_clear"} or not isinstance(instance, User):
        return
    if action == "post_clear":
        names = "all groups"
    else:
        names = ", ".join(sorted(Group.objects.filter(pk__in=pk_set or set()).values_list("name", flat=True)))
        if not any(name in ROLES for name in names.split(", ")):
            return
    verb = {"post_add": "granted", "post_remove": "revoked", "post_clear": "revoked"}[action]
    AuditEntry.record("role.changed", target=instance.get_username(), detail=f"{verb}: {names}", outcome=verb)
