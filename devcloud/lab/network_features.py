"""IPv6, an egress rule with IP sets, and BGP on the lab's first isolated router, as a 4.18–4.20 VR has them.

One router carries what only some real networks have, so that the rules about them can be
proven on real software while every other lab router stays a plain IPv4 VR:

- an IPv6 guest prefix (ULA, fd00::/8, only inside the lab's namespaces) on the guest NIC,
  the nftables table `ip6 ip6_firewall` with the base chains `fw_input` (policy drop) and
  `fw_forward` (policy accept) jumping to the guest chains `fw_chain_egress` and
  `fw_chain_ingress` (the names CloudStack's IPv6 tests read with `nft list chain`), and
  radvd advertising the prefix from a radvd.conf laid out as `radvd.conf.tmpl`;
- an egress firewall rule with a source CIDR, laid out as configure.py's CsAcl.AclIP does:
  the `hash:net` sets `sourceCidrIpset-<id>` and `destCidrIpset-<id>`, the `-m set
  --match-set` rule at the top of FW_EGRESS_RULES, and the rule in the firewallrules databag;
- BGP as CsBgpPeers configures a 4.20 routed network (`/etc/frr/frr.conf`, bgpd), peering
  with an upstream bgpd that runs in the lab's switch namespace on the public gateway address.

Everything is started through argv lists (no shell text is built from values), and `down`
removes it with the namespaces: the switch namespace's bgpd dies with it.
"""

from __future__ import annotations

import ipaddress
import json
import time
from pathlib import Path

from devcloud.lab.state import lab_dir
from devcloud.lab.system_commands import LabCommandError, netns_path, run, run_inside, write_inside
from devcloud.lab.topology import PUBLIC_GATEWAY, LabPlan, Router

EGRESS_RULE_ID = 41
EGRESS_PORT = 25
NETWORK_AS = 65010
UPSTREAM_AS = 65000
RADVD_CONF = "/etc/radvd.conf"
RADVD_PID = "/run/radvd.pid"
FRR_CONF = "/etc/frr/frr.conf"
FRR_RUN = "/run/frr"
FIREWALL_TABLE = "ip6_firewall"
SOURCE_SET = f"sourceCidrIpset-{EGRESS_RULE_ID}"
DEST_SET = f"destCidrIpset-{EGRESS_RULE_ID}"
BGPD = "/usr/lib/frr/bgpd"


def features_router(plan: LabPlan) -> Router | None:
    """The router that carries IPv6, the egress IP sets and BGP: the lab's first isolated router."""
    return next((router for router in plan.routers if router.kind == "isolated"), None)


def ipv6_prefix(plan: LabPlan) -> ipaddress.IPv6Network:
    """The guest network's IPv6 prefix: a ULA /64 named after the lab's block."""
    return ipaddress.IPv6Network(f"fd00:198:{plan.block}::/64")


def ipv6_gateway(plan: LabPlan) -> str:
    """The router's guest gateway address in the IPv6 prefix (the network's ip6gateway)."""
    return str(ipv6_prefix(plan)[1])


def egress_source_cidr(router: Router) -> str:
    """The source CIDR of the lab's egress rule: the first quarter of the guest network."""
    guest = ipaddress.IPv4Network(router.guest_nics()[0].cidr)
    return str(next(guest.subnets(new_prefix=guest.prefixlen + 2)))


def ip6_firewall_ruleset(plan: LabPlan, router: Router) -> str:
    """The nft input for table ip6 ip6_firewall: base chains, then the guest chains with egress allowed."""
    prefix = ipv6_prefix(plan)
    guest = router.guest_nics()[0].device
    return "\n".join(
        [
            f"table ip6 {FIREWALL_TABLE} {{",
            "    chain fw_input {",
            "        type filter hook input priority 0; policy drop;",
            "        ct state established,related accept",
            '        iifname "lo" accept',
            "        icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem, "
            "echo-request, echo-reply, nd-router-solicit, nd-router-advert, nd-neighbor-solicit, "
            "nd-neighbor-advert } accept",
            f'        iifname "{guest}" ip6 saddr {prefix} udp dport 53 accept',
            f'        iifname "{guest}" ip6 saddr {prefix} tcp dport 53 accept',
            "    }",
            "    chain fw_forward {",
            "        type filter hook forward priority 0; policy accept;",
            "        ct state established,related accept",
            f"        ip6 saddr {prefix} jump fw_chain_egress",
            f"        ip6 daddr {prefix} jump fw_chain_ingress",
            "    }",
            "    chain fw_chain_egress {",
            "        counter accept",
            "    }",
            "    chain fw_chain_ingress {",
            "        counter drop",
            "    }",
            "}",
            "",
        ]
    )


def stale_prefix(plan: LabPlan) -> ipaddress.IPv6Network:
    """Another /64 than the guest network's: what radvd.conf holds when it was not rewritten after a change."""
    return ipaddress.IPv6Network(f"fd00:198:{plan.block}:ffff::/64")


def radvd_conf(plan: LabPlan, router: Router, prefix: ipaddress.IPv6Network | None = None) -> str:
    """radvd.conf as CloudStack renders radvd.conf.tmpl (no RDNSS: the network has no IPv6 DNS set)."""
    return "\n".join(
        [
            f"interface {router.guest_nics()[0].device}",
            "{",
            "    AdvSendAdvert on;",
            "    MinRtrAdvInterval 5;",
            "    MaxRtrAdvInterval 15;",
            f"    prefix {prefix or ipv6_prefix(plan)}",
            "    {",
            "        AdvOnLink on;",
            "        AdvAutonomous on;",
            "    };",
            "",
            "};",
            "",
        ]
    )


def firewall_rules_databag(router: Router) -> dict[str, object]:
    """The firewallrules databag (merge.py: rules keyed by id) holding the lab's egress rule."""
    return {
        "id": "firewallrules",
        str(EGRESS_RULE_ID): {
            "already_added": False,
            "default_egress_policy": True,
            "dest_cidr_list": [],
            "id": EGRESS_RULE_ID,
            "protocol": "tcp",
            "purpose": "Firewall",
            "revoked": False,
            "source_cidr_list": [egress_source_cidr(router)],
            "src_ip": "",
            "src_port_range": [EGRESS_PORT, EGRESS_PORT],
            "traffic_type": "Egress",
        },
    }


def egress_rule(router: Router) -> list[str]:
    """The FW_EGRESS_RULES rule CsAcl.AclIP inserts: with default egress allow, a rule's action is DROP."""
    return [
        "-I", "FW_EGRESS_RULES", "-m", "set", "--match-set", SOURCE_SET, "src",
        "-p", "tcp", "-m", "tcp", "--dport", str(EGRESS_PORT), "-j", "DROP",
    ]  # fmt: skip


def frr_conf(router: Router) -> str:
    """/etc/frr/frr.conf as CsBgpPeers writes it for one IPv4 peer (the upstream on the public gateway)."""
    guest_cidr = router.guest_nics()[0].cidr
    peer = PUBLIC_GATEWAY
    return "\n".join(
        [
            "frr defaults traditional",
            f"hostname {router.name}",
            "service integrated-vtysh-config",
            "ip nht resolve-via-default",
            "ipv6 nht resolve-via-default",
            "ip prefix-list all-v4 seq 1 permit any",
            "ip prefix-list default-v4 seq 1 permit 0.0.0.0/0",
            "ipv6 prefix-list all-v6 seq 1 permit any",
            "ipv6 prefix-list default-v6 seq 1 permit ::/0",
            f"ip prefix-list local-v4 seq 1 permit {guest_cidr}",
            f"router bgp {NETWORK_AS}",
            f" bgp router-id {router.public.ipaddress}",
            f" neighbor {peer} remote-as {UPSTREAM_AS}",
            " address-family ipv4 unicast",
            f"  neighbor {peer} route-map upstream-v4-in in",
            f"  neighbor {peer} route-map upstream-v4-out out",
            f"  neighbor {peer} soft-reconfiguration inbound",
            f"  network {guest_cidr}",
            " exit-address-family",
            "route-map upstream-v4-in permit 10",
            "  match ip address prefix-list default-v4",
            "route-map upstream-v4-in deny 1000",
            "  match ip address prefix-list all-v4",
            "route-map upstream-v4-out permit 10",
            "  match ip address prefix-list local-v4",
            "route-map upstream-v4-out deny 1000",
            "  match ip address prefix-list all-v4",
            "line vty",
            "",
        ]
    )


def upstream_dir(plan: LabPlan) -> Path:
    """Where the upstream peer's configuration, pid file and vty socket live (the lab's directory)."""
    return lab_dir(plan.name) / "bgp-upstream"


def upstream_conf(router: Router) -> str:
    """The upstream router's bgpd configuration: it peers with the VR and retries quickly after a drop."""
    return "\n".join(
        [
            "frr defaults traditional",
            "hostname lab-upstream",
            f"router bgp {UPSTREAM_AS}",
            f" bgp router-id {PUBLIC_GATEWAY}",
            " no bgp ebgp-requires-policy",
            f" neighbor {router.public.ipaddress} remote-as {NETWORK_AS}",
            f" neighbor {router.public.ipaddress} timers connect 5",
            "line vty",
            "",
        ]
    )


def start_radvd(namespace: str, mount_file: Path) -> None:
    """Start radvd inside the router on its radvd.conf (it daemonizes and writes its pid file)."""
    run_inside(
        namespace, mount_file, ["/usr/sbin/radvd", "-C", RADVD_CONF, "-p", RADVD_PID, "-m", "syslog"], timeout=30
    )


def load_ip6_firewall(plan: LabPlan, router: Router, namespace: str, mount_file: Path) -> None:
    """Create table ip6 ip6_firewall as the VR's nftables IPv6 firewall has it."""
    run_inside(namespace, mount_file, ["nft", "-f", "-"], stdin=ip6_firewall_ruleset(plan, router).encode())


def fill_source_set(router: Router, namespace: str, mount_file: Path) -> None:
    """Add the egress rule's source CIDRs to its set (`ipset add`, as CsAcl does)."""
    run_inside(namespace, mount_file, ["ipset", "add", "-exist", SOURCE_SET, egress_source_cidr(router)])


def start_vr_bgpd(namespace: str, mount_file: Path) -> None:
    """Start bgpd inside the router on /etc/frr/frr.conf, its vty socket where vtysh looks (/run/frr)."""
    run_inside(namespace, mount_file, ["mkdir", "-p", FRR_RUN])
    run_inside(
        namespace,
        mount_file,
        [BGPD, "-d", "-Z", "-S", "-n", "-u", "root", "-g", "root", "-f", FRR_CONF, "-i", f"{FRR_RUN}/bgpd.pid",
         "--vty_socket", FRR_RUN],
        timeout=30,
    )  # fmt: skip


def start_upstream_bgpd(plan: LabPlan) -> None:
    """Start the upstream peer's bgpd in the switch namespace, where the public gateway address lives."""
    directory = upstream_dir(plan)
    run(
        ["nsenter", f"--net={netns_path(plan.switch_namespace)}", "--", BGPD, "-d", "-Z", "-S", "-n",
         "-u", "root", "-g", "root", "-f", str(directory / "frr.conf"), "-i", str(directory / "bgpd.pid"),
         "--vty_socket", str(directory)],
        timeout=30,
    )  # fmt: skip


def upstream_pid(plan: LabPlan) -> int | None:
    """The upstream bgpd's pid when it runs."""
    try:
        pid = int((upstream_dir(plan) / "bgpd.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def bgp_state(namespace: str, mount_file: Path) -> str:
    """The state the router's bgpd reports for the upstream peer ("" when it does not answer)."""
    output = run_inside(namespace, mount_file, ["vtysh", "-c", "show bgp summary json"], check=False)
    try:
        peers = json.loads(output).get("ipv4Unicast", {}).get("peers", {})
    except (ValueError, AttributeError):
        return ""
    return str(peers.get(PUBLIC_GATEWAY, {}).get("state", ""))


def reconnect_bgp(namespace: str, mount_file: Path) -> None:
    """Make the router's bgpd try its peer now instead of at its next connect-retry (120 s by default).

    The upstream cannot open the session itself: the VR's ingress firewall (mangle
    FIREWALL_<public ip>) drops what is not forwarded, so the VR always connects out.
    """
    run_inside(namespace, mount_file, ["vtysh", "-c", f"clear bgp {PUBLIC_GATEWAY}"])


def wait_for_bgp(namespace: str, mount_file: Path, state: str, timeout: float = 30.0) -> None:
    """Wait until the router's bgpd reports the upstream peer in `state` (Established after a start)."""
    deadline = time.monotonic() + timeout
    while bgp_state(namespace, mount_file) != state:
        if time.monotonic() > deadline:
            raise LabCommandError(f"BGP peer {PUBLIC_GATEWAY} not {state} within {timeout:.0f}s")
        time.sleep(0.5)


def furnish(plan: LabPlan, router: Router, mount_file: Path) -> None:
    """Give the features router its IPv6 network, egress IP sets and BGP peering; other routers are left alone."""
    if router is not features_router(plan):
        return
    namespace = router.namespace
    guest = router.guest_nics()[0].device
    run_inside(namespace, mount_file, ["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"])
    run_inside(namespace, mount_file, ["ip", "-6", "addr", "add", f"{ipv6_gateway(plan)}/64", "dev", guest, "nodad"])
    load_ip6_firewall(plan, router, namespace, mount_file)
    write_inside(namespace, mount_file, RADVD_CONF, radvd_conf(plan, router).encode())
    start_radvd(namespace, mount_file)

    databag = json.dumps(firewall_rules_databag(router), indent=4, sort_keys=True) + "\n"
    write_inside(namespace, mount_file, "/etc/cloudstack/firewallrules.json", databag.encode())
    for name in (SOURCE_SET, DEST_SET):
        run_inside(namespace, mount_file, ["ipset", "create", name, "hash:net"])
    fill_source_set(router, namespace, mount_file)
    run_inside(namespace, mount_file, ["iptables", *egress_rule(router)])

    run_inside(namespace, mount_file, ["mkdir", "-p", "/etc/frr"])
    write_inside(namespace, mount_file, FRR_CONF, frr_conf(router).encode())
    write_inside(namespace, mount_file, "/etc/frr/daemons", b"bgpd=yes\nospfd=no\nospf6d=no\nripd=no\nripngd=no\n")
    directory = upstream_dir(plan)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "frr.conf").write_text(upstream_conf(router))
    start_upstream_bgpd(plan)
    start_vr_bgpd(namespace, mount_file)
    wait_for_bgp(namespace, mount_file, "Established")
