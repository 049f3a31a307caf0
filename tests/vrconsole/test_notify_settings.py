"""The notification settings refuse malformed values, and never repeat a webhook URL (it may carry a token)."""

from __future__ import annotations

import pytest

from tests.vrconsole.test_settings import _import_settings


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NOTIFY_WEBHOOKS": "https://ok.example.org/h,ftp://x/h"}, "NOTIFY_WEBHOOKS: entry 2 is not an http(s) URL"),
        ({"NOTIFY_WEBHOOKS": "slack+mailto:ops"}, "NOTIFY_WEBHOOKS: entry 1 is not an http(s) URL"),
        ({"NOTIFY_EMAILS": "ops@example.org,not-an-address"}, "NOTIFY_EMAILS: 'not-an-address' is not an e-mail"),
        ({"EMAIL_URL": "pop3://mail.example.org"}, "EMAIL_URL: scheme 'pop3'"),
        ({"CONSOLE_URL": "console.example.org"}, "CONSOLE_URL='console.example.org': expected a URL"),
        ({"NOTIFY_RETRY_SECONDS": "30,soon"}, "NOTIFY_RETRY_SECONDS='30,soon': expected whole seconds"),
        ({"NOTIFY_RETRY_SECONDS": "30,-1"}, "none negative"),
        ({"NOTIFY_FLAP_COUNT": "1"}, "NOTIFY_FLAP_COUNT='1': must be at least 2"),
        ({"NOTIFY_REMINDER_SECONDS": "-5"}, "NOTIFY_REMINDER_SECONDS='-5': must be at least 0"),
    ],
)
def test_a_malformed_notification_setting_stops_start_up(env: dict[str, str], message: str) -> None:
    result = _import_settings(**env)
    assert result.returncode != 0
    assert message in result.stderr


def test_a_bad_webhook_entry_is_named_by_position_not_by_its_url() -> None:
    result = _import_settings(NOTIFY_WEBHOOKS="gopher://hooks.example.org/T0K3N")
    assert result.returncode != 0
    assert "T0K3N" not in result.stderr


def test_good_notification_settings_import_cleanly() -> None:
    result = _import_settings(
        NOTIFY_WEBHOOKS="https://hooks.example.org/a, slack+https://chat.example.org/hooks/b",
        NOTIFY_EMAILS="ops@example.org",
        EMAIL_URL="smtp+tls://user:pw@mail.example.org:587",
        CONSOLE_URL="https://console.example.org/",
        NOTIFY_RETRY_SECONDS="10,60",
    )
    assert result.returncode == 0, result.stderr
