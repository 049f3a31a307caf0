"""The simulator's inventory: a deterministic synthetic fleet and the lab file's objects.

`generate_fleet(routers, seed, version)` builds zones, pods, KVM and VMware hosts, isolated
networks and VPCs with tiers, and their virtual routers, already in the exact shapes of the
CloudStack API (CLOUDSTACK.md §1.6, §1.11): redundant pairs share a network or VPC, a few
routers are Stopped/Error/Starting, some run an older template and need an upgrade, some have
failing health checks, and owners spread over domains, accounts and projects. `SimRouter`
wraps one router's API dict and caches its serialised JSON per caller view, so a 500-router
page is a string join. `load_lab_file` reads the lab's JSON file of API-shaped objects; the
synthetic fleet avoids every id, name and address the lab uses.
"""

from __future__ import annotations

import functools
import gc
import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ApiObject = dict[str, Any]

# CloudStack serialises dates as yyyy-MM-dd'T'HH:mm:ssZ (§1.2).

# Synthetic router names start here so the lab can use lower numbers without a clash.
FIRST_SYNTHETIC_ROUTER_NUMBER = 1000

# Fields DomainRouterJoinDaoImpl fills only for root and resource-domain admins (§0.12): the host,
# the pod, and the legacy per-traffic-type NIC fields (public, control and guest, with the public
# NIC's gateway and the guest network's id, name and domain), and the nic list.
ADMIN_ONLY_ROUTER_FIELDS = frozenset(
    {
        "hostid",
        "hostname",
        "hostcontrolstate",
        "podid",
        "podname",
        "publicip",
        "publicmacaddress",
        "publicnetmask",
        "gateway",
        "publicnetworkid",
        "linklocalip",
        "linklocalmacaddress",
        "linklocalnetmask",
        "linklocalnetworkid",
        "guestipaddress",
        "guestmacaddress",
        "guestnetmask",
        "guestnetworkid",
        "guestnetworkname",
        "networkdomain",
        "nic",
    }
)

_EPOCH = datetime(2024, 1, 8, 9, 0, 0, tzinfo=UTC)
# Template versions an upgraded cloud still has routers on, newest first.
_OLDER_TEMPLATES = ("4.20.0", "4.19.1", "4.18.2", "4.17.2", "4.16.1", "4.15.2", "4.14.1", "4.13.1")
_MANAGEMENT_SERVER_ID = "a1b2c3d4-0000-4000-8000-00000000cafe"


def format_date(moment: datetime) -> str:
    """A date the way the API writes it, e.g. 2025-03-06T14:21:10+0000."""
    d = moment.astimezone(UTC)
    # Hand-formatted: strftime dominated generating a 10,000-router fleet.
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}+0000"


@functools.lru_cache(maxsize=256)
def version_tuple(version: str) -> tuple[int, ...]:
    """'4.20.1.0' -> (4, 20, 1, 0); anything non-numeric ends the tuple."""
    parts: list[int] = []
    for piece in version.strip().split("."):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


def template_version_of(management_version: str) -> str:
    """The system VM template version that ships with a management-server version (three parts)."""
    return ".".join(str(p) for p in version_tuple(management_version)[:3])


def control_mac(ip: str) -> str:
    """The control NIC's MAC, derived from its IP as `ip | (0x0e << 40)` (ControlNetworkGuru.reserve)."""
    a, b, c, d = (int(x) for x in ip.split("."))
    value = (a << 24 | b << 16 | c << 8 | d) | (0x0E << 40)
    return ":".join(f"{(value >> shift) & 0xFF:02x}" for shift in range(40, -1, -8))


@dataclass(eq=False)
class SimRouter:
    """One router: its full root-admin API dict plus the health-check results the API would store."""

    data: ApiObject
    check_factory: Callable[[], list[ApiObject]] | None = None
    synthetic: bool = True
    _checks: list[ApiObject] | None = None
    _json_cache: dict[tuple[Any, ...], str] = field(default_factory=dict)
    network_ids: frozenset[str] = frozenset()
    pending_job: str | None = None
    # Host fields put aside while the router is stopped (a stopped VR has no host).
    parked_host: ApiObject = field(default_factory=dict)

    def __post_init__(self) -> None:
        raw = self.data.pop("healthcheckresults", None)
        if isinstance(raw, list):
            self._checks = raw
            self.check_factory = None
        self.touch()

    @property
    def id(self) -> str:
        return str(self.data.get("id", ""))

    @property
    def name(self) -> str:
        return str(self.data.get("name", ""))

    @property
    def state(self) -> str:
        return str(self.data.get("state", ""))

    @property
    def checks(self) -> list[ApiObject]:
        """The stored health-check results (built on first use: most requests never ask)."""
        if self._checks is None:
            self._checks = self.check_factory() if self.check_factory else []
        return self._checks

    def set_checks(self, checks: list[ApiObject]) -> None:
        self._checks = checks
        self.check_factory = None
        self.touch()

    def has_failing_checks(self) -> bool:
        return any(not item.get("success", True) for item in self.checks)

    def touch(self) -> None:
        """Forget cached JSON and recompute lookups after any change to `data`."""
        self._json_cache.clear()
        ids = {str(nic["networkid"]) for nic in self.data.get("nic", []) if nic.get("networkid")}
        if self.data.get("guestnetworkid"):
            ids.add(str(self.data["guestnetworkid"]))
        self.network_ids = frozenset(ids)

    def render(self, *, admin: bool, with_checks: bool, legacy_master: bool, report_failed_checks: bool | None) -> str:
        """This router's JSON for one caller view, cached until the router changes."""
        key = (admin, with_checks, legacy_master, report_failed_checks, self.pending_job)
        cached = self._json_cache.get(key)
        if cached is not None:
            return cached
        if with_checks and self.checks:
            # Splice the results into the cached plain view: encoding the router twice doubled the cost.
            plain = self.render(
                admin=admin, with_checks=False, legacy_master=legacy_master, report_failed_checks=report_failed_checks
            )
            text = f'{plain[:-1]},"healthcheckresults":{json.dumps(self.checks, separators=(",", ":"))}}}'
        else:
            view = self.view(
                admin=admin,
                with_checks=False,
                legacy_master=legacy_master,
                report_failed_checks=report_failed_checks,
            )
            text = json.dumps(view, separators=(",", ":"))
        self._json_cache[key] = text
        return text

    def view(
        self, *, admin: bool, with_checks: bool, legacy_master: bool, report_failed_checks: bool | None
    ) -> ApiObject:
        """The API dict one caller sees (fields absent rather than null; no health fields when None)."""
        if admin:
            view = dict(self.data)
        else:
            view = {k: v for k, v in self.data.items() if k not in ADMIN_ONLY_ROUTER_FIELDS}
        if legacy_master and view.get("redundantstate") == "PRIMARY":
            view["redundantstate"] = "MASTER"
        # apache/cloudstack#12630: the flag stays false even when checks fail.
        if report_failed_checks is not None:
            view["healthchecksfailed"] = self.has_failing_checks() if report_failed_checks else False
        if with_checks and self.checks:
            view["healthcheckresults"] = self.checks
        if self.pending_job:
            view["jobid"] = self.pending_job
            view["jobstatus"] = 0
        return view


@dataclass
class Fleet:
    """Every object the simulator serves, lab objects first."""

    zones: list[ApiObject] = field(default_factory=list)
    hosts: list[ApiObject] = field(default_factory=list)
    networks: list[ApiObject] = field(default_factory=list)
    vpcs: list[ApiObject] = field(default_factory=list)
    routers: list[SimRouter] = field(default_factory=list)
    templates: list[ApiObject] = field(default_factory=list)
    next_router_number: int = FIRST_SYNTHETIC_ROUTER_NUMBER

    def extend(self, other: Fleet) -> None:
        self.zones += other.zones
        self.hosts += other.hosts
        self.networks += other.networks
        self.vpcs += other.vpcs
        self.routers += other.routers
        self.templates += other.templates
        self.next_router_number = max(self.next_router_number, other.next_router_number)


@dataclass(frozen=True)
class Owner:
    """Who owns a network, VPC or router: an account in a domain, or a project."""

    account: str
    domainid: str
    domain: str
    domainpath: str
    projectid: str | None = None
    project: str | None = None

    def fields(self) -> ApiObject:
        out: ApiObject = {"account": self.account, "domainid": self.domainid, "domain": self.domain}
        out["domainpath"] = self.domainpath
        if self.projectid:
            out["projectid"] = self.projectid
            out["project"] = self.project
        return out


# Fixed ids keep the domains and the demo accounts stable across seeds: tests and the
# non-admin key refer to them.
ROOT_DOMAIN_ID = "6c0e6b4e-1f3b-4d39-9c43-000000000001"
CUSTOMERS_DOMAIN_ID = "6c0e6b4e-1f3b-4d39-9c43-000000000002"
_DOMAINS = [
    (ROOT_DOMAIN_ID, "ROOT", "ROOT"),
    (CUSTOMERS_DOMAIN_ID, "Customers", "ROOT/Customers"),
    ("6c0e6b4e-1f3b-4d39-9c43-000000000003", "Acme", "ROOT/Customers/Acme"),
    ("6c0e6b4e-1f3b-4d39-9c43-000000000004", "Globex", "ROOT/Customers/Globex"),
    ("6c0e6b4e-1f3b-4d39-9c43-000000000005", "Internal", "ROOT/Internal"),
]
ADMIN_OWNER = Owner("admin", ROOT_DOMAIN_ID, "ROOT", "ROOT")
DOMAIN_ADMIN_OWNER = Owner("customers-admin", CUSTOMERS_DOMAIN_ID, "Customers", "ROOT/Customers")
_ACCOUNTS = {
    "ROOT": ["admin", "noc"],
    "Customers": ["customers-admin", "reseller1"],
    "Acme": ["acme", "acme-dev", "acme-ops"],
    "Globex": ["globex", "globex-web"],
    "Internal": ["it", "build", "monitoring"],
}
_PROJECTS = [
    ("9b1f7c2a-5e6d-4f80-a1b2-000000000101", "acme-platform", "Acme"),
    ("9b1f7c2a-5e6d-4f80-a1b2-000000000102", "globex-shop", "Globex"),
    ("9b1f7c2a-5e6d-4f80-a1b2-000000000103", "internal-ci", "Internal"),
]

_ZONES = [
    ("ams1", "KVM"),
    ("fra1", "KVM"),
    ("lon1", "VMware"),
    ("par1", "mixed"),
]
_SERVICE_OFFERINGS = [
    ("3a1d1e7c-0c1b-4bfb-9a1a-00000000a001", "System Offering For Software Router"),
    ("3a1d1e7c-0c1b-4bfb-9a1a-00000000a002", "System Offering For Software Router - Large"),
]
_ISOLATED_OFFERING = ("5f2c0a11-8a3e-4b6c-bb11-0000000b0001", "DefaultIsolatedNetworkOfferingWithSourceNatService")
_REDUNDANT_OFFERING = (
    "5f2c0a11-8a3e-4b6c-bb11-0000000b0002",
    "DefaultIsolatedNetworkOfferingWithSourceNatServiceRedundant",
)
_TIER_OFFERING = ("5f2c0a11-8a3e-4b6c-bb11-0000000b0003", "DefaultIsolatedNetworkOfferingForVpcNetworks")
_VPC_OFFERING = ("7e4d3c2b-1a09-4f8e-9d7c-0000000c0001", "Default VPC offering")
_REDUNDANT_VPC_OFFERING = ("7e4d3c2b-1a09-4f8e-9d7c-0000000c0002", "Redundant VPC offering")
# Shared by every network of a kind: the objects are only ever serialised.
_ISOLATED_SERVICES = [
    {"name": s}
    for s in ("Dhcp", "Dns", "Firewall", "Lb", "PortForwarding", "SourceNat", "StaticNat", "UserData", "Vpn")
]
_TIER_SERVICES = [
    {"name": s}
    for s in ("Dhcp", "Dns", "Lb", "NetworkACL", "PortForwarding", "SourceNat", "StaticNat", "UserData", "Vpn")
]


class _Ids:
    """Deterministic UUIDs and names that skip whatever the lab already uses."""

    def __init__(self, rng: random.Random, taken: set[str]) -> None:
        self.rng = rng
        self.taken = taken

    def uuid(self) -> str:
        while True:
            h = f"{self.rng.getrandbits(128):032x}"
            # Version 4 layout, formatted by hand: uuid.UUID() was a third of the generation time.
            value = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"
            if value not in self.taken:
                self.taken.add(value)
                return value


class _Addresses:
    """Hands out non-overlapping synthetic addresses, skipping lab ones."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = taken
        # Hosts: documentation ranges; routers' public side: the shared address space.
        self._hosts = self._walk(["198.51.100.0/24", "203.0.113.0/24"], skip_first=10)
        self._public = self._walk(["100.64.0.0/10"], skip_first=256)
        # Link-local control IPs from the upper half so the lab's low ones never clash; a fleet
        # of more than 32,000 routers goes on below it (lab addresses are skipped as taken),
        # as a real zone's control network is the whole 169.254.0.0/16.
        self._link_local = self._walk(
            ["169.254.128.0/17", "169.254.64.0/18", "169.254.32.0/19", "169.254.16.0/20"], skip_first=2
        )
        self._guest_subnet = 0

    def _walk(self, cidrs: list[str], skip_first: int) -> Iterator[str]:
        for cidr in cidrs:
            base, bits = cidr.split("/")
            a, b, c, d = (int(x) for x in base.split("."))
            start = a << 24 | b << 16 | c << 8 | d
            for value in range(start + skip_first, start + (1 << (32 - int(bits))) - 1):
                last = value & 0xFF
                if last in (0, 255):
                    continue
                ip = f"{value >> 24}.{(value >> 16) & 0xFF}.{(value >> 8) & 0xFF}.{last}"
                if ip not in self.taken:
                    yield ip

    def host(self) -> str:
        return next(self._hosts)

    def public(self) -> str:
        return next(self._public)

    def link_local(self) -> str:
        return next(self._link_local)

    def guest_subnet(self) -> str:
        """The first three octets of a /24 under 10.0.0.0/8 (unique here to keep lookups plain)."""
        self._guest_subnet += 1
        n = self._guest_subnet
        return f"10.{(n >> 8) & 0xFF}.{n & 0xFF}"


def _mac(rng: random.Random, prefix: str) -> str:
    h = f"{rng.getrandbits(32):08x}"
    return f"{prefix}:{h[0:2]}:{h[2:4]}:{h[4:6]}:{h[6:8]}"


# Health-check results the management server would store for a router (§1.7, §4.4).
_FAILURE_PROFILES: list[tuple[str, Callable[[ApiObject], str]]] = [
    ("disk_space_check.py", lambda r: "Insufficient free space is 42 MB"),
    ("dns_check.py", lambda r: f"Missing entry in /etc/hosts - {_vm_ip(r)} vm-{r['name'][2:-3]}-web"),
    (
        "dhcp_check.py",
        lambda r: f"Missing elements in dhcphosts.txt - \n02:00:3c:1f:00:2a {_vm_ip(r)} vm-{r['name'][2:-3]}-db",
    ),
    ("gateways_check.py", lambda r: f"Unreachable gateways found-\n['{r.get('gateway', '100.64.0.1')}']"),
    (
        "iptables_check.py",
        # One Python list per rule the script did not find (PREROUTING and OUTPUT), as it prints them.
        lambda r: (
            "Missing port forwarding rules in Iptables-\n "
            + "".join(
                f"['{chain}', '-d {r.get('publicip')}', '--dport 2222', '--to-destination {_vm_ip(r)}:22']\n"
                for chain in ("PREROUTING", "OUTPUT")
            )
        ),
    ),
    ("connectivity.test", lambda r: "Communication failed"),
    ("filesystem.writable.test", lambda r: "Failed to write: Read-only file system"),
    ("haproxy_check.py", lambda r: f"Missing load balancing for {r.get('publicip')}:80. "),
]


def _vm_ip(router: ApiObject) -> str:
    gateway = str(router.get("guestipaddress") or "10.1.1.1")
    return gateway.rsplit(".", 1)[0] + ".25"


def health_checks(router: ApiObject, failing: tuple[str, ...], checked_at: datetime) -> list[ApiObject]:
    """The 14 results a 4.2x management server keeps for a router, with the named ones failing."""
    backup = router.get("redundantstate") == "BACKUP"
    vms = 2 + (sum(map(ord, router["name"])) % 7)
    passing: list[tuple[str, str, str]] = [
        ("connectivity.test", "basic", "Successfully connected to router"),
        ("filesystem.writable.test", "basic", "Successfully written to file system"),
        # monitorServices.py's words for a service it found running.
        ("ssh.service", "basic", "service is running"),
        ("dhcp.service", "basic", "service is running"),
        ("webserver.service", "basic", "service is running"),
        ("cpu_usage_check.py", "basic", f"CPU Usage within limits with current at {1 + vms * 0.7:.1f}%"),
        ("memory_usage_check.py", "basic", f"Memory Usage within limits with current at {30 + vms * 2.3:.1f}%"),
        ("disk_space_check.py", "basic", f"Sufficient free space is {1400 + vms * 13} MB"),
        ("router_version_check.py", "basic", "Template and scripts version match successful"),
        ("dhcp_check.py", "advanced", f"All {vms} VMs are present in dhcphosts.txt"),
        ("dns_check.py", "advanced", f"All {vms} VMs are present in /etc/hosts"),
        ("haproxy_check.py", "advanced", "No data provided to check, skipping"),
        ("iptables_check.py", "advanced", "No port forwarding rules provided to check, skipping"),
    ]
    if not backup:
        # BACKUP routers get gateways_check.py excluded (BACKUP_ROUTER_EXCLUDED_TESTS, §4.2).
        passing.insert(9, ("gateways_check.py", "basic", "All 1 gateways are reachable via ping"))
    messages = dict(_FAILURE_PROFILES)
    stamp = format_date(checked_at)
    results = []
    for name, kind, details in passing:
        ok = name not in failing
        results.append(
            {
                "checkname": name,
                "checktype": kind,
                "success": ok,
                "lastupdated": stamp,
                "details": details if ok else messages[name](router),
            }
        )
    return results


@dataclass
class _Pod:
    id: str
    name: str
    zone: ApiObject
    hypervisor: str
    hosts: list[ApiObject]
    private_prefix: str
    private_third: int
    private_next: int = 8


def generate_fleet(
    routers: int,
    seed: int = 1,
    version: str = "4.20.1.0",
    taken: Iterable[str] = (),
    now: datetime | None = None,
) -> Fleet:
    """A deterministic synthetic fleet of exactly `routers` routers."""
    # Hundreds of thousands of new containers make the cyclic GC run over and over for nothing.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _generate(routers, seed, version, taken, now)
    finally:
        if was_enabled:
            gc.enable()


def _generate(routers: int, seed: int, version: str, taken: Iterable[str], now: datetime | None) -> Fleet:
    rng = random.Random(seed)
    used = set(taken)
    ids = _Ids(rng, used)
    addresses = _Addresses(used)
    now = now or datetime.now(UTC)
    current = template_version_of(version)
    older = [v for v in _OLDER_TEMPLATES if version_tuple(v) < version_tuple(current)][:3] or [current]
    fleet = Fleet()

    domain_by_name = {name: (uid, name, path) for uid, name, path in _DOMAINS}
    owners = [
        Owner(account, domain_by_name[domain][0], domain, domain_by_name[domain][2])
        for domain, accounts in _ACCOUNTS.items()
        for account in accounts
    ]
    tenant_owners = [o for o in owners if o.account not in ("admin", "customers-admin")]
    project_owners = [
        Owner(
            f"PrjAcct-{name}-1",
            domain_by_name[domain][0],
            domain,
            domain_by_name[domain][2],
            projectid=pid,
            project=name,
        )
        for pid, name, domain in _PROJECTS
    ]

    # Zones, pods, hosts, templates.
    hosts_wanted = max(4, min(400, routers // 30 + 4))
    pods: list[_Pod] = []
    zone_count = len(_ZONES)
    for zone_index, (zone_name, kind) in enumerate(_ZONES):
        zone = {
            "id": ids.uuid(),
            "name": f"zone-{zone_name}",
            "networktype": "Advanced",
            "allocationstate": "Enabled",
            "dns1": "9.9.9.9",
            "dns2": "149.112.112.112",
            "internaldns1": f"10.{200 + zone_index}.0.2",
            "guestcidraddress": "10.0.0.0/8",
            "localstorageenabled": False,
            "securitygroupsenabled": False,
            "zonetoken": f"{rng.getrandbits(96):024x}",
            "dhcpprovider": "VirtualRouter",
            "hasannotations": False,
            "type": "core",
        }
        fleet.zones.append(zone)
        hypervisors = ["KVM", "VMware"] if kind == "mixed" else [kind]
        for pod_index, hypervisor in enumerate(hypervisors * (2 if kind != "mixed" else 1)):
            pod = _Pod(
                id=ids.uuid(),
                name=f"pod-{zone_name}-{pod_index + 1}",
                zone=zone,
                hypervisor=hypervisor,
                hosts=[],
                private_prefix=f"172.{16 + zone_index}",
                private_third=pod_index * 32,
            )
            pods.append(pod)
        for hypervisor in hypervisors:
            for tv in [current, *older[:1]]:
                fleet.templates.append(_system_template(ids, zone, hypervisor, tv, now))
    per_pod = max(1, hosts_wanted // len(pods))
    host_number = 0
    for pod in pods:
        cluster_id = ids.uuid()
        cluster_name = f"{pod.name}-{'kvm' if pod.hypervisor == 'KVM' else 'esx'}-cl1"
        for _ in range(per_pod):
            host_number += 1
            state, resource = "Up", "Enabled"
            roll = rng.random()
            if roll < 0.02:
                state = "Disconnected"
            elif roll < 0.035:
                resource = "Maintenance"
            host = {
                "id": ids.uuid(),
                "name": (f"kvm{host_number:03d}" if pod.hypervisor == "KVM" else f"esx{host_number:03d}")
                + f".{pod.zone['name'][5:]}.example.net",
                "state": state,
                "resourcestate": resource,
                "type": "Routing",
                "hypervisor": pod.hypervisor,
                "hypervisorversion": "8.0.2" if pod.hypervisor == "VMware" else "8.0.0",
                "ipaddress": addresses.host(),
                "zoneid": pod.zone["id"],
                "zonename": pod.zone["name"],
                "podid": pod.id,
                "podname": pod.name,
                "clusterid": cluster_id,
                "clustername": cluster_name,
                "clustertype": "ExternalManaged" if pod.hypervisor == "VMware" else "CloudManaged",
                "version": version,
                "managementserverid": _MANAGEMENT_SERVER_ID,
                "lastpinged": format_date(_EPOCH),
                "created": format_date(_EPOCH + timedelta(hours=host_number)),
                "islocalstorageactive": False,
                "hasannotations": False,
                "events": "AgentConnected; AgentDisconnected; Ping; Remove; ShutdownRequested; StartAgentRebalance; "
                "UnableToConnect",
            }
            if state == "Disconnected":
                host["disconnected"] = format_date(now - timedelta(minutes=17))
            pod.hosts.append(host)
            fleet.hosts.append(host)
    templates = {(t["zoneid"], t["hypervisor"], t["version_key"]): t for t in fleet.templates}
    for t in fleet.templates:
        t.pop("version_key")

    def make_router(
        owner: Owner,
        pod: _Pod,
        created: datetime,
        redundant: bool,
        rstate: str,
        vpc: ApiObject | None,
        guests: list[tuple[ApiObject, str]],
    ) -> ApiObject:
        zone = pod.zone
        host = rng.choice(pod.hosts)
        template_version = current if rng.random() > 0.08 else rng.choice(older)
        template = (
            templates.get((zone["id"], pod.hypervisor, template_version))
            or templates[(zone["id"], pod.hypervisor, current)]
        )
        offering = _SERVICE_OFFERINGS[1 if rng.random() < 0.15 else 0]
        public_ip = addresses.public()
        public_gw = public_ip.rsplit(".", 1)[0] + ".1"
        public_vlan = 100 + zone_count * 10 + (int(public_ip.split(".")[2]) % 40)
        if pod.hypervisor == "VMware":
            # A pod private (management) IP, not link-local (§0.2); /19 per pod.
            n = pod.private_next
            control_ip = f"{pod.private_prefix}.{pod.private_third + n // 250}.{n % 250 + 2}"
            pod.private_next += 1
            control_mask = "255.255.224.0"
        else:
            control_ip = addresses.link_local()
            control_mask = "255.255.0.0"
        number = fleet.next_router_number
        fleet.next_router_number += 1
        name = f"r-{number}-VM"
        while name in used:
            number = fleet.next_router_number
            fleet.next_router_number += 1
            name = f"r-{number}-VM"
        control_network = zone["_control_network"]
        public_network = zone["_public_network"]
        control_nic = {
            "id": ids.uuid(),
            "networkid": control_network,
            "netmask": control_mask,
            "gateway": f"{pod.private_prefix}.{pod.private_third}.1" if pod.hypervisor == "VMware" else "169.254.0.1",
            "ipaddress": control_ip,
            "traffictype": "Control",
            "isdefault": False,
            "macaddress": control_mac(control_ip),
            "mtu": 1500,
        }
        public_nic = {
            "id": ids.uuid(),
            "networkid": public_network,
            "netmask": "255.255.255.0",
            "gateway": public_gw,
            "ipaddress": public_ip,
            "isolationuri": f"vlan://{public_vlan}",
            "broadcasturi": f"vlan://{public_vlan}",
            "traffictype": "Public",
            "isdefault": True,
            "macaddress": _mac(rng, "1e:00"),
            "mtu": 1500,
        }
        guest_nics = []
        for network, ip in guests:
            guest_nics.append(
                {
                    "id": ids.uuid(),
                    "networkid": network["id"],
                    "networkname": network["name"],
                    "netmask": network["netmask"],
                    "gateway": network["gateway"],
                    "ipaddress": ip,
                    "isolationuri": network["broadcasturi"],
                    "broadcasturi": network["broadcasturi"],
                    "traffictype": "Guest",
                    "type": "Isolated",
                    "isdefault": False,
                    "macaddress": _mac(rng, "02:00"),
                    "mtu": 1500,
                }
            )
        # Isolated: guest, control, public; VPC: control, public, tiers (§0.1).
        nics = [control_nic, public_nic, *guest_nics] if vpc else [*guest_nics, control_nic, public_nic]
        last_guest = guest_nics[-1]
        last_network = guests[-1][0]
        scripts = f"{rng.getrandbits(128):032x}"
        router: ApiObject = {
            "id": ids.uuid(),
            "name": name,
            "state": "Running",
            "created": format_date(created),
            "zoneid": zone["id"],
            "zonename": zone["name"],
            "dns1": zone["dns1"],
            "dns2": zone["dns2"],
            "networkdomain": last_network["networkdomain"],
            "podid": pod.id,
            "podname": pod.name,
            "hostid": host["id"],
            "hostname": host["name"],
            "hostcontrolstate": "Enabled",
            "hypervisor": pod.hypervisor,
            "templateid": template["id"],
            "templatename": template["name"],
            "serviceofferingid": offering[0],
            "serviceofferingname": offering[1],
            **owner.fields(),
            "publicip": public_ip,
            "publicmacaddress": public_nic["macaddress"],
            "publicnetmask": public_nic["netmask"],
            "publicnetworkid": public_network,
            "gateway": public_gw,
            "linklocalip": control_ip,
            "linklocalmacaddress": control_nic["macaddress"],
            "linklocalnetmask": control_mask,
            "linklocalnetworkid": control_network,
            "guestipaddress": last_guest["ipaddress"],
            "guestmacaddress": last_guest["macaddress"],
            "guestnetmask": last_guest["netmask"],
            "guestnetworkid": last_network["id"],
            "guestnetworkname": last_network["name"],
            "isredundantrouter": redundant,
            "redundantstate": rstate,
            "role": "VIRTUAL_ROUTER",
            "version": template_version,
            "scriptsversion": scripts,
            "softwareversion": version if template_version == current or rng.random() < 0.3 else template_version,
            "hasannotations": False,
            "nic": nics,
        }
        if vpc:
            router["vpcid"] = vpc["id"]
            router["vpcname"] = vpc["name"]
        router["requiresupgrade"] = requires_upgrade(router, version)
        return router

    for zone in fleet.zones:
        zone["_control_network"] = ids.uuid()
        zone["_public_network"] = ids.uuid()

    def pick_owner(index: int) -> Owner:
        if index < 2:
            return ADMIN_OWNER
        if index in (2, 3):
            return DOMAIN_ADMIN_OWNER
        if rng.random() < 0.08:
            return rng.choice(project_owners)
        return rng.choice(tenant_owners)

    failing_rate = 0.05
    made = 0
    group = 0
    while made < routers:
        pod = pods[group % len(pods)] if group < len(pods) else rng.choice(pods)
        owner = pick_owner(group)
        created = _EPOCH + timedelta(minutes=37 * group + int(rng.random() * 30))
        redundant = rng.random() < 0.22 and routers - made >= 2
        is_vpc = rng.random() < 0.35
        count = 2 if redundant else 1
        group += 1
        vpc: ApiObject | None = None
        networks: list[ApiObject] = []
        if is_vpc:
            vpc = _vpc(ids, addresses, rng, pod.zone, owner, group, redundant, created, version)
            for tier in range(1 + int(rng.random() * 4)):
                networks.append(_network(ids, addresses, rng, pod.zone, owner, group, redundant, created, vpc, tier))
            vpc["network"] = networks
            fleet.vpcs.append(vpc)
        else:
            networks.append(_network(ids, addresses, rng, pod.zone, owner, group, redundant, created, None, 0))
        fleet.networks.extend(networks)
        for member in range(count):
            rstate = ("PRIMARY" if member == 0 else "BACKUP") if redundant else "UNKNOWN"
            guests = []
            for network in networks:
                gateway = network["gateway"]
                # The redundant pair answers on their own addresses; the gateway is the VIP.
                ip = gateway if not redundant else gateway.rsplit(".", 1)[0] + f".{252 - member}"
                guests.append((network, ip))
            router = make_router(owner, pod, created + timedelta(seconds=40 * member), redundant, rstate, vpc, guests)
            _roll_state(rng, router, redundant)
            failing: tuple[str, ...] = ()
            if rng.random() < failing_rate:
                name, _ = rng.choice(_FAILURE_PROFILES)
                if name == "gateways_check.py" and router["redundantstate"] == "BACKUP":
                    name = "dns_check.py"
                failing = (name,)
            checked_at = now - timedelta(minutes=1 + int(rng.random() * 9))
            fleet.routers.append(
                SimRouter(
                    router,
                    check_factory=_check_factory(router, failing, checked_at),
                )
            )
            made += 1
    for zone in fleet.zones:
        zone.pop("_control_network")
        zone.pop("_public_network")
    return fleet


def _check_factory(router: ApiObject, failing: tuple[str, ...], checked_at: datetime) -> Callable[[], list[ApiObject]]:
    return lambda: health_checks(router, failing, checked_at)


def _roll_state(rng: random.Random, router: ApiObject, redundant: bool) -> None:
    """Put a few routers in the states a real fleet always has some of."""
    roll = rng.random()
    if roll < 0.012:
        router["state"] = "Stopped"
        for key in ("hostid", "hostname", "hostcontrolstate"):
            router.pop(key, None)
    elif roll < 0.018:
        router["state"] = "Error"
    elif roll < 0.021:
        router["state"] = "Starting"
    elif roll < 0.023:
        router["state"] = "Stopping"
    if redundant and router["state"] != "Running":
        router["redundantstate"] = "UNKNOWN"
    elif redundant and roll > 0.995:
        router["redundantstate"] = "FAULT"


def requires_upgrade(router: ApiObject, management_version: str) -> bool:
    """The DomainRouterJoinDaoImpl rule (§1.6): old template unless live-patched to this code version."""
    template = router.get("version")
    if not template or template == "UNKNOWN":
        return True
    if version_tuple(str(template)) < version_tuple(template_version_of(management_version)):
        return router.get("softwareversion") != management_version
    return False


def _system_template(ids: _Ids, zone: ApiObject, hypervisor: str, version: str, now: datetime) -> ApiObject:
    name = f"systemvm-{hypervisor.lower()}-{version}"
    return {
        "id": ids.uuid(),
        "name": name,
        "displaytext": name,
        "ispublic": False,
        "isfeatured": False,
        "isready": True,
        "status": "Download Complete",
        "templatetype": "SYSTEM",
        "format": "OVA" if hypervisor == "VMware" else "QCOW2",
        "hypervisor": hypervisor,
        "ostypename": "Debian GNU/Linux 12 (64-bit)",
        "zoneid": zone["id"],
        "zonename": zone["name"],
        "account": "system",
        "domain": "ROOT",
        "domainid": ROOT_DOMAIN_ID,
        "created": format_date(_EPOCH - timedelta(days=30)),
        "size": 5368709120,
        "passwordenabled": False,
        "crossZones": False,
        "requireshvm": True,
        "isextractable": False,
        "directdownload": False,
        "url": f"http://download.cloudstack.org/systemvm/{'.'.join(version.split('.')[:2])}/{name}.qcow2.bz2",
        "version_key": version,
    }


def _network(
    ids: _Ids,
    addresses: _Addresses,
    rng: random.Random,
    zone: ApiObject,
    owner: Owner,
    group: int,
    redundant: bool,
    created: datetime,
    vpc: ApiObject | None,
    tier: int,
) -> ApiObject:
    subnet = addresses.guest_subnet()
    vlan = 1000 + (group * 5 + tier) % 3000
    offering = _TIER_OFFERING if vpc else (_REDUNDANT_OFFERING if redundant else _ISOLATED_OFFERING)
    name = f"{vpc['name']}-tier{tier + 1}" if vpc else f"net-{owner.account}-{group}"
    network: ApiObject = {
        "id": ids.uuid(),
        "name": name,
        "displaytext": name,
        "type": "Isolated",
        "traffictype": "Guest",
        "state": "Implemented",
        "cidr": f"{subnet}.0/24",
        "gateway": f"{subnet}.1",
        "netmask": "255.255.255.0",
        "networkdomain": f"cs{group:x}cloud.internal",
        "vlan": str(vlan),
        "broadcasturi": f"vlan://{vlan}",
        "broadcastdomaintype": "Vlan",
        "networkofferingid": offering[0],
        "networkofferingname": offering[1],
        "redundantrouter": redundant,
        "restartrequired": rng.random() < 0.02,
        "egressdefaultpolicy": False,
        "ispersistent": False,
        "issystem": False,
        "acltype": "Account",
        "canusefordeploy": True,
        "specifyipranges": False,
        "service": _TIER_SERVICES if vpc else _ISOLATED_SERVICES,
        "dns1": zone["dns1"],
        "dns2": zone["dns2"],
        "zoneid": zone["id"],
        "zonename": zone["name"],
        **owner.fields(),
        "created": format_date(created),
        "displaynetwork": True,
        "hasannotations": False,
    }
    network["related"] = network["id"]
    if vpc:
        network["vpcid"] = vpc["id"]
        network["vpcname"] = vpc["name"]
        network["aclid"] = "f0a1b2c3-0000-4000-8000-0000000acl01"
        network["aclname"] = "default_allow"
    return network


def _vpc(
    ids: _Ids,
    addresses: _Addresses,
    rng: random.Random,
    zone: ApiObject,
    owner: Owner,
    group: int,
    redundant: bool,
    created: datetime,
    version: str,
) -> ApiObject:
    offering = _REDUNDANT_VPC_OFFERING if redundant else _VPC_OFFERING
    name = f"vpc-{owner.account}-{group}"
    return {
        "id": ids.uuid(),
        "name": name,
        "displaytext": name,
        "cidr": "10.0.0.0/8",
        "state": "Enabled",
        "zoneid": zone["id"],
        "zonename": zone["name"],
        "vpcofferingid": offering[0],
        "vpcofferingname": offering[1],
        "redundantvpcrouter": redundant,
        "restartrequired": rng.random() < 0.02,
        "networkdomain": f"cs{group:x}cloud.internal",
        "publicmtu": 1500,
        "distributedvpcrouter": False,
        "regionlevelvpc": False,
        "fordisplay": True,
        **owner.fields(),
        "created": format_date(created),
        "hasannotations": False,
    }


@dataclass
class LabObjects:
    """What the lab file declares, in API shapes, plus every value the synthetic fleet must avoid."""

    fleet: Fleet
    taken: set[str]


def load_lab_file(path: Path) -> LabObjects:
    """Read the lab's JSON file; raises ValueError with a readable reason when it is malformed."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read lab file {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"lab file {path} must hold a JSON object")
    lists: dict[str, list[ApiObject]] = {}
    for key in ("zones", "hosts", "networks", "vpcs", "routers", "templates"):
        items = raw.get(key, [])
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ValueError(f"lab file {path}: {key!r} must be a list of objects")
        lists[key] = items
    fleet = Fleet(
        zones=lists["zones"],
        hosts=lists["hosts"],
        networks=lists["networks"],
        vpcs=lists["vpcs"],
        routers=[SimRouter(dict(r), synthetic=False) for r in lists["routers"]],
        templates=lists["templates"],
    )
    taken: set[str] = set()
    _collect_strings(raw, taken)
    return LabObjects(fleet=fleet, taken=taken)


def _collect_strings(value: Any, into: set[str]) -> None:
    if isinstance(value, str):
        into.add(value)
    elif isinstance(value, dict):
        for item in value.values():
            _collect_strings(item, into)
    elif isinstance(value, list):
        for item in value:
            _collect_strings(item, into)
