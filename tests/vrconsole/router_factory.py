"""Inventory rows for the fleet tests: a region, zone, host and routers with sensible defaults.

Plain functions rather than fixtures so that each test says exactly which rows it makes.
"""

from __future__ import annotations

import itertools
import uuid as uuid_module

from vrconsole.models import Host, Network, Region, Router, Vpc, Zone

_sequence = itertools.count(1)


def make_region(name: str = "prod-eu", **fields: object) -> Region:
    return Region.objects.create(name=name, **fields)


def make_zone(region: Region, name: str = "zone-a") -> Zone:
    return Zone.objects.create(region=region, uuid=str(uuid_module.uuid4()), name=name)


def make_host(zone: Zone, name: str = "kvm-01", ipaddress: str = "198.19.0.10", hypervisor: str = "KVM") -> Host:
    return Host.objects.create(
        region=zone.region,
        zone=zone,
        uuid=str(uuid_module.uuid4()),
        name=name,
        ipaddress=ipaddress,
        state="Up",
        hypervisor=hypervisor,
    )


def make_network(zone: Zone, name: str = "shop-prod", vpc: Vpc | None = None) -> Network:
    return Network.objects.create(region=zone.region, zone=zone, vpc=vpc, uuid=str(uuid_module.uuid4()), name=name)


def make_vpc(zone: Zone, name: str = "vpc-globex") -> Vpc:
    return Vpc.objects.create(region=zone.region, zone=zone, uuid=str(uuid_module.uuid4()), name=name)


def build_router(zone: Zone, **fields: object) -> Router:
    """An unsaved router (for bulk_create); fields override the defaults."""
    number = next(_sequence)
    defaults: dict[str, object] = {
        "region": zone.region,
        "zone": zone,
        "uuid": str(uuid_module.uuid4()),
        "name": f"r-{number}-VM",
        "state": "Running",
        "hypervisor": "KVM",
        "account": "acme",
    }
    defaults.update(fields)
    return Router(**defaults)


def make_router(zone: Zone, **fields: object) -> Router:
    router = build_router(zone, **fields)
    router.save()
    return router
