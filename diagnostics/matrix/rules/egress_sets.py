"""The IP sets behind egress firewall rules, checked against the rules that match them and the databag.

configure.py (CsAcl.AclIP, isolated networks) gives each egress rule with CIDRs the `hash:net`
sets `sourceCidrIpset-<id>` / `destCidrIpset-<id>` and inserts into FW_EGRESS_RULES a rule
matching them (`-m set --match-set <set> src|dst`). A set that was flushed or lost its members
makes that rule match nothing, silently: the traffic it should block passes (default allow:
the rule drops) or the traffic it should allow is dropped (default deny: the rule accepts).
The databag `/etc/cloudstack/firewallrules.json` says what each set must hold.
"""

from __future__ import annotations

import re

from diagnostics.matrix.base import RouterContext, Rule, Verdict
from diagnostics.matrix.evidence import facts_of, quoted, verdict
from diagnostics.matrix.rules.api_state import restart_action
from diagnostics.probes.ipset import DATABAG, normalise_member

_MATCH_SET = re.compile(r"--match-set (?P<name>\S+) (?P<direction>src|dst)\b")
_RULE_SET = re.compile(r"^(?P<kind>source|dest)CidrIpset-(?P<id>\d+)$")
ANY = "0.0.0.0/0"


def _intended(ctx: RouterContext, name: str) -> set[str] | None:
    """What the databag says a sourceCidrIpset-/destCidrIpset- set must hold; None when it cannot tell."""
    facts = facts_of(ctx, "ipset")
    match = _RULE_SET.match(name)
    if facts is None or facts.egress is None or match is None:
        return None
    for rule in facts.egress:
        if rule.rule_id == match["id"]:
            cidrs = rule.source_cidrs if match["kind"] == "source" else rule.dest_cidrs
            return {normalise_member(c) for c in cidrs if normalise_member(c) != ANY}
    return None


def set_problems(ctx: RouterContext) -> list[str]:
    """One line per egress rule whose set is missing, empty or not what the databag says."""
    facts, table = facts_of(ctx, "ipset"), facts_of(ctx, "iptables_filter")
    if facts is None or facts.sets is None or table is None:
        return []
    problems = []
    for rule in table.rules_in("FW_EGRESS_RULES"):
        for match in _MATCH_SET.finditer(rule.text):
            name = match["name"]
            found = facts.named(name)
            if found is None:
                problems.append(f"{rule.text}: set {name} does not exist")
                continue
            members = {normalise_member(m) for m in found.members}
            if not members:
                problems.append(f"{rule.text}: set {name} is empty, the rule matches nothing")
                continue
            intended = _intended(ctx, name)
            if intended is None or intended == members:
                continue
            missing, extra = sorted(intended - members), sorted(members - intended)
            parts = [f"lacks {', '.join(missing)}" if missing else "", f"has extra {', '.join(extra)}" if extra else ""]
            problems.append(f"{rule.text}: set {name} {' and '.join(p for p in parts if p)} against {DATABAG}")
    return problems


def _egress_sets(ctx: RouterContext) -> list[Verdict]:
    if ctx.router.router_type == "vpc":
        return []
    problems = set_problems(ctx)
    if not problems:
        return []
    remediation = (
        "The egress rule no longer matches the addresses it was written for: traffic it should drop passes, or "
        "traffic it should accept is dropped, with nothing in the logs. `ipset list <set>` on the router shows "
        f"the members. Re-apply the egress rules: {restart_action(ctx.router)} (configure.py recreates and "
        "fills the sets), or delete and re-create the egress rule."
    )
    title = f"egress firewall: {len(problems)} rule(s) match an IP set that is missing, empty or wrong"
    return [verdict(EGRESS_SETS, title, quoted(problems, 8), remediation)]


EGRESS_SETS = Rule(
    id="egress-ipset-mismatch",
    category="firewall",
    severity="critical",
    summary="An FW_EGRESS_RULES rule matches a sourceCidrIpset-/destCidrIpset- set that does not exist, is empty, "
    "or holds other CIDRs than the firewallrules databag.",
    remedy="Restart the network with cleanup (or re-create the egress rule) so configure.py rebuilds the sets.",
    reads=("facts:ipset", "facts:iptables_filter", "api"),
    thresholds=(),
    check=_egress_sets,
)

RULES = (EGRESS_SETS,)
