"""DHCP and DNS data against intent: dhcphosts.txt and /etc/hosts checked against the dhcpentry databag.

CloudStack pushes every VM's DHCP entry to the router (`/etc/cloudstack/dhcpentry.json`) and
CsDhcp writes /etc/dhcphosts.txt and /etc/hosts from it. dnsmasq answers only the MACs in
dhcphosts.txt (`dhcp-ignore=tag:!known`), so a VM the databag lists but the file lacks gets
no lease, and one missing from /etc/hosts cannot be resolved by name. When CloudStack's own
dhcp_check.py or dns_check.py fails for the same VMs, that failure is evidence here.
"""

from __future__ import annotations

from diagnostics.matrix.base import RouterContext, Rule, Verdict
from diagnostics.matrix.evidence import facts_of, quoted, verdict
from diagnostics.matrix.rules.api_state import restart_action
from diagnostics.probes.dnsmasq import DHCPHOSTS


def _offers(ctx: RouterContext, service: str) -> bool:
    services = {s.lower() for s in ctx.router.network_services}
    return not services or service.lower() in services


def _failed_check_line(ctx: RouterContext, name: str) -> list[str]:
    for check in ctx.router.health_checks:
        if check.get("checkname") == name and check.get("success") is False:
            return [f"CloudStack health check {name} failed too: {check.get('details', '')}"]
    return []


def dhcphosts_gaps(ctx: RouterContext) -> list[str]:
    """What dhcphosts.txt lacks against the databag, one line per VM; [] when it agrees or cannot be told."""
    intent, dnsmasq = facts_of(ctx, "dhcp_intent"), facts_of(ctx, "dnsmasq")
    if intent is None or dnsmasq is None or intent.intended is None or DHCPHOSTS in dnsmasq.missing:
        return []
    by_mac: dict[str, list[str]] = {}
    for host in dnsmasq.hosts:
        by_mac.setdefault(host.mac, []).append(host.ip)
    gaps = []
    for vm in intent.served():
        ips = by_mac.get(vm.mac)
        if not ips:
            gaps.append(f"{vm.hostname or '?'} {vm.mac} {vm.ip}: not in {DHCPHOSTS}")
        elif vm.ip not in ips:
            gaps.append(f"{vm.hostname or '?'} {vm.mac}: {DHCPHOSTS} gives {', '.join(ips)}, CloudStack says {vm.ip}")
    gaps += [f"{ip} appears more than once in {DHCPHOSTS}" for ip in dnsmasq.duplicate_host_ips]
    return gaps


def _dhcphosts_file_missing(ctx: RouterContext) -> list[Verdict]:
    dnsmasq = facts_of(ctx, "dnsmasq")
    if dnsmasq is None or DHCPHOSTS not in dnsmasq.missing or not _offers(ctx, "Dhcp"):
        return []
    if ctx.router.nics and not any(n.traffic_type.lower() == "guest" for n in ctx.router.nics):
        return []
    intent = facts_of(ctx, "dhcp_intent")
    served = len(intent.served()) if intent is not None and intent.intended is not None else None
    evidence = [
        f"No such file or directory: '{DHCPHOSTS}'",
        *([f"the dhcpentry databag lists {served} VM(s)"] if served is not None else []),
        *_failed_check_line(ctx, "dhcp_check.py"),
    ]
    remediation = (
        "dnsmasq answers only the MACs in dhcphosts.txt, so no VM gets a lease from this router (and "
        "dhcp_check.py fails with 'No such file or directory'). Re-push the DHCP entries so CsDhcp rewrites it: "
        f"{restart_action(ctx.router)}."
    )
    return [verdict(FILE_MISSING, f"{DHCPHOSTS} is missing: no VM gets a DHCP lease", evidence, remediation)]


FILE_MISSING = Rule(
    id="dhcphosts-file-missing",
    category="dhcp",
    severity="critical",
    summary="/etc/dhcphosts.txt does not exist, so dnsmasq (dhcp-ignore=tag:!known) serves no VM.",
    remedy="Restart the network (or VPC) with cleanup so CsDhcp rewrites the file.",
    reads=("facts:dnsmasq", "facts:dhcp_intent", "api"),
    thresholds=(),
    check=_dhcphosts_file_missing,
)


def _dhcphosts_differ(ctx: RouterContext) -> list[Verdict]:
    if not _offers(ctx, "Dhcp"):
        return []
    gaps = dhcphosts_gaps(ctx)
    if not gaps:
        return []
    evidence = [*quoted(gaps, 10), *_failed_check_line(ctx, "dhcp_check.py")]
    remediation = (
        "Those VMs get no lease, or another VM's address, from this router. Re-push the DHCP entries: "
        f"{restart_action(ctx.router)}, or stop and start the VM so CloudStack sends its entry again."
    )
    title = f"{DHCPHOSTS} disagrees with CloudStack for {len(gaps)} entr{'y' if len(gaps) == 1 else 'ies'}"
    return [verdict(DIFFER, title, evidence, remediation)]


DIFFER = Rule(
    id="dhcphosts-differ-from-databag",
    category="dhcp",
    severity="critical",
    summary="A VM of the dhcpentry databag is missing from dhcphosts.txt or has another address there (or an "
    "address is listed twice).",
    remedy="Restart the network with cleanup, or stop/start the VM to re-push its entry.",
    reads=("facts:dnsmasq", "facts:dhcp_intent", "api"),
    thresholds=(),
    check=_dhcphosts_differ,
)


def hosts_gaps(ctx: RouterContext) -> list[str]:
    """VMs of the databag that /etc/hosts does not resolve (address with the VM's name)."""
    intent = facts_of(ctx, "dhcp_intent")
    if intent is None or intent.intended is None or intent.hosts_missing:
        return []
    names = {(entry.ip, name) for entry in intent.hosts for name in entry.names}
    return [
        f"{vm.hostname} {vm.ip}: not in /etc/hosts"
        for vm in intent.served()
        if vm.hostname and (vm.ip, vm.hostname) not in names
    ]


def _hosts_differ(ctx: RouterContext) -> list[Verdict]:
    if not _offers(ctx, "Dns"):
        return []
    gaps = hosts_gaps(ctx)
    if not gaps:
        return []
    evidence = [*quoted(gaps, 10), *_failed_check_line(ctx, "dns_check.py")]
    remediation = (
        "Other VMs cannot resolve these names through the router. Re-push the entries: "
        f"{restart_action(ctx.router)}, or stop and start the VM."
    )
    return [verdict(HOSTS_DIFFER, f"/etc/hosts lacks {len(gaps)} VM(s) CloudStack lists", evidence, remediation)]


HOSTS_DIFFER = Rule(
    id="hosts-differ-from-databag",
    category="dns",
    severity="warning",
    summary="A VM of the dhcpentry databag has no `<ip> <name>` line in the router's /etc/hosts.",
    remedy="Restart the network with cleanup, or stop/start the VM to re-push its entry.",
    reads=("facts:dhcp_intent", "api"),
    thresholds=(),
    check=_hosts_differ,
)

RULES = (FILE_MISSING, DIFFER, HOSTS_DIFFER)
