"""The lab's plan: which routers, networks, addresses, MACs and interface names a lab has.

Everything here is pure and deterministic: the same lab name, address block and router count
always give the same plan, so `down`, the registration file and the tests agree on every name
and address without asking the kernel. Addresses that reach the root namespace come from
198.19.<block>.0/24; control networks are link-local (KVM) and guest/public networks use
private and shared (100.64/10) space that only exists inside the lab's namespaces.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass, field

LAB_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]{0,7}$")
MAX_ROUTERS = 240
TEMPLATE_VERSION = "4.20.1"
PUBLIC_GATEWAY = "100.64.0.1"
CONTROL_GATEWAY = "169.254.0.1"
MTU = 1500
VMS_PER_NETWORK = 3

# The default fleet covers every kind once; a larger fleet repeats this pattern.
FLEET_PATTERN = ("isolated", "isolated", "vpc", "redundant", "redundant", "direct")


class PlanError(ValueError):
    """A lab cannot be planned with the given name, block or size."""


@dataclass(frozen=True)
class Nic:
    """One router NIC: its device inside the router and the far end of its veth."""

    device: str
    traffictype: str
    ipaddress: str
    prefixlen: int
    gateway: str
    macaddress: str
    networkid: str
    networkname: str
    isdefault: bool
    peer_name: str
    peer_bridge: str
    peer_namespace: str
    mtu: int = MTU

    @property
    def netmask(self) -> str:
        """The dotted netmask CloudStack reports for this NIC."""
        return str(ipaddress.IPv4Network(f"0.0.0.0/{self.prefixlen}").netmask)

    @property
    def cidr(self) -> str:
        """The network this NIC sits on, e.g. 10.1.1.0/24."""
        return str(ipaddress.IPv4Interface(f"{self.ipaddress}/{self.prefixlen}").network)


@dataclass(frozen=True)
class GuestVm:
    """A user VM known to a router's DHCP server (it has a dhcphosts entry and a lease)."""

    name: str
    ipaddress: str
    macaddress: str


@dataclass(frozen=True)
class Network:
    """A guest network (isolated network or VPC tier)."""

    id: str
    name: str
    cidr: str
    gateway: str
    vpcid: str | None
    redundant: bool
    bridge: str
    vms: tuple[GuestVm, ...]

    @property
    def prefixlen(self) -> int:
        """The prefix length of the network's CIDR."""
        return ipaddress.IPv4Network(self.cidr).prefixlen


@dataclass(frozen=True)
class Vpc:
    """A VPC: its CIDR and its tiers."""

    id: str
    name: str
    cidr: str
    network_ids: tuple[str, ...]


@dataclass(frozen=True)
class Router:
    """A lab router: identity, kind, placement, NICs and the extras it runs."""

    index: int
    id: str
    name: str
    kind: str
    hypervisor: str
    redundant: bool
    # 100 for a pair's first member, 90 for the second: names the members apart only, since the
    # routers' keepalived.conf, like CloudStack's template, sets no priority.
    priority: int
    pair_name: str | None
    namespace: str
    nics: tuple[Nic, ...]
    network_ids: tuple[str, ...]
    vpcid: str | None
    runs_haproxy: bool
    port_forwards: tuple[tuple[int, str, int], ...]
    vms: tuple[GuestVm, ...] = field(default=())

    @property
    def router_type(self) -> str:
        """The `type` boot argument: router or vpcrouter."""
        return "vpcrouter" if self.kind == "vpc" else "router"

    def nic_of(self, traffictype: str) -> Nic:
        """The first NIC with this traffic type (Guest, Control or Public)."""
        return next(nic for nic in self.nics if nic.traffictype == traffictype)

    def guest_nics(self) -> tuple[Nic, ...]:
        """Every guest NIC, lowest device first."""
        return tuple(nic for nic in self.nics if nic.traffictype == "Guest")

    @property
    def control(self) -> Nic:
        """The control NIC (link-local on KVM, the 198.19 private address on VMware)."""
        return self.nic_of("Control")

    @property
    def public(self) -> Nic:
        """The source-NAT public NIC."""
        return self.nic_of("Public")


@dataclass(frozen=True)
class LabPlan:
    """The whole lab: root-namespace addresses, the KVM host, networks, VPCs and routers."""

    name: str
    block: int
    routers: tuple[Router, ...]
    networks: tuple[Network, ...]
    vpcs: tuple[Vpc, ...]
    zone_id: str
    host_id: str

    @property
    def management_subnet(self) -> ipaddress.IPv4Network:
        """The /24 the lab puts in the root namespace."""
        return ipaddress.IPv4Network(f"198.19.{self.block}.0/24")

    @property
    def root_bridge_ip(self) -> str:
        """The root namespace's address on the lab bridge (the management server's side)."""
        return f"198.19.{self.block}.1"

    @property
    def host_ip(self) -> str:
        """The KVM host's management address (listHosts ipaddress)."""
        return f"198.19.{self.block}.2"

    @property
    def root_bridge(self) -> str:
        """The bridge in the root namespace joining the host and direct-access routers."""
        return f"{self.name}br"

    @property
    def host_uplink(self) -> str:
        """The root-namespace end of the host's management veth."""
        return f"{self.name}h"

    @property
    def host_namespace(self) -> str:
        """The KVM host's network namespace."""
        return f"{self.name}-host"

    @property
    def switch_namespace(self) -> str:
        """The namespace holding the guest and public bridges."""
        return f"{self.name}-sw"

    @property
    def host_name(self) -> str:
        """The KVM host's name in the API."""
        return f"{self.name}-kvm01"

    def router(self, name: str) -> Router:
        """The router with this name; KeyError when the lab has none."""
        for router in self.routers:
            if router.name == name:
                return router
        raise KeyError(name)

    def network(self, network_id: str) -> Network:
        """The network with this id."""
        return next(network for network in self.networks if network.id == network_id)


def stable_uuid(lab_name: str, kind: str, key: str) -> str:
    """A UUID that is the same every time this lab is planned, unique per lab."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"vrconsole-lab:{lab_name}:{kind}:{key}"))


def control_link_local(index: int) -> str:
    """The link-local control address of the index-th KVM router (169.254.0.1 is the host)."""
    return f"169.254.{1 + index // 250}.{2 + index % 250}"


def link_local_mac(ip: str) -> str:
    """CloudStack's control-NIC MAC: the IP with 0x0e in the top byte (ControlNetworkGuru)."""
    value = int(ipaddress.IPv4Address(ip)) | (0x0E << 40)
    return ":".join(f"{(value >> shift) & 0xFF:02x}" for shift in range(40, -8, -8))


def _mac(prefix: int, a: int, b: int, c: int) -> str:
    return f"{prefix:02x}:00:{(a >> 8) & 0xFF:02x}:{a & 0xFF:02x}:{b & 0xFF:02x}:{c & 0xFF:02x}"


def _guest_cidr(network_index: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"10.{1 + network_index // 256}.{network_index % 256}.0/24")


def _public_ip(index: int) -> str:
    return f"100.64.{1 + index // 250}.{2 + index % 250}"


def fleet_kinds(router_count: int | None) -> list[str]:
    """The kind of each router: the default fleet, or the pattern repeated to router_count."""
    count = len(FLEET_PATTERN) if router_count is None else router_count
    if count < 1 or count > MAX_ROUTERS:
        raise PlanError(f"router count must be between 1 and {MAX_ROUTERS}")
    kinds = [FLEET_PATTERN[i % len(FLEET_PATTERN)] for i in range(count)]
    # A pair's first member cut off at the end of the fleet becomes a plain isolated router.
    last = count - 1
    if kinds[last] == "redundant" and FLEET_PATTERN.index("redundant") == last % len(FLEET_PATTERN):
        kinds[last] = "isolated"
    return kinds


def plan_lab(name: str, block: int, router_count: int | None = None) -> LabPlan:
    """Plan a lab called name using 198.19.<block>.0/24 in the root namespace."""
    if not LAB_NAME_PATTERN.match(name):
        raise PlanError("lab name must be 1-8 characters: a lowercase letter, then letters or digits")
    if not 0 <= block <= 255:
        raise PlanError("address block must be 0-255 (198.19.<block>.0/24)")
    kinds = fleet_kinds(router_count)
    host_ns = f"{name}-host"
    switch_ns = f"{name}-sw"
    networks: list[Network] = []
    vpcs: list[Vpc] = []
    routers: list[Router] = []
    kvm_index = 0
    direct_index = 0
    position = 0
    while position < len(kinds):
        kind = kinds[position]
        members = 2 if kind == "redundant" else 1
        router_ids = [10 + position + member for member in range(members)]
        if kind == "vpc":
            vpc_index = len(vpcs)
            vpc_cidr = ipaddress.IPv4Network(f"172.{16 + vpc_index // 256}.{vpc_index % 256}.0/24")
            tiers = list(vpc_cidr.subnets(new_prefix=26))[:2]
            vpc_id = stable_uuid(name, "vpc", str(vpc_index))
            tier_networks = []
            for tier_index, tier in enumerate(tiers):
                network_index = len(networks) + tier_index
                tier_networks.append(
                    _network(name, network_index, tier, vpc_id, False, f"vpc{vpc_index}-tier{tier_index + 1}")
                )
            networks.extend(tier_networks)
            vpcs.append(Vpc(vpc_id, f"{name}-vpc{vpc_index}", str(vpc_cidr), tuple(n.id for n in tier_networks)))
            router_networks = tier_networks
        else:
            network_index = len(networks)
            network = _network(name, network_index, _guest_cidr(network_index), None, kind == "redundant", "")
            networks.append(network)
            router_networks = [network]
        public_ip = _public_ip(position)
        for member in range(members):
            index = position + member
            router_name = f"r-{router_ids[member]}-VM"
            namespace = f"{name}-r{index}"
            hypervisor = "VMware" if kind == "direct" else "KVM"
            nics: list[Nic] = []
            if hypervisor == "KVM":
                control_ip = control_link_local(kvm_index)
                control = Nic(
                    "",
                    "Control",
                    control_ip,
                    16,
                    CONTROL_GATEWAY,
                    link_local_mac(control_ip),
                    stable_uuid(name, "network", "control"),
                    "",
                    False,
                    f"vnet{kvm_index}",
                    "cloud0",
                    host_ns,
                )
                kvm_index += 1
            else:
                control_ip = f"198.19.{block}.{10 + direct_index}"
                control = Nic(
                    "",
                    "Control",
                    control_ip,
                    24,
                    f"198.19.{block}.1",
                    _mac(0x06, block, 250, direct_index),
                    stable_uuid(name, "network", "management"),
                    "",
                    False,
                    f"{name}v{direct_index}",
                    f"{name}br",
                    "",
                )
                direct_index += 1
            public = Nic(
                "",
                "Public",
                public_ip,
                16,
                PUBLIC_GATEWAY,
                _mac(0x1E, position, 0, 0),
                stable_uuid(name, "network", "public"),
                "",
                True,
                f"r{index}p",
                "pub",
                switch_ns,
            )
            guests = []
            for tier_index, network in enumerate(router_networks):
                if kind == "redundant":
                    guest_ip = str(ipaddress.IPv4Network(network.cidr)[2 + member])
                else:
                    guest_ip = network.gateway
                guests.append(
                    Nic(
                        "",
                        "Guest",
                        guest_ip,
                        network.prefixlen,
                        network.gateway,
                        _mac(0x02, position, 1 + tier_index, member),
                        network.id,
                        network.name,
                        False,
                        f"r{index}g{tier_index}",
                        network.bridge,
                        switch_ns,
                    )
                )
            if kind == "vpc":
                ordered = [control, public, *guests]
            else:
                ordered = [guests[0], control, public]
            nics = [_with_device(nic, f"eth{device}") for device, nic in enumerate(ordered)]
            vms = tuple(vm for network in router_networks for vm in network.vms)
            first_vm = router_networks[0].vms[0]
            forwards = ((2222, first_vm.ipaddress, 22),) if kind in ("isolated", "direct") else ()
            routers.append(
                Router(
                    index=index,
                    id=stable_uuid(name, "router", router_name),
                    name=router_name,
                    kind=kind,
                    hypervisor=hypervisor,
                    redundant=kind == "redundant",
                    priority=100 - 10 * member,
                    pair_name=f"r-{router_ids[1 - member]}-VM" if kind == "redundant" else None,
                    namespace=namespace,
                    nics=tuple(nics),
                    network_ids=tuple(n.id for n in router_networks),
                    vpcid=router_networks[0].vpcid,
                    runs_haproxy=index == 0,
                    port_forwards=forwards,
                    vms=vms,
                )
            )
        position += members
    return LabPlan(
        name=name,
        block=block,
        routers=tuple(routers),
        networks=tuple(networks),
        vpcs=tuple(vpcs),
        zone_id=stable_uuid(name, "zone", "zone1"),
        host_id=stable_uuid(name, "host", "kvm01"),
    )


def _with_device(nic: Nic, device: str) -> Nic:
    # The public NIC is the default route on every VR, so it is CloudStack's default NIC.
    return Nic(
        device,
        nic.traffictype,
        nic.ipaddress,
        nic.prefixlen,
        nic.gateway,
        nic.macaddress,
        nic.networkid,
        nic.networkname,
        nic.traffictype == "Public",
        nic.peer_name,
        nic.peer_bridge,
        nic.peer_namespace,
        nic.mtu,
    )


def _network(
    lab: str, network_index: int, cidr: ipaddress.IPv4Network, vpc_id: str | None, redundant: bool, label: str
) -> Network:
    network_id = stable_uuid(lab, "network", str(network_index))
    base = int(cidr.network_address)
    vms = tuple(
        GuestVm(
            name=f"vm-{network_index}-{vm}",
            ipaddress=str(ipaddress.IPv4Address(base + 10 + vm)),
            macaddress=_mac(0x02, network_index, 0xAA, vm),
        )
        for vm in range(VMS_PER_NETWORK)
    )
    return Network(
        id=network_id,
        name=f"{lab}-{label or f'net{network_index}'}",
        cidr=str(cidr),
        gateway=str(ipaddress.IPv4Address(base + 1)),
        vpcid=vpc_id,
        redundant=redundant,
        bridge=f"g{network_index}",
        vms=vms,
    )
