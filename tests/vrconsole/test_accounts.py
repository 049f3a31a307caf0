"""Sign-in and the audit log: throttling per username and per address, what is audited, append-only, export."""

from __future__ import annotations

import uuid
from typing import Any

import django_rq
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from redis import exceptions as redis_exceptions

from vrconsole import accounts
from vrconsole.models import AuditEntry
from vrconsole.roles import ADMIN, OPERATOR

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-enough-password-1"


@pytest.fixture(autouse=True)
def no_failures_left(settings: Any) -> Any:
    """Counts are per username and address: every test uses its own, and leaves none behind."""
    settings.LOGIN_THROTTLE_FAILURES = 3
    settings.LOGIN_THROTTLE_ADDRESS_FAILURES = 5
    redis = django_rq.get_connection("default")
    yield
    for key in redis.scan_iter("vrconsole:login-failures:*"):
        redis.delete(key)
    accounts._local.clear()


def _redis_away(monkeypatch: Any) -> None:
    """Every Redis call of the throttle fails as an outage does."""

    def unreachable() -> Any:
        raise redis_exceptions.ConnectionError("Connection refused")

    monkeypatch.setattr(accounts, "_redis", unreachable)


def _name() -> str:
    return f"noc-{uuid.uuid4().hex[:8]}"


def _address() -> str:
    return f"198.51.100.{uuid.uuid4().int % 250 + 1}"


def _login(username: str, password: str, address: str, path: str = "/login/") -> Any:
    return Client(REMOTE_ADDR=address).post(path, {"username": username, "password": password})


def test_a_good_sign_in_is_audited_with_the_address() -> None:
    name, address = _name(), _address()
    get_user_model().objects.create_user(name, password=PASSWORD)
    response = _login(name, PASSWORD, address)
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="login", username=name)
    assert address in entry.detail and entry.outcome == "ok"
    assert PASSWORD not in entry.detail


def test_a_failed_sign_in_is_audited_without_the_password() -> None:
    name, address = _name(), _address()
    get_user_model().objects.create_user(name, password=PASSWORD)
    response = _login(name, "wrong-password-typed", address)
    assert response.status_code == 200
    assert "Wrong username or password" in response.content.decode()
    entry = AuditEntry.objects.get(action="login.failed", target=name)
    assert entry.outcome == "refused" and "wrong-password-typed" not in str(entry.__dict__)


def test_a_username_is_throttled_after_its_failures_even_with_the_right_password() -> None:
    name = _name()
    get_user_model().objects.create_user(name, password=PASSWORD)
    for _ in range(3):
        _login(name, "wrong-password-typed", _address())
    response = _login(name, PASSWORD, _address())
    assert response.status_code == 200 and "Too many failed sign-ins" in response.content.decode()
    assert AuditEntry.objects.filter(action="login.throttled", target=name).exists()
    assert not AuditEntry.objects.filter(action="login", username=name).exists()


def test_an_address_is_throttled_across_usernames() -> None:
    address = _address()
    for _ in range(5):
        _login(_name(), "wrong-password-typed", address)
    name = _name()
    get_user_model().objects.create_user(name, password=PASSWORD)
    response = _login(name, PASSWORD, address)
    assert "Too many failed sign-ins" in response.content.decode()
    assert _login(name, PASSWORD, _address()).status_code == 302


def test_the_admin_login_is_throttled_too() -> None:
    name = _name()
    get_user_model().objects.create_superuser(name, password=PASSWORD)
    for _ in range(3):
        _login(name, "wrong-password-typed", _address(), "/admin/login/")
    response = _login(name, PASSWORD, _address(), "/admin/login/")
    assert response.status_code == 200 and "Too many failed sign-ins" in response.content.decode()


def test_the_throttle_holds_in_the_process_while_redis_is_away(monkeypatch: Any) -> None:
    _redis_away(monkeypatch)
    name, other = _name(), _name()
    get_user_model().objects.create_user(name, password=PASSWORD)
    get_user_model().objects.create_user(other, password=PASSWORD)
    for _ in range(3):
        _login(name, "wrong-password-typed", _address())
    response = _login(name, PASSWORD, _address())
    assert "Too many failed sign-ins" in response.content.decode()
    # The outage locks nobody out who has not failed.
    assert _login(other, PASSWORD, _address()).status_code == 302


def test_failures_counted_during_an_outage_count_once_redis_is_back(monkeypatch: Any) -> None:
    name = _name()
    get_user_model().objects.create_user(name, password=PASSWORD)
    with monkeypatch.context() as outage:
        _redis_away(outage)
        for _ in range(2):
            _login(name, "wrong-password-typed", _address())
    _login(name, "wrong-password-typed", _address())  # counted in Redis: 1 there, 2 here
    response = _login(name, PASSWORD, _address())
    assert "Too many failed sign-ins" in response.content.decode()


def test_a_good_sign_in_clears_the_process_count_too(monkeypatch: Any) -> None:
    _redis_away(monkeypatch)
    name = _name()
    get_user_model().objects.create_user(name, password=PASSWORD)
    for _ in range(2):
        _login(name, "wrong-password-typed", _address())
    assert _login(name, PASSWORD, _address()).status_code == 302
    for _ in range(2):
        _login(name, "wrong-password-typed", _address())
    assert _login(name, PASSWORD, _address()).status_code == 302


def test_the_process_count_is_bounded_and_expires(monkeypatch: Any) -> None:
    counts = accounts._LocalFailures()
    monkeypatch.setattr(counts, "MAX_KEYS", 3)
    for key in ("a", "b", "c", "d"):
        counts.incr(key, window=60)
    assert counts.get("a") == 0 and counts.get("d") == 1  # the oldest went first
    counts.incr("d", window=60)
    assert counts.get("d") == 2
    counts.incr("e", window=-1)  # a window already over
    assert counts.get("e") == 0


def test_an_admin_role_without_the_staff_flag_signs_in_to_the_admin() -> None:
    name = _name()
    user = get_user_model().objects.create_user(name, password=PASSWORD)
    user.groups.add(Group.objects.get(name=ADMIN))
    response = _login(name, PASSWORD, _address(), "/admin/login/")
    assert response.status_code == 302


def test_sign_out_is_audited() -> None:
    user = get_user_model().objects.create_user(_name(), password=PASSWORD)
    client = Client()
    client.force_login(user)
    assert client.post("/logout/").status_code == 302
    assert AuditEntry.objects.filter(action="logout", username=user.username).exists()
    assert client.get("/logout/").status_code in {302, 405}


def test_role_changes_are_audited() -> None:
    user = get_user_model().objects.create_user(_name(), password=PASSWORD)
    user.groups.add(Group.objects.get(name=OPERATOR))
    user.groups.remove(Group.objects.get(name=OPERATOR))
    details = list(
        AuditEntry.objects.filter(action="role.changed", target=user.username).values_list("detail", flat=True)
    )
    assert sorted(details) == ["granted: operator", "revoked: operator"]


def test_the_audit_log_is_append_only() -> None:
    entry = AuditEntry.record("test.append-only", detail="as written")
    entry.detail = "rewritten"
    with pytest.raises(PermissionDenied):
        entry.save()
    with pytest.raises(PermissionDenied):
        AuditEntry.objects.filter(pk=entry.pk).update(detail="rewritten")
    with pytest.raises(PermissionDenied):
        entry.delete()
    assert AuditEntry.objects.get(pk=entry.pk).detail == "as written"


def test_the_admin_shows_audit_entries_read_only_and_exports_them_as_filtered() -> None:
    admin = get_user_model().objects.create_superuser(_name(), password=PASSWORD)
    AuditEntry.record("collect.requested", target="r-1-VM", detail="collection 1 queued")
    AuditEntry.record("action.requested", target="r-2-VM", detail="reboot")
    entry = AuditEntry.objects.get(target="r-1-VM")
    client = Client()
    client.force_login(admin)
    page = client.get(f"/admin/vrconsole/auditentry/{entry.pk}/change/")
    assert page.status_code == 200 and 'name="detail"' not in page.content.decode()
    assert client.post(f"/admin/vrconsole/auditentry/{entry.pk}/delete/").status_code == 403
    listing = client.get("/admin/vrconsole/auditentry/?q=r-1-VM")
    assert "Export CSV" in listing.content.decode()
    export = client.get("/admin/vrconsole/auditentry/export.csv?q=r-1-VM")
    body = b"".join(export.streaming_content).decode()
    assert export["Content-Type"].startswith("text/csv")
    assert "collection 1 queued" in body and "reboot" not in body
    assert body.splitlines()[0] == "at,username,action,target,router_id,outcome,detail"


def test_probe_results_are_read_only_in_the_admin() -> None:
    from diagnostics.models import Collection, ProbeResult
    from tests.vrconsole.router_factory import make_region, make_router, make_zone

    admin = get_user_model().objects.create_superuser(_name(), password=PASSWORD)
    collection = Collection.objects.create(router=make_router(make_zone(make_region()), name="r-3-VM"))
    result = ProbeResult.objects.create(collection=collection, name="config", stdout="auth_pass <redacted>")
    client = Client()
    client.force_login(admin)
    page = client.get(f"/admin/diagnostics/proberesult/{result.pk}/change/")
    assert page.status_code == 200 and '<textarea name="stdout"' not in page.content.decode()
    client.post(f"/admin/diagnostics/proberesult/{result.pk}/change/", {"stdout": "edited", "name": "config"})
    result.refresh_from_db()
    assert result.stdout == "auth_pass <redacted>"


@pytest.mark.parametrize("password", ["1234567890123", "noc-operator-jdoe"])
def test_weak_passwords_are_refused(password: str) -> None:
    user = get_user_model()(username="noc-operator-jdoe", email="jdoe@example.org")
    with pytest.raises(ValidationError):
        validate_password(password, user)


def test_every_response_carries_the_content_security_policy(client: Client) -> None:
    response = client.get("/login/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "<script>" not in response.content.decode()


def test_an_admin_s_changes_of_flags_and_roles_are_audited_under_the_admin_s_name() -> None:
    admin = get_user_model().objects.create_superuser(_name(), password=PASSWORD)
    target = get_user_model().objects.create_user(_name(), password=PASSWORD)
    client = Client()
    client.force_login(admin)
    page = client.get(f"/admin/auth/user/{target.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    data.update(
        {
            "username": target.username,
            "is_active": "",
            "groups": [str(Group.objects.get(name=OPERATOR).pk)],
            "date_joined_0": target.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": target.date_joined.strftime("%H:%M:%S"),
            "user_permissions": [],
        }
    )
    data = {k: v for k, v in data.items() if k not in {"is_staff", "is_superuser", "date_joined", "last_login"}}
    response = client.post(f"/admin/auth/user/{target.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[-3000:]
    entry = AuditEntry.objects.get(action="account.changed", target=target.username)
    assert entry.username == admin.username
    assert "is_active: False" in entry.detail and "groups: operator" in entry.detail
