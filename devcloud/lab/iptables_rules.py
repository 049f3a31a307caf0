"""iptables rules for lab routers, laid out as a CloudStack VR lays them out (CLOUDSTACK.md §3.5).

The result is iptables-restore input: filter policies INPUT DROP / FORWARD DROP / OUTPUT ACCEPT,
3922 accepted only on the control NIC, the isolated egress chains FW_OUTBOUND → FW_EGRESS_RULES
in filter, the ingress firewall FIREWALL_<pubip> and VPN_<pubip> in mangle, SNAT --to-source
(never MASQUERADE), port-forward DNAT with hairpin, NETWORK_STATS accounting, and for VPC
routers ACL_INBOUND_ethN in filter and ACL_OUTBOUND_ethN in mangle.
"""

from __future__ import annotations

from devcloud.lab.topology import Nic, Router


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


def _input_common(control: Nic, guests: tuple[Nic, ...], public: Nic) -> list[str]:
    rules = [
        "-A INPUT -d 224.0.0.18/32 -j ACCEPT",
        "-A INPUT -d 225.0.0.50/32 -j ACCEPT",
        "-A INPUT -p icmp -j ACCEPT",
        "-A INPUT -i lo -j ACCEPT",
        "-A INPUT -j NETWORK_STATS",
    ]
    for nic in (*guests, control, public):
        rules.append(f"-A INPUT -i {nic.device} -m state --state RELATED,ESTABLISHED -j ACCEPT")
    for guest in guests:
        rules += [
            f"-A INPUT -i {guest.device} -p udp -m udp --dport 67 -j ACCEPT",
            f"-A INPUT -s {guest.cidr} -i {guest.device} -p udp -m udp --dport 53 -j ACCEPT",
            f"-A INPUT -s {guest.cidr} -i {guest.device} -p tcp -m tcp --dport 53 -j ACCEPT",
            f"-A INPUT -s {guest.cidr} -i {guest.device} -p tcp -m tcp --dport 80 -m state --state NEW -j ACCEPT",
            f"-A INPUT -s {guest.cidr} -i {guest.device} -p tcp -m tcp --dport 8080 -m state --state NEW -j ACCEPT",
        ]
    rules.append(f"-A INPUT -i {control.device} -p tcp -m tcp --dport 3922 -m state --state NEW,ESTABLISHED -j ACCEPT")
    return rules


def _accounting(guest: Nic, public: Nic) -> list[str]:
    return [
        "-A FORWARD -j NETWORK_STATS",
        "-A OUTPUT -j NETWORK_STATS",
        f"-A NETWORK_STATS -i {guest.device} -o {public.device}",
        f"-A NETWORK_STATS -i {public.device} -o {guest.device}",
        f"-A NETWORK_STATS ! -i {guest.device} -o {public.device} -p tcp",
        f"-A NETWORK_STATS -i {public.device} ! -o {guest.device} -p tcp",
    ]


def _isolated_ruleset(router: Router) -> str:
    guest = router.guest_nics()[0]
    control = router.control
    public = router.public
    pub_ip = public.ipaddress
    filter_rules = [
        "*filter",
        ":INPUT DROP [0:0]",
        ":FORWARD DROP [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":FW_EGRESS_RULES - [0:0]",
        ":FW_OUTBOUND - [0:0]",
        ":NETWORK_STATS - [0:0]",
        *_input_common(control, (guest,), public),
        f"-A FORWARD -i {guest.device} -o {guest.device} -m state --state NEW -j ACCEPT",
        f"-A FORWARD -i {public.device} -o {guest.device} -m state --state RELATED,ESTABLISHED -j ACCEPT",
        f"-A FORWARD -i {guest.device} -o {public.device} -j FW_OUTBOUND",
        *[
            f"-A FORWARD -d {vm}/32 -i {public.device} -o {guest.device} -p tcp -m tcp --dport {vm_port} "
            "-m state --state NEW -j ACCEPT"
            for _, vm, vm_port in router.port_forwards
        ],
        *_accounting(guest, public),
        "-A FW_EGRESS_RULES -j ACCEPT",
        "-A FW_OUTBOUND -m state --state RELATED,ESTABLISHED -j ACCEPT",
        "-A FW_OUTBOUND -j FW_EGRESS_RULES",
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
        f":PREROUTING-{public.device}-def - [0:0]",
        f"-A PREROUTING -d {pub_ip}/32 -j VPN_{pub_ip}",
        f"-A PREROUTING -d {pub_ip}/32 -j FIREWALL_{pub_ip}",
        "-A PREROUTING -m state --state RELATED,ESTABLISHED -j CONNMARK --restore-mark --nfmask 0xffffffff "
        "--ctmask 0xffffffff",
        f"-A PREROUTING -i {public.device} -m state --state NEW -j CONNMARK --set-xmark 0x66/0xffffffff",
        "-A POSTROUTING -p udp -m udp --dport 68 -j CHECKSUM --checksum-fill",
        f"-A FIREWALL_{pub_ip} -m state --state RELATED,ESTABLISHED -j ACCEPT",
        *[f"-A FIREWALL_{pub_ip} -p tcp -m tcp --dport {port} -j RETURN" for port, _, _ in router.port_forwards],
        f"-A FIREWALL_{pub_ip} -j DROP",
        f"-A VPN_{pub_ip} -m state --state RELATED,ESTABLISHED -j ACCEPT",
        f"-A VPN_{pub_ip} -p ah -j ACCEPT",
        f"-A VPN_{pub_ip} -p esp -j ACCEPT",
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
    for port, vm, vm_port in router.port_forwards:
        nat_rules += [
            f"-A PREROUTING -d {pub_ip}/32 -i {public.device} -p tcp -m tcp --dport {port} "
            f"-j DNAT --to-destination {vm}:{vm_port}",
            f"-A PREROUTING -d {pub_ip}/32 -i {guest.device} -p tcp -m tcp --dport {port} "
            f"-j DNAT --to-destination {vm}:{vm_port}",
            f"-A OUTPUT -d {pub_ip}/32 -p tcp -m tcp --dport {port} -j DNAT --to-destination {vm}:{vm_port}",
            f"-A POSTROUTING -s {guest.cidr} -d {vm}/32 -o {guest.device} -p tcp -m tcp --dport {vm_port} "
            f"-j SNAT --to-source {guest.gateway}",
        ]
    nat_rules += [snat_rule(router), "COMMIT"]
    return "\n".join(filter_rules + mangle_rules + nat_rules) + "\n"


def _vpc_ruleset(router: Router) -> str:
    control = router.control
    public = router.public
    tiers = router.guest_nics()
    vpc_cidr = _vpc_cidr(tiers)
    filter_rules = [
        "*filter",
        ":INPUT DROP [0:0]",
        ":FORWARD DROP [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":NETWORK_STATS - [0:0]",
        f":NETWORK_STATS_{public.device} - [0:0]",
        *[f":ACL_INBOUND_{tier.device} - [0:0]" for tier in tiers],
        *_input_common(control, tiers, public),
        f"-A FORWARD -i {public.device} -m state --state RELATED,ESTABLISHED -j ACCEPT",
        *[f"-A FORWARD -d {tier.cidr} -o {tier.device} -j ACL_INBOUND_{tier.device}" for tier in tiers],
        f"-A FORWARD -s {vpc_cidr} ! -d {vpc_cidr} -j ACCEPT",
        "-A FORWARD -j NETWORK_STATS",
        "-A OUTPUT -j NETWORK_STATS",
        f"-A FORWARD -j NETWORK_STATS_{public.device}",
        f"-A NETWORK_STATS_{public.device} -o {public.device} -s {vpc_cidr}",
        f"-A NETWORK_STATS_{public.device} -i {public.device} -d {vpc_cidr}",
    ]
    for tier in tiers:
        filter_rules += [
            f"-A ACL_INBOUND_{tier.device} -d 224.0.0.18/32 -j ACCEPT",
            f"-A ACL_INBOUND_{tier.device} -d 225.0.0.50/32 -j ACCEPT",
            f"-A ACL_INBOUND_{tier.device} -p tcp -m tcp --dport 22 -j ACCEPT",
            f"-A ACL_INBOUND_{tier.device} -j DROP",
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
        *[
            f"-A PREROUTING -s {tier.cidr} ! -d {tier.ipaddress}/32 -i {tier.device} -m state --state NEW "
            f"-j ACL_OUTBOUND_{tier.device}"
            for tier in tiers
        ],
        "-A POSTROUTING -p udp -m udp --dport 68 -j CHECKSUM --checksum-fill",
        *[f"-A ACL_OUTBOUND_{tier.device} -j ACCEPT" for tier in tiers],
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


def _vpc_cidr(tiers: tuple[Nic, ...]) -> str:
    # Lab VPCs are a /24 split into /26 tiers, so the VPC CIDR is the tiers' /24.
    first = tiers[0].cidr.split("/")[0].rsplit(".", 1)[0]
    return f"{first}.0/24"
