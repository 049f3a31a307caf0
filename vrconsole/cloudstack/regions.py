"""Which CloudStack regions the console syncs, and with which credentials.

Two sources, as operators already have them: the environment (CLOUDSTACK_URL,
CLOUDSTACK_API_KEY, CLOUDSTACK_SECRET_KEY, named by CLOUDSTACK_REGION), or a cs-style ini
file (CLOUDSTACK_CONFIG) with one section per region holding `endpoint`, `key`, `secret` and
optionally `timeout` and `verify`/`dangerous_no_tls_verify`. Credentials live only in these
objects in memory; their repr hides the secret so a traceback never prints it.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_REGION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class RegionConfig:
    """Endpoint and credentials of one region."""

    name: str
    endpoint: str
    key: str = field(repr=False)
    secret: str = field(repr=False)
    timeout: int = 30
    verify_tls: bool = True

    def __repr__(self) -> str:
        return f"RegionConfig(name={self.name!r}, endpoint={self.endpoint!r})"


def _check(name: str, endpoint: str, key: str, secret: str, origin: str) -> None:
    if not _REGION_NAME.match(name):
        raise ImproperlyConfigured(f"{origin}: region name {name!r} must be letters, digits, '.', '_' or '-'")
    parsed = urlparse(endpoint)
    if parsed.scheme not in {"http", "https"} or not parsed.hostname:
        raise ImproperlyConfigured(
            f"{origin}: endpoint {endpoint!r} of region {name!r} must be an http(s) URL such as "
            "https://cloud.example.com/client/api"
        )
    if not key or not secret:
        raise ImproperlyConfigured(f"{origin}: region {name!r} needs both an API key and a secret key")


def _parse_bool(value: str, origin: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{origin}: expected true or false, got {value!r}")


def regions_from_ini(path: str | Path, default_timeout: int = 30) -> list[RegionConfig]:
    """Read a cs-style ini file: one section per region."""
    origin = f"CLOUDSTACK_CONFIG={str(path)!r}"
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        raise ImproperlyConfigured(f"{origin}: no such file") from None
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise ImproperlyConfigured(f"{origin}: not a valid ini file ({exc})") from None
    regions = []
    for section in parser.sections():
        values = parser[section]
        where = f"{origin} [{section}]"
        endpoint = values.get("endpoint", "").strip()
        key = values.get("key", "").strip()
        secret = values.get("secret", "").strip()
        _check(section, endpoint, key, secret, where)
        try:
            timeout = int(values.get("timeout", str(default_timeout)))
        except ValueError:
            raise ImproperlyConfigured(f"{where}: timeout must be a whole number of seconds") from None
        if not 1 <= timeout <= 600:
            raise ImproperlyConfigured(f"{where}: timeout must be between 1 and 600 seconds")
        verify = True
        if "verify" in values:
            verify = _parse_bool(values["verify"], f"{where} verify")
        if "dangerous_no_tls_verify" in values:
            verify = not _parse_bool(values["dangerous_no_tls_verify"], f"{where} dangerous_no_tls_verify")
        regions.append(RegionConfig(section, endpoint, key, secret, timeout, verify))
    if not regions:
        raise ImproperlyConfigured(f"{origin}: the file has no region sections")
    return regions


def configured_regions() -> list[RegionConfig]:
    """Every region the settings name, in a stable order."""
    if settings.CLOUDSTACK_CONFIG:
        return regions_from_ini(settings.CLOUDSTACK_CONFIG, settings.CLOUDSTACK_TIMEOUT)
    if settings.CLOUDSTACK_URL:
        region = RegionConfig(
            settings.CLOUDSTACK_REGION,
            settings.CLOUDSTACK_URL,
            settings.CLOUDSTACK_API_KEY,
            settings.CLOUDSTACK_SECRET_KEY,
            settings.CLOUDSTACK_TIMEOUT,
            settings.CLOUDSTACK_VERIFY_TLS,
        )
        _check(region.name, region.endpoint, region.key, region.secret, "CLOUDSTACK_URL")
        return [region]
    return []


def region_config(name: str) -> RegionConfig:
    """The configured region of that name; a clear error when there is none."""
    regions = configured_regions()
    for region in regions:
        if region.name == name:
            return region
    known = ", ".join(r.name for r in regions) or "none (set CLOUDSTACK_URL or CLOUDSTACK_CONFIG)"
    raise ImproperlyConfigured(f"no CloudStack region named {name!r}; configured regions: {known}")
