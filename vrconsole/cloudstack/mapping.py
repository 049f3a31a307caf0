"""From CloudStack API items to the field values of our inventory rows.

Pure functions, no database: each takes one item as the API returned it and gives the
values the sync writes. The API is treated as untrusted input — absent fields mean null,
strings are trimmed to the column size, IP fields that are not IPs become null, dates that
do not parse become null — so odd data costs one field, never the sync. MASTER (before
4.16) is stored as PRIMARY, and the health-check verdict is computed from the results
because listRouters' `healthchecksfailed` flag is unreliable (apache/cloudstack#12630).
"""

from __future__ import annotations

import ipaddress
import socket
from datetime import datetime
from typing import Any

import xxhash

from vrconsole.fields import dumps

_DATE_FORMATS = ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z")


def digest(item: dict[str, Any]) -> str:
    """A short fingerprint of a parsed API item, to skip writing rows whose item did not change.

    The fingerprint (digest_text) of its JSON text as the console writes JSON (fields.dumps:
    orjson, json for what orjson refuses); the same answer from the API gives the same bytes.
    A fingerprint that changes spuriously (another library version, another key order) only
    costs one rewrite of the row.
    """
    return digest_text(dumps(item).encode())


def digest_text(text: Any) -> str:
    """A short fingerprint of an item's JSON text (bytes or any buffer), to skip unchanged rows.

    XXH3-128 hashes a 5 KB router item in a tenth of a microsecond (SHA-1 takes 2.7), and a
    sync fingerprints every item of every page (some 25,000 for 10,000 routers). It detects
    change, it does not authenticate: the worst a contrived collision could do is keep a row
    one sync late. The sync fingerprints the item's text as the API wrote it (a ListedItem's);
    the same item parsed and written back as JSON (digest) may differ in spacing or escapes,
    which costs one rewrite of the row when the two meet.
    """
    return xxhash.xxh3_128_hexdigest(text)


def text(value: Any, max_length: int = 255) -> str:
    """A string for a CharField: None and non-scalars become '', NULs go, long values are cut."""
    if type(value) is str and "\x00" not in value:
        # The common case, hot in the sync (a million calls for 10,000 routers).
        return value.strip()[:max_length]
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value).replace("\x00", "").strip()[:max_length]


def item_id(item: dict[str, Any]) -> str:
    """The `id` of an API item as stored (a uuid); '' when it has none."""
    return uuid_text(item.get("id"))


def uuid_text(value: Any) -> str:
    """An item's `id` value as stored (a uuid); '' for none. Hot in the sync loop."""
    if type(value) is str and 0 < len(value) <= 64 and "\x00" not in value and not value[0].isspace():
        return value.rstrip()
    return text(value, 64)


def ip(value: Any) -> str | None:
    """A canonical IP address, or None for anything else (including '' and 'N/A').

    A dotted quad goes through the C parser (a router item has half a dozen addresses, a
    sync hundreds of thousands): inet_pton takes exactly four decimal octets without leading
    zeros, which is the canonical form, so the text is returned as it is. Anything else
    (IPv6, odd spellings) goes through ipaddress.
    """
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value:
        return None
    try:
        socket.inet_pton(socket.AF_INET, value)
        return value
    except OSError:
        pass
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def boolean(value: Any) -> bool | None:
    """The API sends booleans, but older versions and proxies sometimes send strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered == "true":
            return True
        if lowered == "false":
            return False
    return None


def integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def date(value: Any) -> datetime | None:
    """CloudStack dates look like 2025-03-06T14:21:10+0000.

    That exact shape goes through fromisoformat, twenty times faster than strptime (a first
    sync parses one per router); anything else through the two strptime formats, so what is
    accepted stays what they accept: nothing without a UTC offset.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) == 24 and text[10] == "T" and text[19] in "+-" and text[20:].isdigit():
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            return None
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def redundant_state(value: Any) -> str:
    """PRIMARY, BACKUP, FAULT or UNKNOWN; MASTER was renamed PRIMARY in 4.16."""
    state = text(value, 16).upper()
    if state == "MASTER":
        return "PRIMARY"
    return state


def health_checks(value: Any) -> list[dict[str, Any]]:
    """The results as a list of {checkname, checktype, success, lastupdated, details}."""
    if not isinstance(value, list):
        return []
    checks = []
    for item in value:
        if not isinstance(item, dict):
            continue
        checks.append(
            {
                "checkname": text(item.get("checkname"), 128),
                "checktype": text(item.get("checktype"), 32),
                "success": boolean(item.get("success")),
                "lastupdated": text(item.get("lastupdated"), 40),
                "details": text(item.get("details"), 4000),
            }
        )
    return checks


def zone_fields(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": text(item.get("name")),
        "network_type": text(item.get("networktype"), 32),
        "allocation_state": text(item.get("allocationstate"), 32),
    }


def system_templates_by_zone(templates: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """listTemplates templatefilter=system items, reduced and grouped by zone id."""
    by_zone: dict[str, list[dict[str, Any]]] = {}
    for item in templates:
        zone = text(item.get("zoneid"), 64)
        if not zone:
            continue
        by_zone.setdefault(zone, []).append(
            {
                "name": text(item.get("name")),
                "hypervisor": text(item.get("hypervisor"), 32),
                "isready": bool(boolean(item.get("isready"))),
                "status": text(item.get("status"), 255),
            }
        )
    return by_zone


def host_fields(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": text(item.get("name")),
        "ipaddress": ip(item.get("ipaddress")),
        "state": text(item.get("state"), 32),
        "resource_state": text(item.get("resourcestate"), 32),
        "hypervisor": text(item.get("hypervisor"), 32),
        "hypervisor_version": text(item.get("hypervisorversion"), 64),
        "host_type": text(item.get("type"), 32),
        "pod_name": text(item.get("podname")),
        "cluster_name": text(item.get("clustername")),
        "agent_version": text(item.get("version"), 64),
    }


def vpc_fields(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": text(item.get("name")),
        "cidr": text(item.get("cidr"), 64),
        "state": text(item.get("state"), 32),
        "account": text(item.get("account")),
        "domain": text(item.get("domain")),
        "project": text(item.get("project")),
        "redundant": bool(boolean(item.get("redundantvpcrouter"))),
        "restart_required": bool(boolean(item.get("restartrequired"))),
        "public_mtu": integer(item.get("publicmtu")),
    }


def network_fields(item: dict[str, Any]) -> dict[str, Any]:
    services = item.get("service")
    return {
        "name": text(item.get("name")),
        "network_type": text(item.get("type"), 32),
        "traffic_type": text(item.get("traffictype"), 32),
        "state": text(item.get("state"), 32),
        "cidr": text(item.get("cidr"), 64),
        "gateway": text(item.get("gateway"), 64),
        "netmask": text(item.get("netmask"), 64),
        "network_domain": text(item.get("networkdomain")),
        "vlan": text(item.get("vlan"), 64),
        "broadcast_uri": text(item.get("broadcasturi")),
        "account": text(item.get("account")),
        "domain": text(item.get("domain")),
        "project": text(item.get("project")),
        "redundant": bool(boolean(item.get("redundantrouter"))),
        "restart_required": bool(boolean(item.get("restartrequired"))),
        "egress_default_policy": boolean(item.get("egressdefaultpolicy")),
        "offering_name": text(item.get("networkofferingname")),
        "services": [text(s.get("name"), 64) for s in services if isinstance(s, dict)]
        if isinstance(services, list)
        else [],
    }


def router_type(item: dict[str, Any], network_types: dict[str, str]) -> str:
    """vpc when the router serves a VPC, shared for a shared network's DHCP router, else isolated."""
    if text(item.get("vpcid"), 64):
        return "vpc"
    if str(network_types.get(text(item.get("guestnetworkid"), 64)) or "").lower() == "shared":
        return "shared"
    return "isolated"


def router_fields(item: dict[str, Any]) -> dict[str, Any]:
    """Router columns that come straight from the item (foreign keys are resolved by the sync)."""
    checks = health_checks(item.get("healthcheckresults"))
    return {
        "name": text(item.get("name")),
        "state": text(item.get("state"), 32),
        "is_redundant": bool(boolean(item.get("isredundantrouter"))),
        "redundant_state": redundant_state(item.get("redundantstate")),
        "role": text(item.get("role"), 32),
        "link_local_ip": ip(item.get("linklocalip")),
        "guest_ip": ip(item.get("guestipaddress")),
        "public_ip": ip(item.get("publicip")),
        "gateway": text(item.get("gateway"), 64),
        "host_name": text(item.get("hostname")),
        "hypervisor": text(item.get("hypervisor"), 32),
        "pod_name": text(item.get("podname")),
        "account": text(item.get("account")),
        "domain": text(item.get("domain")),
        "project": text(item.get("project")),
        "template_name": text(item.get("templatename")),
        "template_version": text(item.get("version"), 64),
        "scripts_version": text(item.get("scriptsversion"), 64),
        "software_version": text(item.get("softwareversion"), 64),
        "requires_upgrade": bool(boolean(item.get("requiresupgrade"))),
        "service_offering": text(item.get("serviceofferingname")),
        "network_domain": text(item.get("networkdomain")),
        "dns1": text(item.get("dns1"), 64),
        "dns2": text(item.get("dns2"), 64),
        "health_checks": checks,
        "health_checks_failed": any(check["success"] is False for check in checks),
        "health_checks_failed_api": boolean(item.get("healthchecksfailed")),
        "created_in_cloudstack": date(item.get("created")),
        "api_data": item,  # NULs, which PostgreSQL refuses, are taken out by vrconsole.bulk
    }


def nic_fields(item: dict[str, Any], position: int) -> dict[str, Any]:
    return {
        "uuid": text(item.get("id"), 64),
        "position": position,
        "traffic_type": text(item.get("traffictype"), 32),
        "guest_type": text(item.get("type"), 32),
        "ip_address": ip(item.get("ipaddress")),
        "netmask": text(item.get("netmask"), 64),
        "gateway": text(item.get("gateway"), 64),
        "mac_address": text(item.get("macaddress"), 32),
        "network_uuid": text(item.get("networkid"), 64),
        "network_name": text(item.get("networkname")),
        "broadcast_uri": text(item.get("broadcasturi")),
        "isolation_uri": text(item.get("isolationuri")),
        "ip6_address": text(item.get("ip6address"), 64),
        "is_default": bool(boolean(item.get("isdefault"))),
        "mtu": integer(item.get("mtu")),
    }


def router_nics(item: dict[str, Any]) -> list[dict[str, Any]]:
    nics = item.get("nic")
    if not isinstance(nics, list):
        return []
    return [nic_fields(nic, position) for position, nic in enumerate(nics) if isinstance(nic, dict)]
