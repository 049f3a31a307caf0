"""Tests of the create_admin management command."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

pytestmark = pytest.mark.django_db

STRONG = "correct-horse-battery-staple-42"


def test_it_creates_a_superuser():
    call_command("create_admin", "--username", "ops", "--email", "ops@example.org", "--password", STRONG)
    user = get_user_model().objects.get(username="ops")
    assert user.is_superuser and user.is_staff and user.is_active
    assert user.email == "ops@example.org"
    assert user.check_password(STRONG)


def test_it_reads_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("VRCONSOLE_ADMIN_PASSWORD", STRONG)
    call_command("create_admin", "--username", "ops")
    assert get_user_model().objects.get(username="ops").check_password(STRONG)


def test_it_prefers_the_option_over_the_environment(monkeypatch):
    monkeypatch.setenv("VRCONSOLE_ADMIN_PASSWORD", "another-long-password-77")
    call_command("create_admin", "--username", "ops", "--password", STRONG)
    assert get_user_model().objects.get(username="ops").check_password(STRONG)


@pytest.mark.parametrize("weak", ["short1", "password123"])
def test_it_refuses_a_weak_password(weak):
    with pytest.raises(CommandError, match="Password refused"):
        call_command("create_admin", "--username", "ops", "--password", weak)
    assert not get_user_model().objects.filter(username="ops").exists()


def test_it_refuses_to_create_a_user_without_a_password(monkeypatch):
    monkeypatch.delenv("VRCONSOLE_ADMIN_PASSWORD", raising=False)
    with pytest.raises(CommandError, match="No password"):
        call_command("create_admin", "--username", "ops")


def test_it_is_idempotent(capsys):
    call_command("create_admin", "--username", "ops", "--password", STRONG)
    call_command("create_admin", "--username", "ops", "--password", STRONG)
    assert get_user_model().objects.filter(username="ops").count() == 1
    assert "already exists with these settings" in capsys.readouterr().out


def test_it_promotes_and_updates_an_existing_user():
    get_user_model().objects.create_user("ops", password="old-password-that-is-long")
    call_command("create_admin", "--username", "ops", "--password", STRONG)
    user = get_user_model().objects.get(username="ops")
    assert user.is_superuser and user.check_password(STRONG)
