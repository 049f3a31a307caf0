"""What the lab rule tests share: a router's inventory rows from a lab's registration, and its collection.

The rows are built the way the sync builds them (the sync's own mapping of the listRouters item
the lab registered), and the collection runs the real probes over SSH, so the rules judge
exactly what they would judge in production.
"""

from __future__ import annotations

import json

from devcloud import lab
from devcloud.lab.topology import LabPlan
from diagnostics import evaluate as evaluation
from diagnostics.collect import run_collection
from diagnostics.matrix.base import CollectionView
from diagnostics.models import Collection, CollectionStatus
from vrconsole.cloudstack import mapping
from vrconsole.models import Host, Region, Router, RouterNic, Zone


def inventory(plan: LabPlan, kind: str, member: int = 0) -> Router:
    """The router's rows as the sync would write them from the lab's listRouters item."""
    planned = [router for router in plan.routers if router.kind == kind][member]
    document = json.loads(lab.registration_path(plan.name).read_text())
    item = next(r for r in document["routers"] if r["name"] == planned.name)
    region, _ = Region.objects.get_or_create(name=f"lab-{plan.name}")
    zone, _ = Zone.objects.get_or_create(region=region, uuid=plan.zone_id, defaults={"name": f"{plan.name}-zone1"})
    host = None
    if planned.hypervisor == "KVM":
        host, _ = Host.objects.get_or_create(
            region=region,
            uuid=plan.host_id,
            defaults={
                "zone": zone,
                "name": plan.host_name,
                "ipaddress": plan.host_ip,
                "hypervisor": "KVM",
                "state": "Up",
            },
        )
    fields = mapping.router_fields(item)
    fields["router_type"] = "vpc" if item.get("vpcid") else "isolated"
    Router.objects.filter(region=region, uuid=planned.id).delete()
    router = Router.objects.create(region=region, zone=zone, host=host, uuid=planned.id, **fields)
    for nic in mapping.router_nics(item):
        RouterNic.objects.create(router=router, **nic)
    return router


def collected(router: Router) -> CollectionView:
    """Collect the router with the real probes and return what the rules see of it."""
    collection = run_collection(Collection.objects.create(router=router), publish=lambda *_: None)
    assert collection.status == CollectionStatus.SUCCEEDED, collection.error
    return evaluation.collection_view(collection)
