"""Rules on DHCP and DNS: dnsmasq running where it must, leases, stale leases, VMs missing from its files.

On a redundant pair only the PRIMARY runs dnsmasq (`set_backup` stops it, §3.6), so a
BACKUP without dnsmasq is correct and gives no verdict. CloudStack's dhcp_check.py and
dns_check.py fail falsely for VMs of networks or tiers this router does not serve (§5.10):
a failure is confirmed against the router's own files and subnets before it is reported.
"""

from __future__ import annotations

import ipaddress
import re

from diagnostics.matrix.base import RouterContext, Rule, Verdict
from diagnostics.matrix.evidence import facts_of, quoted, recent_lines, verdict
from diagnostics.matrix.layout import is_standby, own_redundant_state
from diagnostics.matrix.rules.api_state import addresses_in, restart_action
from diagnostics.matrix.rules.dhcp_intent import dhcphosts_gaps, hosts_gaps
from diagnostics.probes import logs as log_kinds
from diagnostics.probes.dnsmasq import DHCPHOSTS

DNSMASQ_LOG = "/var/log/dnsmasq.log"


def _offers(ctx: RouterContext, service: str) -> bool:
    """Whether the router's network offers a service; unknown (no service list) counts as offered."""
    services = {s.lower() for s in ctx.router.network_services}
    return not services or service.lower() in services


def _dnsmasq_not_running(ctx: RouterContext) -> list[Verdict]:
    processes = facts_of(ctx, "processes")
    if processes is None or is_standby(ctx):
        return []
    if not (_offers(ctx, "Dhcp") or _offers(ctx, "Dns")):
        return []
    # A VPC router without tiers (or any router CloudStack lists without a guest NIC) serves no one yet.
    if ctx.router.nics and not any(n.traffic_type.lower() == "guest" for n in ctx.router.nics):
        return []
    dnsmasq = processes.service("dnsmasq")
    if dnsmasq.running:
        return []
    role = own_redundant_state(ctx)
    evidence = [
        "ps: no dnsmasq process" + (f" ({dnsmasq.defunct} defunct)" if dnsmasq.defunct else ""),
        f"router {ctx.router.name}" + (f", redundant state {role}" if role else ", not redundant"),
    ]
    monitor = facts_of(ctx, "logs")
    alerts = monitor.file("/var/log/routerServiceMonitor.log") if monitor is not None else None
    if alerts is not None:
        evidence += quoted([line.text for line in alerts.lines if "dnsmasq" in line.text][-3:], 3)
    # CloudStack's own service check failing for the same cause is evidence here, not a second alarm.
    for check in ctx.router.health_checks:
        if check.get("checkname") == "dhcp.service" and str(check.get("success")).lower() == "false":
            evidence.append(f"CloudStack health check dhcp.service failed: {check.get('details', '')}")
    remediation = (
        "VMs get no DHCP lease and no DNS from this router (dnsmasq serves both). 1. `systemctl restart dnsmasq` on the router and read "
        "`journalctl -u dnsmasq` / /var/log/dnsmasq.log for why it stopped (a bad line in /etc/dnsmasq.d/cloud.conf "
        "or dhcphosts.txt stops it at start). 2. If it will not stay up, re-push the configuration: "
        f"{restart_action(ctx.router)}."
    )
    return [
        verdict(
            DNSMASQ_NOT_RUNNING,
            "dnsmasq is not running: no DHCP and no DNS for the VMs",
            evidence,
            remediation,
            action="restart-service:dnsmasq",
        )
    ]


DNSMASQ_NOT_RUNNING = Rule(
    id="dnsmasq-not-running",
    category="dhcp",
    severity="critical",
    summary="dnsmasq is not running on a router that must serve DHCP and DNS, so VMs get neither (a redundant BACKUP "
    "correctly runs none).",
    remedy="Restart dnsmasq and read why it stopped; if it will not stay up, restart the network with cleanup.",
    reads=("facts:processes", "facts:vrrp", "api"),
    thresholds=(),
    check=_dnsmasq_not_running,
    also=("dns",),
)


def _leases_near_max(ctx: RouterContext) -> list[Verdict]:
    dnsmasq = facts_of(ctx, "dnsmasq")
    if dnsmasq is None or not dnsmasq.dhcp_lease_max:
        return []
    used = len(dnsmasq.leases)
    percent = 100.0 * used / dnsmasq.dhcp_lease_max
    if percent < ctx.threshold("dhcp_lease_warning_pct"):
        return []
    evidence = [
        f"{used} leases in /var/lib/misc/dnsmasq.leases of dhcp-lease-max {dnsmasq.dhcp_lease_max} ({percent:.1f} %)"
    ]
    remediation = (
        "dnsmasq refuses new leases at dhcp-lease-max. Stale leases of deleted VMs are the usual cause: compare "
        "dnsmasq.leases with /etc/dhcphosts.txt; re-push DHCP entries with "
        f"{restart_action(ctx.router)} (CsDhcp releases leases not in dhcphosts)."
    )
    return [verdict(LEASES_NEAR_MAX, f"DHCP leases at {percent:.0f} % of dhcp-lease-max", evidence, remediation)]


LEASES_NEAR_MAX = Rule(
    id="dhcp-leases-near-max",
    category="dhcp",
    severity="warning",
    summary="The lease file holds nearly dhcp-lease-max leases; new VMs will get no address.",
    remedy="Release stale leases by re-pushing DHCP entries (restart the network with cleanup).",
    reads=("facts:dnsmasq",),
    thresholds=("dhcp_lease_warning_pct",),
    check=_leases_near_max,
)


def _dnsmasq_problem_lines(ctx: RouterContext, windowed: bool = True) -> list:
    logs = facts_of(ctx, "logs")
    tail = logs.file(DNSMASQ_LOG) if logs is not None else None
    if tail is None or tail.missing:
        return []
    lines = recent_lines(tail.lines, ctx, ctx.threshold("config_error_window_hours")) if windowed else tail.lines
    return [line for line in lines if line.kind in (log_kinds.DHCP_NO_ADDRESS, log_kinds.DHCP_ADDRESS_LEASED)]


def _stale_lease(ctx: RouterContext) -> list[Verdict]:
    dnsmasq = facts_of(ctx, "dnsmasq")
    if dnsmasq is None or not dnsmasq.stale_leases:
        return []
    # The lease is a fact of now; any log line about it, however old, explains it.
    log_lines = _dnsmasq_problem_lines(ctx, windowed=False)
    verdicts = []
    for stale in dnsmasq.stale_leases:
        lease = next((x for x in dnsmasq.leases if x.ip == stale.ip and x.mac == stale.lease_mac), None)
        host = next((h for h in dnsmasq.hosts if h.ip == stale.ip), None)
        evidence = []
        if lease is not None:
            evidence.append(
                f"dnsmasq.leases: {lease.expiry} {lease.mac} {lease.ip} {lease.hostname} {lease.client_id}".rstrip()
            )
        if host is not None:
            tag = f"set:{host.tag}," if host.tag else ""
            evidence.append(f"dhcphosts.txt: {host.mac},{tag}{host.ip},{host.hostname},{host.lease_time}")
        related = [line.text for line in log_lines if stale.ip in line.text or stale.host_mac in line.text.lower()]
        evidence += quoted(related, 4)
        remediation = (
            f"dnsmasq will not give {stale.ip} to {stale.host_mac} ({stale.hostname}) while it is leased to "
            f"{stale.lease_mac} (apache/cloudstack#10436). On the router: `dhcp_release <guest dev> {stale.ip} "
            f"{stale.lease_mac}` (or remove the line from /var/lib/misc/dnsmasq.leases and restart dnsmasq), then "
            "renew DHCP on the VM."
        )
        verdicts.append(verdict(STALE_LEASE, f"stale lease holds {stale.ip} for another MAC", evidence, remediation))
    return verdicts


STALE_LEASE = Rule(
    id="dhcp-stale-lease",
    category="dhcp",
    severity="warning",
    summary="A lease holds an address that dhcphosts.txt gives to another MAC, so that VM gets no address.",
    remedy="dhcp_release the stale lease (or delete it from dnsmasq.leases and restart dnsmasq), then renew on the VM.",
    reads=("facts:dnsmasq", "facts:logs"),
    thresholds=("config_error_window_hours",),
    check=_stale_lease,
)


def _no_address(ctx: RouterContext) -> list[Verdict]:
    lines = [line for line in _dnsmasq_problem_lines(ctx) if line.kind == log_kinds.DHCP_NO_ADDRESS]
    if not lines:
        return []
    leased = [line.text for line in _dnsmasq_problem_lines(ctx) if line.kind == log_kinds.DHCP_ADDRESS_LEASED]
    evidence = [
        f"{len(lines)} 'no address available' line(s) in dnsmasq.log",
        *quoted([line.text for line in lines] + leased, 8),
    ]
    remediation = (
        "A VM asked for an address and dnsmasq had none for its MAC: its entry is missing from /etc/dhcphosts.txt "
        "(dhcp-ignore=tag:!known), or its address is leased to another MAC (see dhcp-stale-lease). Check "
        "dhcphosts.txt for the MAC; if missing, re-push DHCP entries: "
        f"{restart_action(ctx.router)}."
    )
    return [verdict(NO_ADDRESS, "DHCP requests refused: no address available", evidence, remediation)]


NO_ADDRESS = Rule(
    id="dhcp-no-address-available",
    category="dhcp",
    severity="warning",
    summary="dnsmasq.log shows `no address available` for DHCP requests in the recent window.",
    remedy="Check the MAC in dhcphosts.txt and stale leases; re-push DHCP entries.",
    reads=("facts:logs",),
    thresholds=("config_error_window_hours",),
    check=_no_address,
)


def _served_networks(ctx: RouterContext) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None:
    """The subnets this router serves DHCP on (its interface networks holding a dhcp-range), None if unknown."""
    dnsmasq, interfaces = facts_of(ctx, "dnsmasq"), facts_of(ctx, "interfaces")
    if dnsmasq is None or interfaces is None:
        return None
    networks = []
    for interface in interfaces.interfaces:
        for address in interface.ipv4:
            try:
                network = ipaddress.ip_interface(f"{address.address}/{address.prefixlen}").network
            except ValueError:
                continue
            if any(_in(r.start, network) for r in dnsmasq.ranges):
                networks.append(network)
    return networks


def _in(address: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return ipaddress.ip_address(address) in network
    except ValueError:
        return False


_DHCP_ENTRY = re.compile(
    r"(?P<mac>[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5})\s+(?P<ip>(?:\d{1,3}\.){3}\d{1,3})\s*(?P<name>[^,\s]*)"
)


def _failed_check(ctx: RouterContext, name: str) -> dict | None:
    return next(
        (dict(c) for c in ctx.router.health_checks if c.get("checkname") == name and c.get("success") is False), None
    )


def _missing_from_dhcphosts(ctx: RouterContext) -> list[Verdict]:
    check = _failed_check(ctx, "dhcp_check.py")
    if check is None:
        return []
    dnsmasq_facts = facts_of(ctx, "dnsmasq")
    if dhcphosts_gaps(ctx) or (dnsmasq_facts is not None and DHCPHOSTS in dnsmasq_facts.missing):
        # The databag comparison found the cause; the check is evidence on that finding.
        return []
    details = str(check.get("details", ""))
    header = f"dhcp_check.py failed at {check.get('lastupdated', '?')}: {details}"
    if not _offers(ctx, "Dhcp"):
        return [_false_positive(DHCP_MISSING, header, "the network offers no DHCP service")]
    entries = [(m["mac"].lower(), m["ip"], m["name"]) for m in _DHCP_ENTRY.finditer(details)]
    dnsmasq, served = facts_of(ctx, "dnsmasq"), _served_networks(ctx)
    if dnsmasq is not None and entries:
        known = {(h.mac, h.ip) for h in dnsmasq.hosts}
        entries = [e for e in entries if (e[0], e[1]) not in known]
        if not entries:
            return []
        if served is not None and not any(_in(ip, net) for _, ip, _ in entries for net in served):
            return [
                _false_positive(DHCP_MISSING, header, "none of the VMs named is in a subnet this router serves DHCP on")
            ]
    evidence = [header, *quoted(f"not in /etc/dhcphosts.txt: {mac} {ip} {name}".rstrip() for mac, ip, name in entries)]
    remediation = (
        "These VMs will get no DHCP answer from this router (dhcp-ignore=tag:!known). Re-push the DHCP entries: "
        f"{restart_action(ctx.router)}, or stop and start the VM so CloudStack sends its entry again."
    )
    return [verdict(DHCP_MISSING, "VMs missing from dhcphosts.txt", evidence, remediation)]


def _false_positive(rule: Rule, header: str, why: str) -> Verdict:
    return verdict(
        rule,
        f"{rule.id.replace('-', ' ')}: known false positive",
        [header, f"not confirmed: {why}"],
        (
            "Known false positive (apache/cloudstack#8761): the management server passes VMs of networks or tiers "
            "this router does not serve. Nothing to fix on the router; add the check to "
            "router.health.checks.to.exclude for this zone if it keeps alarming."
        ),
        "info",
    )


DHCP_MISSING = Rule(
    id="vm-missing-from-dhcphosts",
    category="dhcp",
    severity="warning",
    summary="CloudStack's dhcp_check.py lists VMs missing from dhcphosts.txt, confirmed against the router's files.",
    remedy="Re-push DHCP entries (restart the network with cleanup, or stop/start the VM).",
    reads=("api", "facts:dnsmasq", "facts:interfaces"),
    thresholds=(),
    check=_missing_from_dhcphosts,
)


def _missing_from_hosts(ctx: RouterContext) -> list[Verdict]:
    check = _failed_check(ctx, "dns_check.py")
    if check is None or hosts_gaps(ctx):
        return []
    details = str(check.get("details", ""))
    header = f"dns_check.py failed at {check.get('lastupdated', '?')}: {details}"
    if not _offers(ctx, "Dns"):
        return [_false_positive(DNS_MISSING, header, "the network offers no DNS service")]
    served = _served_networks(ctx)
    named = addresses_in(details)
    if served is not None and named and not any(_in(ip, net) for ip in named for net in served):
        return [_false_positive(DNS_MISSING, header, "the VM named is not in a subnet this router serves")]
    remediation = (
        "VMs cannot resolve this VM's name through the router. Re-push the entries: "
        f"{restart_action(ctx.router)}, or stop and start the VM."
    )
    return [verdict(DNS_MISSING, "VM missing from /etc/hosts", [header], remediation)]


DNS_MISSING = Rule(
    id="vm-missing-from-hosts",
    category="dns",
    severity="warning",
    summary="CloudStack's dns_check.py lists a VM missing from /etc/hosts, unless it is a VM this router does not serve.",
    remedy="Re-push the entries (restart the network with cleanup, or stop/start the VM).",
    reads=("api", "facts:dnsmasq", "facts:interfaces"),
    thresholds=(),
    check=_missing_from_hosts,
)


def _range_without_options(ctx: RouterContext) -> list[Verdict]:
    dnsmasq = facts_of(ctx, "dnsmasq")
    if dnsmasq is None or not dnsmasq.ranges:
        return []
    tagged = {o.tag for o in dnsmasq.range_options}
    bare = [r for r in dnsmasq.ranges if r.tag and r.tag not in tagged]
    if not bare:
        return []
    evidence = [
        f"cloud.conf: dhcp-range=set:{r.tag},{r.start}{',' + r.end if r.end else ''},{r.mode} has no dhcp-option=tag:{r.tag},..."
        for r in bare
    ]
    remediation = (
        "VMs in these ranges get a lease without router, DNS or domain options, or dnsmasq ignores them "
        "(apache/cloudstack#8158, shared networks with several CIDRs). Re-push the DHCP configuration: "
        f"{restart_action(ctx.router)}; as a stopgap add the `dhcp-option=tag:<tag>,3,<gateway>` (and 6, 15, 1) "
        "lines to /etc/dnsmasq.d/cloud.conf and restart dnsmasq."
    )
    return [verdict(RANGE_WITHOUT_OPTIONS, "DHCP ranges without their options", evidence, remediation)]


RANGE_WITHOUT_OPTIONS = Rule(
    id="dhcp-range-without-options",
    category="dhcp",
    severity="warning",
    summary="A dhcp-range in cloud.conf has no dhcp-option lines for its tag (gateway, DNS, domain).",
    remedy="Re-push the DHCP configuration; as a stopgap add the dhcp-option lines by hand.",
    reads=("facts:dnsmasq",),
    thresholds=(),
    check=_range_without_options,
)

RULES = (
    DNSMASQ_NOT_RUNNING,
    LEASES_NEAR_MAX,
    STALE_LEASE,
    NO_ADDRESS,
    DHCP_MISSING,
    DNS_MISSING,
    RANGE_WITHOUT_OPTIONS,
)
