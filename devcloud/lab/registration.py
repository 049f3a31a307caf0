"""The lab's registration file: what the CloudStack API simulator says about the lab.

`write_registration` writes `<lab dir>/cloudstack.json` = {"zones", "hosts", "networks", "vpcs",
"routers", "templates"}, each item in the exact shape of the CloudStack API's list responses
(CLOUDSTACK.md §1.6, §1.11), with the IPs, MACs, MTUs and redundant states of the real lab
routers, so a sync against the simulator sees exactly the lab. Redundant states are read from
the kernel (which member holds the guest gateway VIP, as checkrouter.sh decides). The file is
replaced atomically, so the simulator, which re-reads it when it changes, never sees half of it.
"""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime
from pathlib import Path

from devcloud.lab.router_files import SCRIPTS_SIGNATURE, release_line
from devcloud.lab.state import LabState, lab_dir, write_atomically
from devcloud.lab.system_commands import run
from devcloud.lab.topology import TEMPLATE_VERSION, LabPlan, Network, Router, stable_uuid

ACCOUNT = "admin"
DOMAIN = "ROOT"


def registration_path(lab: str) -> Path:
    """Where the simulator finds a lab's registration."""
    return lab_dir(lab) / "cloudstack.json"


def api_time(moment: datetime) -> str:
    """CloudStack's date format: yyyy-MM-ddTHH:mm:ss+0000."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def redundant_states(plan: LabPlan) -> dict[str, str]:
    """PRIMARY/BACKUP of each redundant router, from whether it holds the guest gateway VIP."""
    states: dict[str, str] = {}
    for router in plan.routers:
        if not router.redundant:
            continue
        guest = router.guest_nics()[0]
        output = run(["ip", "-n", router.namespace, "-4", "-o", "addr", "show", "dev", guest.device], check=False)
        holds_vip = any(f" {guest.gateway}/" in line for line in output.splitlines())
        states[router.name] = "PRIMARY" if holds_vip else "BACKUP"
    return states


def _common(plan: LabPlan, created: datetime) -> dict[str, object]:
    return {
        "account": ACCOUNT,
        "domain": DOMAIN,
        "domainid": stable_uuid(plan.name, "domain", "ROOT"),
        "zoneid": plan.zone_id,
        "zonename": f"{plan.name}-zone1",
        "created": api_time(created),
    }


def _ids(plan: LabPlan) -> dict[str, str]:
    return {
        "podid": stable_uuid(plan.name, "pod", "pod1"),
        "podname": f"{plan.name}-pod1",
        "clusterid": stable_uuid(plan.name, "cluster", "kvm"),
        "templateid": stable_uuid(plan.name, "template", "systemvm"),
        "serviceofferingid": stable_uuid(plan.name, "offering", "router"),
    }


def zone_item(plan: LabPlan) -> dict[str, object]:
    """The listZones item for the lab's zone."""
    return {
        "id": plan.zone_id,
        "name": f"{plan.name}-zone1",
        "allocationstate": "Enabled",
        "networktype": "Advanced",
        "securitygroupsenabled": False,
        "localstorageenabled": False,
        "dns1": "100.64.0.1",
        "internaldns1": "100.64.0.1",
        "guestcidraddress": "10.0.0.0/8",
        "hasannotations": False,
    }


def host_items(plan: LabPlan, created: datetime) -> list[dict[str, object]]:
    """listHosts items: the lab KVM host (the SSH hop) and the VMware host of the direct routers."""
    ids = _ids(plan)
    base = {
        "state": "Up",
        "resourcestate": "Enabled",
        "type": "Routing",
        "zoneid": plan.zone_id,
        "zonename": f"{plan.name}-zone1",
        "podid": ids["podid"],
        "podname": ids["podname"],
        "version": f"{TEMPLATE_VERSION}.0",
        "created": api_time(created),
        "lastpinged": "1970-01-20T12:00:00+0000",
        "disconnected": api_time(created),
        "managementserverid": stable_uuid(plan.name, "ms", "1"),
        "hasannotations": False,
    }
    hosts = [
        {
            **base,
            "id": plan.host_id,
            "name": plan.host_name,
            "ipaddress": plan.host_ip,
            "hypervisor": "KVM",
            "hypervisorversion": "7.2.19",
            "clusterid": ids["clusterid"],
            "clustername": f"{plan.name}-kvm-cluster",
        }
    ]
    if any(router.hypervisor == "VMware" for router in plan.routers):
        hosts.append(
            {
                **base,
                "id": stable_uuid(plan.name, "host", "esxi01"),
                "name": f"{plan.name}-esxi01",
                "ipaddress": f"198.19.{plan.block}.3",
                "hypervisor": "VMware",
                "hypervisorversion": "8.0",
                "clusterid": stable_uuid(plan.name, "cluster", "vmware"),
                "clustername": f"{plan.name}-vmware-cluster",
            }
        )
    return hosts


def network_item(plan: LabPlan, network: Network, created: datetime) -> dict[str, object]:
    """A listNetworks item for a guest network or VPC tier."""
    vlan = 100 + plan.networks.index(network)
    item: dict[str, object] = {
        **_common(plan, created),
        "id": network.id,
        "name": network.name,
        "displaytext": network.name,
        "type": "Isolated",
        "traffictype": "Guest",
        "state": "Implemented",
        "cidr": network.cidr,
        "gateway": network.gateway,
        "netmask": str(ipaddress.IPv4Network(network.cidr).netmask),
        "networkdomain": "cs1cloud.internal",
        "vlan": str(vlan),
        "broadcasturi": f"vlan://{vlan}",
        "broadcastdomaintype": "Vlan",
        "networkofferingid": stable_uuid(plan.name, "offering", "vpc-tier" if network.vpcid else "isolated"),
        "networkofferingname": "DefaultIsolatedNetworkOfferingForVpcNetworks"
        if network.vpcid
        else (
            "DefaultRedundantRouterIsolatedNetworkOfferingWithSourceNatService"
            if network.redundant
            else "DefaultIsolatedNetworkOfferingWithSourceNatService"
        ),
        "redundantrouter": network.redundant,
        "restartrequired": False,
        "egressdefaultpolicy": True,
        "ispersistent": False,
        "dns1": "100.64.0.1",
        "service": [
            {"name": name} for name in ("Dhcp", "Dns", "SourceNat", "Firewall", "PortForwarding", "Lb", "UserData")
        ],
        "publicmtu": 1500,
        "privatemtu": 1500,
    }
    if network.vpcid:
        vpc = next(vpc for vpc in plan.vpcs if vpc.id == network.vpcid)
        item.update(
            {
                "vpcid": vpc.id,
                "vpcname": vpc.name,
                "aclid": stable_uuid(plan.name, "acl", "default"),
                "aclname": "default_allow",
            }
        )
    return item


def vpc_item(plan: LabPlan, vpc_index: int, created: datetime) -> dict[str, object]:
    """A listVPCs item."""
    vpc = plan.vpcs[vpc_index]
    return {
        **_common(plan, created),
        "id": vpc.id,
        "name": vpc.name,
        "displaytext": vpc.name,
        "cidr": vpc.cidr,
        "state": "Enabled",
        "vpcofferingid": stable_uuid(plan.name, "offering", "vpc"),
        "vpcofferingname": "Default VPC offering",
        "redundantvpcrouter": False,
        "restartrequired": False,
        "networkdomain": "cs1cloud.internal",
        "network": [network_item(plan, plan.network(network_id), created) for network_id in vpc.network_ids],
        "publicmtu": 1500,
    }


def _health_results(router: Router, faults: list[str], checked: datetime) -> list[dict[str, object]]:
    when = api_time(checked)
    release = release_line()
    results = [
        ("ssh.service", "basic", "sshd-down" not in faults, "service is running"),
        ("dhcp.service", "basic", "dnsmasq-down" not in faults, "service is running"),
        ("connectivity.test", "basic", "sshd-down" not in faults, "Successfully connected to router"),
        ("filesystem.writable.test", "basic", True, "Successfully written to file system"),
        ("disk_space_check.py", "basic", True, "Sufficient free space is 3012 MB"),
        ("cpu_usage_check.py", "basic", True, "CPU Usage within limits with current at 2.1%"),
        ("memory_usage_check.py", "basic", True, "Memory Usage within limits with current at 31.4%"),
        ("gateways_check.py", "basic", True, "All 1 gateways are reachable via ping"),
        (
            "router_version_check.py",
            "basic",
            "outdated-template" not in faults,
            "Template and scripts version match successful",
        ),
        ("dhcp_check.py", "advanced", True, f"All {len(router.vms)} VMs are present in dhcphosts.txt"),
        ("dns_check.py", "advanced", True, f"All {len(router.vms)} VMs are present in /etc/hosts"),
    ]
    if router.runs_haproxy:
        results.append(("loadbalancing.service", "basic", "zombie-haproxy" not in faults, "service is running"))
        results.append(("haproxy_check.py", "advanced", True, "All checks pass"))
    if router.port_forwards:
        results.append(
            (
                "iptables_check.py",
                "advanced",
                True,
                f"Found all entries (count {len(router.port_forwards)}) in iptables",
            )
        )
    items = []
    for name, checktype, success, details in results:
        if not success:
            details = {
                "ssh.service": "service down at last check " + str(int(checked.timestamp())),
                "dhcp.service": "service down at last check " + str(int(checked.timestamp())),
                "loadbalancing.service": "service down at last check " + str(int(checked.timestamp())),
                "connectivity.test": "Communication failed",
                "router_version_check.py": f"Template Version mismatch. Expected: {release}, found: "
                f"{release_line('4.18.0')}",
            }.get(name, details)
        items.append(
            {"checkname": name, "checktype": checktype, "success": success, "lastupdated": when, "details": details}
        )
    return items


def router_item(
    plan: LabPlan, router: Router, created: datetime, redundant_state: str, faults: list[str]
) -> dict[str, object]:
    """A listRouters item (root-admin view, with nic[] and healthcheckresults)."""
    ids = _ids(plan)
    control = router.control
    public = router.public
    guests = router.guest_nics()
    last_guest = guests[-1]
    host = (
        {"hostid": plan.host_id, "hostname": plan.host_name}
        if router.hypervisor == "KVM"
        else {"hostid": stable_uuid(plan.name, "host", "esxi01"), "hostname": f"{plan.name}-esxi01"}
    )
    nics = []
    for nic in router.nics:
        nic_item: dict[str, object] = {
            "id": stable_uuid(plan.name, "nic", f"{router.name}:{nic.device}"),
            "ipaddress": nic.ipaddress,
            "gateway": nic.gateway,
            "netmask": nic.netmask,
            "networkid": nic.networkid,
            "macaddress": nic.macaddress,
            "traffictype": nic.traffictype,
            "type": "Isolated" if nic.traffictype == "Guest" else "Shared",
            "isdefault": nic.isdefault,
            "mtu": 1500,
            "deviceid": nic.device[3:],
        }
        if nic.traffictype == "Guest":
            nic_item["networkname"] = nic.networkname
            nic_item["broadcasturi"] = f"vlan://{100 + [n.id for n in plan.networks].index(nic.networkid)}"
        if nic.traffictype == "Public":
            nic_item["broadcasturi"] = "vlan://untagged"
        nics.append(nic_item)
    item: dict[str, object] = {
        **_common(plan, created),
        **host,
        "id": router.id,
        "name": router.name,
        "state": "Running",
        "podid": ids["podid"],
        "podname": ids["podname"],
        "hypervisor": router.hypervisor,
        "templateid": ids["templateid"],
        "templatename": f"systemvm-{router.hypervisor.lower()}-{TEMPLATE_VERSION}",
        "serviceofferingid": ids["serviceofferingid"],
        "serviceofferingname": "System Offering For Software Router",
        "publicip": public.ipaddress,
        "publicmacaddress": public.macaddress,
        "publicnetmask": public.netmask,
        "publicnetworkid": public.networkid,
        "gateway": public.gateway,
        "linklocalip": control.ipaddress,
        "linklocalmacaddress": control.macaddress,
        "linklocalnetmask": control.netmask,
        "linklocalnetworkid": control.networkid,
        "guestipaddress": last_guest.ipaddress,
        "guestmacaddress": last_guest.macaddress,
        "guestnetmask": last_guest.netmask,
        "guestnetworkid": last_guest.networkid,
        "guestnetworkname": last_guest.networkname,
        "networkdomain": "cs1cloud.internal",
        "dns1": "100.64.0.1",
        "isredundantrouter": router.redundant,
        "redundantstate": redundant_state,
        "role": "VIRTUAL_ROUTER",
        "version": TEMPLATE_VERSION,
        "scriptsversion": SCRIPTS_SIGNATURE,
        "softwareversion": f"{TEMPLATE_VERSION}.0",
        "requiresupgrade": "outdated-template" in faults,
        "healthchecksfailed": False,
        "healthcheckresults": _health_results(router, faults, datetime.now(UTC)),
        "nic": nics,
        "hasannotations": False,
    }
    if router.vpcid:
        vpc = next(vpc for vpc in plan.vpcs if vpc.id == router.vpcid)
        item["vpcid"] = vpc.id
        item["vpcname"] = vpc.name
    return item


def template_item(plan: LabPlan, created: datetime) -> dict[str, object]:
    """The listTemplates item of the system VM template the routers run."""
    return {
        **_common(plan, created),
        "id": _ids(plan)["templateid"],
        "name": f"systemvm-kvm-{TEMPLATE_VERSION}",
        "displaytext": f"SystemVM Template (KVM) {TEMPLATE_VERSION}",
        "templatetype": "SYSTEM",
        "hypervisor": "KVM",
        "format": "QCOW2",
        "isready": True,
        "ispublic": False,
        "isfeatured": False,
        "ostypename": "Debian GNU/Linux 12 (64-bit)",
        "status": "Download Complete",
    }


def build_registration(plan: LabPlan, state: LabState) -> dict[str, list[dict[str, object]]]:
    """The registration document for the lab as it is now."""
    created = datetime.fromisoformat(state.created) if state.created else datetime.now(UTC)
    states = redundant_states(plan)
    return {
        "zones": [zone_item(plan)],
        "hosts": host_items(plan, created),
        "networks": [network_item(plan, network, created) for network in plan.networks],
        "vpcs": [vpc_item(plan, index, created) for index in range(len(plan.vpcs))],
        "routers": [
            router_item(plan, router, created, states.get(router.name, "UNKNOWN"), state.faults.get(router.name, []))
            for router in plan.routers
        ],
        "templates": [template_item(plan, created)],
    }


def write_registration(plan: LabPlan, state: LabState) -> Path:
    """Write the registration atomically and return its path."""
    path = registration_path(plan.name)
    write_atomically(path, (json.dumps(build_registration(plan, state), indent=2, sort_keys=True) + "\n").encode())
    return path
