"""iptables rules for lab routers, laid out as CloudStack's CsAddress.py and configure.py lay them out.

The result is iptables-restore input, in the order and the canonical form `iptables-save` prints
(4.18-4.20 systemvm scripts; CLOUDSTACK.md §3.5):

- isolated routers (CsAddress.fw_router, setup_router_control): filter policies INPUT DROP /
  FORWARD DROP / OUTPUT ACCEPT; per-NIC RELATED,ESTABLISHED and the VRRP/conntrackd multicast
  accepts; DHCP, DNS, userdata and password-server accepts from each guest CIDR; CsApache's 80/443
  accepts on each guest address; 3922 only on the control NIC; FW_OUTBOUND → FW_EGRESS_RULES; in
  mangle the ingress firewall FIREWALL_<pubip> (RELATED,ESTABLISHED, the user's ingress rules as
  ACCEPT, a final DROP) and VPN_<pubip> with only ESTABLISHED and RETURN (remote-access VPN adds
  ah/esp when enabled), the CONNMARK restore and the public NIC's CONNMARK set; SNAT --to-source
  (never MASQUERADE) in nat;
- port forwarding (configure.py forward_vr): DNAT on the public and the guest NIC, OUTPUT DNAT,
  the hairpin SNAT to the router's guest address, the MARK and CONNMARK --save-mark rules in nat
  PREROUTING and the filter FORWARD accept;
- the load balancer (CsLoadBalancer): an INPUT accept for each `ip:port` haproxy binds;
- VPC routers (CsAddress.fw_vpcrouter): one global RELATED,ESTABLISHED accept in INPUT and in
  FORWARD, ACL_INBOUND_<tier> in filter and ACL_OUTBOUND_<tier> in mangle (each starting with the
  VRRP and conntrackd multicast accepts), a CONNMARK restore per tier, NETWORK_STATS_eth1 per tier
  CIDR, VPN_STATS_eth1 in mangle, and the VPC's `-s vpc ! -d vpc` accept as FORWARD's third rule.
"""

from __future__ import annotations

from devcloud.lab.topology import Nic, Router

# haproxy's listen port on the public address of a router that balances load (rootfs haproxy.cfg.tmpl).
LB_PORT = 80
CONNMARK_RESTORE = "-j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff"
CONNMARK_SAVE = "-j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff"


def build_ruleset(router: Router) -> str:
    """The full iptables-restore text for one router."""
    if router.kind == "vpc":
        return _vpc_ruleset(router)
    return _isolated_ruleset(router)


def snat_rule(router: Router) -> str:
    """The source-NAT rule (nat POSTROUTING) exactly as iptables-save prints it."""
    # CsAddress writes the VPC rule as `-j SNAT -o eth1 --to-source`, but iptables-save prints
    # both kinds in this canonical order, which is what a probe reads back.
    public = router.public
    return f"-A POSTROUTING -o {public.device} -j SNAT --to-source {public.ipaddress}"


def device_mark(device: str) -> str:
    """The mark CsAddress and configure.py give a device's traffic: hex(100 + N), 0x66 for eth2."""
    return hex(100 + int(device[3:]))


def ingress_ports(router: Router) -> list[int]:
    """Public ports the ingress firewall opens: each port forward's, and the load balancer's.

    CloudStack lets nothing in on a public address of an isolated network without a firewall
    rule, so a port forward or a load-balancing rule comes with its ingress rule in
    firewallrules.json, which CsAcl turns into `-A FIREWALL_<ip> ... -j ACCEPT`.
    """
    ports = [port for port, _, _ in router.port_forwards]
    if router.runs_haproxy:
        ports.append(LB_PORT)
    return ports


def _apache_accepts(guests: tuple[Nic, ...]) -> list[str]:
    # CsApache.setup adds these at the front of INPUT for every guest address it serves.
    rules = []
    for guest in guests:
        for port in (80, 443):
            rules.append(
                f"-A INPUT -d {guest.ipaddress}/32 -i {guest.device} -p tcp -m tcp --dport {port} "
                "-m state --state NEW -j ACCEPT"
            )
    return rules


def _guest_service_accepts(guest: Nic) -> list[str]:
    return [
        f"-A INPUT -i {guest.device} -p udp -m udp --dport 67 -j ACCEPT",
        f"-A INPUT -s {guest.cidr} -i {guest.device} -p udp -m udp --dport 53 -j ACCEPT",
        f"-A INPUT -s {guest.cidr} -i {guest.device} -p tcp -m tcp --dport 53 -j ACCEPT",
        f"-A INPUT -s {guest.cidr} -i {guest.device} -p tcp -m tcp --dport 80 -m state --state NEW -j ACCEPT",
        f"-A INPUT -s {guest.cidr} -i {guest.device} -p tcp -m tcp --dport 8080 -m state --state NEW -j ACCEPT",
    ]


def _load_balancer_accepts(router: Router) -> list[str]:
    if not router.runs_haproxy:
        return []
    return [f"-A INPUT -d {router.public.ipaddress}/32 -p tcp -m tcp --dport {LB_PORT} -m state --state NEW -j ACCEPT"]


def _isolated_ruleset(router: Router) -> str:
    guest = router.guest_nics()[0]
    control = router.control
    public = router.public
    pub_ip = public.ipaddress
    forwards = router.port_forwards
    filter_rules = [
        "*filter",
        ":INPUT DROP [0:0]",
        ":FORWARD DROP [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":FW_EGRESS_RULES - [0:0]",
        ":FW_OUTBOUND - [0:0]",
        ":NETWORK_STATS - [0:0]",
        "-A INPUT -j NETWORK_STATS",
        *_apache_accepts((guest,)),
        "-A INPUT -d 224.0.0.18/32 -j ACCEPT",
        "-A INPUT -d 225.0.0.50/32 -j ACCEPT",
        # fw_router runs once per NIC of ips.json: each adds its own RELATED,ESTABLISHED accept.
        *[f"-A INPUT -i {nic.device} -m state --state RELATED,ESTABLISHED -j ACCEPT" for nic in router.nics],
        "-A INPUT -p icmp -j ACCEPT",
        "-A INPUT -i lo -j ACCEPT",
        *_guest_service_accepts(guest),
        *_load_balancer_accepts(router),
        f"-A INPUT -i {control.device} -p tcp -m tcp --dport 3922 -m state --state NEW,ESTABLISHED -j ACCEPT",
        "-A FORWARD -j NETWORK_STATS",
        # As fw_router writes it: the guest NIC toward eth1 (the control NIC of an isolated router).
        f"-A FORWARD -i {guest.device} -o eth1 -m state --state RELATED,ESTABLISHED -j ACCEPT",
        f"-A FORWARD -i {guest.device} -o {guest.device} -m state --state NEW -j ACCEPT",
        f"-A FORWARD -i {guest.device} -o {guest.device} -m state --state RELATED,ESTABLISHED -j ACCEPT",
        f"-A FORWARD -i {public.device} -o {guest.device} -m state --state RELATED,ESTABLISHED -j ACCEPT",
        f"-A FORWARD -i {guest.device} -o {public.device} -j FW_OUTBOUND",
        *[
            f"-A FORWARD -i {public.device} -o {guest.device} -p tcp -m tcp --dport {vm_port} "
            "-m state --state NEW,ESTABLISHED -j ACCEPT"
            for _, _, vm_port in forwards
        ],
        "-A OUTPUT -j NETWORK_STATS",
        "-A FW_EGRESS_RULES -j ACCEPT",
        "-A FW_OUTBOUND -m state --state RELATED,ESTABLISHED -j ACCEPT",
        "-A FW_OUTBOUND -j FW_EGRESS_RULES",
        f"-A NETWORK_STATS -i {guest.device} -o {public.device}",
        f"-A NETWORK_STATS -i {public.device} -o {guest.device}",
        f"-A NETWORK_STATS ! -i {guest.device} -o {public.device} -p tcp",
        f"-A NETWORK_STATS -i {public.device} ! -o {guest.device} -p tcp",
        "COMMIT",
    ]
    mangle_rules = [
        "*mangle",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":FORWARD ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
        f":FIREWALL_{pub_ip} - [0:0]",
        f":VPN_{pub_ip} - [0:0]",
        f"-A PREROUTING -d {pub_ip}/32 -j FIREWALL_{pub_ip}",
        f"-A PREROUTING -d {pub_ip}/32 -j VPN_{pub_ip}",
        f"-A PREROUTING -m state --state RELATED,ESTABLISHED {CONNMARK_RESTORE}",
        f"-A PREROUTING -i {public.device} -m state --state NEW -j CONNMARK --set-xmark "
        f"{device_mark(public.device)}/0xffffffff",
        "-A POSTROUTING -p udp -m udp --dport 68 -j CHECKSUM --checksum-fill",
        f"-A FIREWALL_{pub_ip} -m state --state RELATED,ESTABLISHED -j ACCEPT",
        *[f"-A FIREWALL_{pub_ip} -p tcp -m tcp --dport {port} -j ACCEPT" for port in ingress_ports(router)],
        f"-A FIREWALL_{pub_ip} -j DROP",
        f"-A VPN_{pub_ip} -m state --state RELATED,ESTABLISHED -j ACCEPT",
        f"-A VPN_{pub_ip} -j RETURN",
        "COMMIT",
    ]
    nat_rules = [
        "*nat",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
    ]
    match = "-p tcp -m tcp --dport"
    for port, vm, vm_port in forwards:
        on_public = f"-A PREROUTING -d {pub_ip}/32 -i {public.device} {match} {port}"
        nat_rules += [
            f"{on_public} -j DNAT --to-destination {vm}:{vm_port}",
            f"-A PREROUTING -d {pub_ip}/32 -i {guest.device} {match} {port} -j DNAT --to-destination {vm}:{vm_port}",
            f"{on_public} -j MARK --set-xmark {device_mark(public.device)}/0xffffffff",
            f"{on_public} -m state --state NEW {CONNMARK_SAVE}",
        ]
    nat_rules += [
        f"-A OUTPUT -d {pub_ip}/32 {match} {port} -j DNAT --to-destination {vm}:{vm_port}"
        for port, vm, vm_port in forwards
    ]
    # forward_vr's hairpin SNAT goes to the router's own guest address (getGuestIp), not a VIP.
    nat_rules += [
        f"-A POSTROUTING -s {guest.cidr} -d {vm}/32 -o {guest.device} {match} {vm_port} "
        f"-j SNAT --to-source {guest.ipaddress}"
        for _, vm, vm_port in forwards
    ]
    nat_rules += [snat_rule(router), "COMMIT"]
    return "\n".join(filter_rules + mangle_rules + nat_rules) + "\n"


def _vpc_ruleset(router: Router) -> str:
    control = router.control
    public = router.public
    pub = public.device
    tiers = router.guest_nics()
    vpc_cidr = vpc_cidr_of(tiers)
    forward = [
        "-A FORWARD -j NETWORK_STATS",
        f"-A FORWARD -j NETWORK_STATS_{pub}",
        "-A FORWARD -m state --state RELATED,ESTABLISHED -j ACCEPT",
        *[f"-A FORWARD -d {tier.cidr} -o {tier.device} -j ACL_INBOUND_{tier.device}" for tier in tiers],
    ]
    # The source-NAT public IP's accept goes in at position 3 (`self.fw.append(["filter", 3, ...])`).
    forward.insert(2, f"-A FORWARD -s {vpc_cidr} ! -d {vpc_cidr} -j ACCEPT")
    filter_rules = [
        "*filter",
        ":INPUT DROP [0:0]",
        ":FORWARD DROP [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        *[f":ACL_INBOUND_{tier.device} - [0:0]" for tier in tiers],
        ":NETWORK_STATS - [0:0]",
        f":NETWORK_STATS_{pub} - [0:0]",
        "-A INPUT -j NETWORK_STATS",
        *_apache_accepts(tiers),
        *[rule for tier in tiers for rule in _guest_service_accepts(tier)],
        "-A INPUT -d 224.0.0.18/32 -j ACCEPT",
        "-A INPUT -d 225.0.0.50/32 -j ACCEPT",
        "-A INPUT -p icmp -j ACCEPT",
        "-A INPUT -i lo -j ACCEPT",
        f"-A INPUT -i {control.device} -p tcp -m tcp --dport 3922 -m state --state NEW,ESTABLISHED -j ACCEPT",
        "-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT",
        *forward,
        "-A OUTPUT -j NETWORK_STATS",
    ]
    for tier in tiers:
        filter_rules += [
            f"-A ACL_INBOUND_{tier.device} -d 224.0.0.18/32 -j ACCEPT",
            f"-A ACL_INBOUND_{tier.device} -d 225.0.0.50/32 -j ACCEPT",
            # The tier's network ACL (networkacl.json ingress_rules): ssh from anywhere.
            f"-A ACL_INBOUND_{tier.device} -p tcp -m tcp --dport 22 -j ACCEPT",
            f"-A ACL_INBOUND_{tier.device} -j DROP",
        ]
    # fw_vpcrouter's accounting rules name eth0 and eth2 literally, whatever they are on a VPC router.
    filter_rules += [
        "-A NETWORK_STATS -i eth0 -o eth2 -p tcp",
        "-A NETWORK_STATS -i eth2 -o eth0 -p tcp",
        "-A NETWORK_STATS ! -i eth0 -o eth2 -p tcp",
        "-A NETWORK_STATS -i eth2 ! -o eth0 -p tcp",
    ]
    for tier in tiers:
        filter_rules += [
            f"-A NETWORK_STATS_{pub} -s {tier.cidr} -o {pub}",
            f"-A NETWORK_STATS_{pub} -d {tier.cidr} -i {pub}",
        ]
    filter_rules.append("COMMIT")
    mangle_rules = [
        "*mangle",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":FORWARD ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
        *[f":ACL_OUTBOUND_{tier.device} - [0:0]" for tier in tiers],
        f":VPN_STATS_{pub} - [0:0]",
        *[f"-A PREROUTING -i {tier.device} -m state --state RELATED,ESTABLISHED {CONNMARK_RESTORE}" for tier in tiers],
        *[
            f"-A PREROUTING -s {tier.cidr} ! -d {tier.ipaddress}/32 -i {tier.device} -m state --state NEW "
            f"-j ACL_OUTBOUND_{tier.device}"
            for tier in tiers
        ],
        f"-A FORWARD -j VPN_STATS_{pub}",
        "-A POSTROUTING -p udp -m udp --dport 68 -j CHECKSUM --checksum-fill",
    ]
    for tier in tiers:
        mangle_rules += [
            f"-A ACL_OUTBOUND_{tier.device} -d 224.0.0.18/32 -j ACCEPT",
            f"-A ACL_OUTBOUND_{tier.device} -d 225.0.0.50/32 -j ACCEPT",
            # The tier's network ACL (networkacl.json egress_rules): everything out.
            f"-A ACL_OUTBOUND_{tier.device} -j ACCEPT",
        ]
    mangle_rules += [
        f"-A VPN_STATS_{pub} -o {pub} -m mark --mark 0x525",
        f"-A VPN_STATS_{pub} -i {pub} -m mark --mark 0x524",
        "COMMIT",
    ]
    nat_rules = [
        "*nat",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
        snat_rule(router),
        "COMMIT",
    ]
    return "\n".join(filter_rules + mangle_rules + nat_rules) + "\n"


def vpc_cidr_of(tiers: tuple[Nic, ...]) -> str:
    """The VPC CIDR around the tiers: lab VPCs are a /24 split into /26 tiers."""
    first = tiers[0].cidr.split("/")[0].rsplit(".", 1)[0]
    return f"{first}.0/24"
