"""Rules on NAT and the firewall: source NAT, default policies, SSH exposure, egress policy, port forwarding.

The VR's layout is known (§3.5): source NAT is `-A POSTROUTING -o <public dev> -j SNAT
--to-source <public ip>` (eth2 on isolated routers, eth1 on VPC routers; never
MASQUERADE), filter INPUT and FORWARD drop by default, and port 3922 is accepted only on
the control NIC. Port-forwarding rules are compared with what CloudStack's own
iptables_check.py reported missing, confirmed against the nat table collected now.
"""

from __future__ import annotations

import re
from typing import Any

from diagnostics.matrix.base import RouterContext, Rule, Verdict
from diagnostics.matrix.evidence import facts_of, quoted, verdict
from diagnostics.matrix.layout import control_device, public_device
from diagnostics.matrix.rules.api_state import addresses_in, restart_action


def _snat_missing(ctx: RouterContext) -> list[Verdict]:
    nat = facts_of(ctx, "iptables_nat")
    router = ctx.router
    device = public_device(router)
    if nat is None or not nat.complete or device is None or not router.public_ip:
        return []
    if router.network_services and "sourcenat" not in {s.lower() for s in router.network_services}:
        return []
    snat = [r for r in nat.rules_in("POSTROUTING") if r.target == "SNAT" and r.out_interface == device]
    if any(r.to_source == router.public_ip for r in snat):
        return []
    evidence = [
        f"listRouters publicip (source NAT): {router.public_ip}",
        f"nat POSTROUTING has no '-o {device} -j SNAT --to-source {router.public_ip}'",
    ]
    if snat:
        evidence += quoted((f"nat has instead: {r.text}" for r in snat), 4)
    masquerade = [r for r in nat.rules_in("POSTROUTING") if r.target == "MASQUERADE"]
    evidence += quoted((f"nat has: {r.text}" for r in masquerade), 2)
    remediation = (
        "VMs of this network cannot reach the outside (no source NAT). 1. Check ip_associations in "
        "/var/log/cloud.log for an apply failure. 2. Re-push the configuration: "
        f"{restart_action(router)}. As a stopgap only: `iptables -t nat -A POSTROUTING -o {device} -j SNAT "
        f"--to-source {router.public_ip}` (the next apply may remove a hand-added rule)."
    )
    return [verdict(SNAT_MISSING, f"source NAT rule for {router.public_ip} missing", evidence, remediation)]


SNAT_MISSING = Rule(
    id="snat-rule-missing",
    category="nat",
    severity="critical",
    summary="The nat table lacks `-A POSTROUTING -o <public dev> -j SNAT --to-source <source NAT IP>` for the API's public IP.",
    remedy="Re-push the configuration with a restart with cleanup; hand-adding the rule is only a stopgap.",
    reads=("api", "facts:iptables_nat"),
    thresholds=(),
    check=_snat_missing,
)

_EXPECTED_POLICIES = {"INPUT": "DROP", "FORWARD": "DROP", "OUTPUT": "ACCEPT"}


def _default_policies(ctx: RouterContext) -> list[Verdict]:
    table = facts_of(ctx, "iptables_filter")
    if table is None or not table.complete:
        return []
    wrong = [
        (chain.name, chain.policy, _EXPECTED_POLICIES[chain.name])
        for chain in table.chains
        if chain.name in _EXPECTED_POLICIES and chain.policy != _EXPECTED_POLICIES[chain.name]
    ]
    if not wrong:
        return []
    evidence = [f"filter :{name} {policy} (the VR sets {expected})" for name, policy, expected in wrong]
    opened = any(expected == "DROP" for _, _, expected in wrong)
    remediation = (
        "The filter table's defaults are not the VR's: someone flushed or edited iptables by hand (or restored an "
        "old rules file). Restore with `iptables-restore < /etc/iptables/rules.v4` on the router, or re-push: "
        f"{restart_action(ctx.router)}."
    )
    return [
        verdict(
            DEFAULT_POLICIES,
            "filter default policies differ from the VR's",
            evidence,
            remediation,
            severity="warning" if opened else "info",
        )
    ]


DEFAULT_POLICIES = Rule(
    id="firewall-default-policy-changed",
    category="firewall",
    severity="warning",
    summary="filter INPUT/FORWARD are not DROP or OUTPUT is not ACCEPT, as the VR sets them.",
    remedy="Restore /etc/iptables/rules.v4 or restart the network with cleanup.",
    reads=("facts:iptables_filter",),
    thresholds=(),
    check=_default_policies,
)


def _ssh_exposed(ctx: RouterContext) -> list[Verdict]:
    table = facts_of(ctx, "iptables_filter")
    control = control_device(ctx.router)
    if table is None or control is None:
        return []
    exposed = [
        rule
        for rule in table.rules_in("INPUT")
        if rule.target == "ACCEPT"
        and rule.dport in ("3922",)
        and rule.in_interface != control
        and rule.in_interface != "lo"
    ]
    if not exposed:
        return []
    evidence = [f"control NIC is {control}", *quoted(f"filter: {r.text}" for r in exposed)]
    remediation = (
        "The router's root SSH (port 3922) is accepted on an interface other than the control NIC: guest VMs or the "
        f"public side can reach it. Remove the rule (`iptables -D INPUT ...` as shown) and find who added it; "
        f"{restart_action(ctx.router)} restores the VR's own rules."
    )
    return [verdict(SSH_EXPOSED, f"port 3922 accepted beyond the control NIC {control}", evidence, remediation)]


SSH_EXPOSED = Rule(
    id="ssh-open-on-non-control-interface",
    category="firewall",
    severity="warning",
    summary="filter INPUT accepts port 3922 on an interface other than the control NIC (security).",
    remedy="Remove the rule and find who added it; restart the network with cleanup restores the VR's rules.",
    reads=("api", "facts:iptables_filter"),
    thresholds=(),
    check=_ssh_exposed,
)


def _egress_allow(ctx: RouterContext) -> list[Verdict]:
    router = ctx.router
    if router.router_type != "isolated":
        return []
    evidence: list[str] = []
    if router.egress_default_allow is True:
        evidence.append("listNetworks egressdefaultpolicy: true (allow)")
    elif router.egress_default_allow is None:
        table = facts_of(ctx, "iptables_filter")
        rules = table.rules_in("FW_EGRESS_RULES") if table is not None else ()
        if rules and rules[-1].target == "ACCEPT" and not rules[-1].source and not rules[-1].destination:
            evidence.append(f"filter: {rules[-1].text} (last rule of FW_EGRESS_RULES)")
    if not evidence:
        return []
    remediation = (
        "Advice: with egress allowed by default, any VM can open any outbound connection (spam, exfiltration). If "
        "the tenant's policy wants deny-by-default, use a network offering with egress default deny and add egress "
        "rules (createEgressFirewallRule) for what is needed."
    )
    return [verdict(EGRESS_ALLOW, "egress default policy is allow", evidence, remediation)]


EGRESS_ALLOW = Rule(
    id="egress-default-allow",
    category="firewall",
    severity="info",
    summary="The isolated network's egress default policy is allow (advice, not a fault).",
    remedy="Consider an offering with egress default deny plus explicit egress rules.",
    reads=("api", "facts:iptables_filter"),
    thresholds=(),
    check=_egress_allow,
)


# iptables_check.py prints one Python list per rule it did not find:
# ['PREROUTING', '-d <public ip>', '--dport <p[:p]>', '--to-destination <vm ip>:<p[-p]>'] (also
# OUTPUT, and POSTROUTING with --to-source on a VPC router). A rule is present when one line of
# the chain contains every part, which is how the script itself looks.
_EXPECTED_RULE = re.compile(r"\[\s*'(?P<chain>[A-Z_]+)'(?P<rest>(?:\s*,\s*'[^'\[\]]*')+)\s*\]")
_QUOTED = re.compile(r"'([^']*)'")


def expected_rules(details: str) -> list[tuple[str, tuple[str, ...]]]:
    """The (chain, parts) of each rule iptables_check.py reported missing, in its own list shape."""
    return [(m["chain"], tuple(_QUOTED.findall(m["rest"]))) for m in _EXPECTED_RULE.finditer(details[:20_000])]


def _present(nat: Any, chain: str, parts: tuple[str, ...]) -> bool:
    return any(all(part in rule.text for part in parts) for rule in nat.rules_in(chain))


def _port_forwarding_missing(ctx: RouterContext) -> list[Verdict]:
    check = next(
        (
            c
            for c in ctx.router.health_checks
            if c.get("checkname") == "iptables_check.py" and c.get("success") is False
        ),
        None,
    )
    if check is None:
        return []
    details = str(check.get("details", ""))
    evidence = [f"iptables_check.py failed at {check.get('lastupdated', '?')}: {details}"]
    nat = facts_of(ctx, "iptables_nat")
    expected = expected_rules(details)
    if nat is not None and nat.complete and expected:
        absent = [(chain, parts) for chain, parts in expected if not _present(nat, chain, parts)]
        if not absent:
            # Every rule CloudStack listed is in the nat table now: the result predates a later apply.
            return []
        evidence += [f"nat table now lacks: -A {chain} ... {' ... '.join(parts)}" for chain, parts in absent][:10]
    elif nat is not None and nat.complete:
        named = addresses_in(details)
        present = {
            ip for r in nat.rules if r.target == "DNAT" for ip in addresses_in(f"{r.to_destination} {r.destination}")
        }
        missing = [ip for ip in named if ip not in present]
        if named and not missing:
            # Every address CloudStack named is in a DNAT rule now: the result predates a later apply.
            return []
        evidence += [f"nat table now has no DNAT rule naming {ip}" for ip in missing]
    remediation = (
        "Port-forwarding rules CloudStack holds are not in the router's nat table, so those services are "
        "unreachable from outside. Re-push the rules: "
        f"{restart_action(ctx.router)}. If the rule was deleted and recreated on a multi-public-NIC network, also "
        "look for stale PREROUTING rules (apache/cloudstack#13742)."
    )
    return [verdict(PF_MISSING, "port-forwarding rules missing from the nat table", evidence, remediation)]


PF_MISSING = Rule(
    id="port-forwarding-rule-missing",
    category="nat",
    severity="warning",
    summary="CloudStack's iptables_check.py lists port-forwarding rules missing, confirmed against the nat table.",
    remedy="Re-push the rules with a restart with cleanup.",
    reads=("api", "facts:iptables_nat"),
    thresholds=(),
    check=_port_forwarding_missing,
)

RULES = (SNAT_MISSING, DEFAULT_POLICIES, SSH_EXPOSED, EGRESS_ALLOW, PF_MISSING)
