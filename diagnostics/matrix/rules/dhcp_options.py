"""DHCP options against intent: a non-default NIC's tag in dhcphosts.txt without its lines in dhcpopts.txt.

When a VM has a NIC in this router's network that is not its default NIC (the dhcpentry
databag says `default_entry: false`), CsDhcp tags its dhcphosts.txt line `set:<ip_with_underscores>`
and writes `<tag>,3`, `<tag>,6` and `<tag>,15` to /etc/dhcpopts.txt: dnsmasq then sends that NIC
the options empty, so the VM keeps its gateway, DNS and domain from its default network. A tag
whose lines are gone gets the router's gateway and DNS: the VM ends up with a second default
route and the wrong resolver (traffic leaves by the wrong network, names stop resolving).
"""

from __future__ import annotations

from diagnostics.matrix.base import RouterContext, Rule, Verdict
from diagnostics.matrix.evidence import facts_of, quoted, verdict
from diagnostics.matrix.rules.api_state import restart_action
from diagnostics.probes.dnsmasq import DHCPHOSTS, DHCPOPTS

# The options CsDhcp blanks for a non-default NIC: router, DNS servers, domain name.
BLANKED_OPTIONS = ("3", "6", "15")


def dhcpopts_gaps(ctx: RouterContext) -> list[str]:
    """Tagged dhcphosts entries lacking one of their option lines, one line per VM; [] when none or unknown."""
    dnsmasq = facts_of(ctx, "dnsmasq")
    if dnsmasq is None or DHCPHOSTS in dnsmasq.missing:
        return []
    given: dict[str, set[str]] = {}
    if DHCPOPTS not in dnsmasq.missing:
        for option in dnsmasq.options:
            given.setdefault(option.tag, set()).add(option.option)
    gaps = []
    for host in dnsmasq.hosts:
        if not host.tag:
            continue
        lacking = [number for number in BLANKED_OPTIONS if number not in given.get(host.tag, set())]
        if lacking:
            gaps.append(
                f"{host.hostname or '?'} {host.mac} {host.ip}: tag {host.tag} has no option "
                f"{', '.join(lacking)} in {DHCPOPTS}"
            )
    return gaps


def _dhcpopts_tag_missing(ctx: RouterContext) -> list[Verdict]:
    gaps = dhcpopts_gaps(ctx)
    if not gaps:
        return []
    dnsmasq = facts_of(ctx, "dnsmasq")
    missing_file = dnsmasq is not None and DHCPOPTS in dnsmasq.missing
    evidence = [
        *([f"No such file or directory: '{DHCPOPTS}'"] if missing_file else []),
        *quoted(gaps, 10),
    ]
    remediation = (
        "These VM NICs are not their VM's default NIC, yet dnsmasq now hands them this router as gateway and DNS: "
        "the VMs get a second default route and the wrong resolver. Re-push the DHCP entries so CsDhcp rewrites "
        f"{DHCPOPTS}: {restart_action(ctx.router)}, or stop and start the VM; then renew the lease on the VM."
    )
    title = f"{len(gaps)} non-default VM NIC(s) lost their DHCP option tag"
    return [verdict(DHCPOPTS_TAG_MISSING, title, evidence, remediation)]


DHCPOPTS_TAG_MISSING = Rule(
    id="dhcpopts-tag-missing",
    category="dhcp",
    severity="warning",
    summary="A dhcphosts.txt entry tagged `set:<tag>` (a VM's non-default NIC) has no `<tag>,3/6/15` lines in "
    "/etc/dhcpopts.txt, so dnsmasq sends that NIC a gateway and DNS.",
    remedy="Restart the network (or VPC) with cleanup so CsDhcp rewrites dhcpopts.txt, or stop/start the VM.",
    reads=("facts:dnsmasq", "api"),
    thresholds=(),
    check=_dhcpopts_tag_missing,
)

RULES = (DHCPOPTS_TAG_MISSING,)
