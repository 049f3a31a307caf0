"""Region configuration from the environment or a cs-style ini file."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from vrconsole.cloudstack.regions import configured_regions, region_config, regions_from_ini


def test_it_reads_one_region_from_the_environment(settings) -> None:
    settings.CLOUDSTACK_CONFIG = None
    settings.CLOUDSTACK_URL = "https://cloud.example/client/api"
    settings.CLOUDSTACK_API_KEY = "key"
    settings.CLOUDSTACK_SECRET_KEY = "secret"
    settings.CLOUDSTACK_REGION = "prod-eu"
    [region] = configured_regions()
    assert (region.name, region.endpoint, region.key, region.secret) == (
        "prod-eu",
        "https://cloud.example/client/api",
        "key",
        "secret",
    )


def test_it_reads_every_section_of_a_cs_ini_file(tmp_path: Path) -> None:
    ini = tmp_path / "cloudstack.ini"
    ini.write_text(
        "[prod-eu]\nendpoint = https://eu.example/client/api\nkey = k1\nsecret = s1\ntimeout = 20\n\n"
        "[prod-us]\nendpoint = https://us.example/client/api\nkey = k2\nsecret = s2\n"
        "dangerous_no_tls_verify = true\n"
    )
    eu, us = regions_from_ini(ini)
    assert (eu.name, eu.timeout, eu.verify_tls) == ("prod-eu", 20, True)
    assert (us.name, us.verify_tls) == ("prod-us", False)


def test_the_secret_never_appears_in_the_repr(tmp_path: Path) -> None:
    ini = tmp_path / "cloudstack.ini"
    ini.write_text("[r]\nendpoint = https://x.example/client/api\nkey = public-key\nsecret = very-secret\n")
    [region] = regions_from_ini(ini)
    assert "very-secret" not in repr(region)
    assert "very-secret" not in str(region)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[r]\nendpoint = not a url\nkey = k\nsecret = s\n", "must be an http(s) URL"),
        ("[r]\nendpoint = https://x.example/client/api\nkey = k\n", "needs both an API key and a secret key"),
        ("[r]\nendpoint = https://x.example/client/api\nkey = k\nsecret = s\ntimeout = soon\n", "timeout must be"),
        ("no sections here\n", "not a valid ini file"),
        ("", "has no region sections"),
        ("[bad name!]\nendpoint = https://x.example/client/api\nkey = k\nsecret = s\n", "region name"),
    ],
)
def test_it_refuses_a_malformed_ini_file(tmp_path: Path, content: str, message: str) -> None:
    ini = tmp_path / "cloudstack.ini"
    ini.write_text(content)
    with pytest.raises(ImproperlyConfigured, match=message.replace("(", r"\(").replace(")", r"\)")):
        regions_from_ini(ini)


def test_a_missing_ini_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ImproperlyConfigured, match="no such file"):
        regions_from_ini(tmp_path / "absent.ini")


def test_an_unknown_region_lists_the_known_ones(settings) -> None:
    settings.CLOUDSTACK_CONFIG = None
    settings.CLOUDSTACK_URL = "https://cloud.example/client/api"
    settings.CLOUDSTACK_API_KEY = "key"
    settings.CLOUDSTACK_SECRET_KEY = "secret"
    settings.CLOUDSTACK_REGION = "prod-eu"
    with pytest.raises(ImproperlyConfigured, match="configured regions: prod-eu"):
        region_config("prod-us")
