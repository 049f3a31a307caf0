"""The troubleshooting matrix: named rules that turn a router's facts into verdicts.

`RULES` is every rule, in the order of the groups below; `rule(id)` finds one; `evaluate`
runs them all on one router's context. A rule that raises never hides the others: its
exception becomes an info verdict saying the rule could not evaluate. Verdicts come back
worst first.
"""

from __future__ import annotations

from diagnostics.matrix.base import CATEGORIES, SEVERITY_RANK, RouterContext, Rule, Verdict
from diagnostics.matrix.evidence import bounded
from diagnostics.matrix.rules import (
    access,
    api_state,
    config_apply,
    conntrack,
    conntrackd,
    cpu_softirq,
    dhcp_dns,
    dhcp_intent,
    dhcp_options,
    egress_sets,
    interfaces,
    ipv6_routing,
    kernel,
    kvm_host,
    nat_firewall,
    processes,
    resources,
    services,
    vpn,
    vrrp,
)

__all__ = ["CATEGORIES", "RULES", "RouterContext", "Rule", "Verdict", "evaluate", "rule"]

RULES: tuple[Rule, ...] = (
    *api_state.RULES,
    *access.RULES,
    *kvm_host.RULES,
    *interfaces.RULES,
    *config_apply.RULES,
    *dhcp_dns.RULES,
    *dhcp_intent.RULES,
    *nat_firewall.RULES,
    *conntrack.RULES,
    *cpu_softirq.RULES,
    *resources.RULES,
    *kernel.RULES,
    *processes.RULES,
    *services.RULES,
    *vrrp.RULES,
    *vpn.RULES,
    *dhcp_options.RULES,
    *egress_sets.RULES,
    *ipv6_routing.RULES,
    *conntrackd.RULES,
)

_BY_ID = {r.id: r for r in RULES}


def rule(rule_id: str) -> Rule:
    """The rule with this id; KeyError for an unknown id."""
    return _BY_ID[rule_id]


def _run(one: Rule, ctx: RouterContext) -> list[Verdict]:
    try:
        return list(one.check(ctx))
    except Exception as exc:  # noqa: BLE001 - one broken rule must not hide the others' verdicts.
        return [
            Verdict(
                rule=one.id,
                category=one.category,
                severity="info",
                title=bounded(f"rule {one.id} could not evaluate: {type(exc).__name__}: {exc}", 300),
                evidence=(bounded(f"{type(exc).__name__}: {exc}"),),
                remediation="A bug in the console's rule, not a router fault: report it with this router's facts.",
            )
        ]


def evaluate(ctx: RouterContext, rules: tuple[Rule, ...] = RULES) -> list[Verdict]:
    """Every rule's verdicts on one router, worst first (then by category and rule id, for a stable page)."""
    verdicts = [v for one in rules for v in _run(one, ctx)]
    return sorted(verdicts, key=lambda v: (-SEVERITY_RANK[v.severity], v.category, v.rule, v.title))
