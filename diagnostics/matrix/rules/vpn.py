"""Rules on IPsec VPNs: IKE negotiation errors in the logs, and the IPsec daemon absent where a site-to-site VPN is configured.

CloudStack configures no dedicated charon log: strongSwan writes to syslog, read here from
/var/log/daemon.log (§3.3). A site-to-site VPN shows in the filter table as INPUT rules for
udp 500/4500 and esp from the peer's address (configure.py); a redundant BACKUP stops
ipsec on purpose.
"""

from __future__ import annotations

from diagnostics.matrix.base import RouterContext, Rule, Verdict
from diagnostics.matrix.evidence import facts_of, quoted, recent_lines, verdict
from diagnostics.matrix.layout import is_standby
from diagnostics.probes import logs as log_kinds


def _ike_errors(ctx: RouterContext) -> list[Verdict]:
    logs = facts_of(ctx, "logs")
    if logs is None:
        return []
    lines = []
    for tail in logs.files:
        recent = recent_lines(tail.lines, ctx, ctx.threshold("config_error_window_hours"))
        lines += [line.text for line in recent if line.kind == log_kinds.IKE_ERROR]
    if not lines:
        return []
    evidence = [
        f"{len(lines)} IKE error line(s) in the last {ctx.threshold('config_error_window_hours'):g} h",
        *quoted(lines[-8:], 8),
    ]
    remediation = (
        "The site-to-site tunnel cannot (re)negotiate. NO_PROPOSAL_CHOSEN: the IKE/ESP policies (encryption, hash, "
        "DH group, lifetimes) differ from the peer's — align the VPN customer gateway (updateVpnCustomerGateway) "
        "with the remote side. AUTHENTICATION_FAILED: the pre-shared keys differ. 'giving up after N "
        "retransmits': the peer does not answer on udp 500/4500. Then reset the connection "
        "(resetVpnConnection id=<connection uuid>); `ipsec statusall` on the router shows the SAs."
    )
    return [verdict(IKE_ERRORS, "IPsec negotiation failing", evidence, remediation)]


IKE_ERRORS = Rule(
    id="ipsec-negotiation-errors",
    category="vpn",
    severity="warning",
    summary="charon/strongSwan logged IKE phase-1/phase-2 failures (no proposal, authentication, retransmits) in the recent window.",
    remedy="Align the customer gateway's IKE/ESP policies and PSK with the peer; resetVpnConnection.",
    reads=("facts:logs",),
    thresholds=("config_error_window_hours",),
    check=_ike_errors,
)


def _s2s_rules(ctx: RouterContext) -> list[str]:
    table = facts_of(ctx, "iptables_filter")
    if table is None:
        return []
    found = []
    for rule in table.rules_in("INPUT"):
        peer = rule.source and rule.source not in ("0.0.0.0/0", "")
        if peer and (rule.protocol == "esp" or (rule.protocol == "udp" and rule.dport in ("500", "4500"))):
            found.append(rule.text)
    return found


def _ipsec_down(ctx: RouterContext) -> list[Verdict]:
    processes = facts_of(ctx, "processes")
    if processes is None or processes.service("charon").running or is_standby(ctx):
        return []
    rules = _s2s_rules(ctx)
    if not rules:
        return []
    evidence = ["ps: no charon (strongSwan) process", *quoted((f"filter: {r}" for r in rules), 4)]
    remediation = (
        "A site-to-site VPN is configured but no IPsec daemon runs: every tunnel is down. On the router: "
        "`ipsec restart`, then `ipsec statusall`; read /var/log/daemon.log for why charon stopped. Then "
        "resetVpnConnection id=<connection uuid> for each connection."
    )
    return [verdict(IPSEC_DOWN, "site-to-site VPN configured but IPsec not running", evidence, remediation)]


IPSEC_DOWN = Rule(
    id="site-to-site-vpn-down",
    category="vpn",
    severity="critical",
    summary="filter INPUT has site-to-site VPN rules (udp 500/4500, esp from a peer) but charon is not running.",
    remedy="ipsec restart on the router, then resetVpnConnection.",
    reads=("facts:processes", "facts:iptables_filter", "facts:vrrp"),
    thresholds=(),
    check=_ipsec_down,
)

RULES = (IKE_ERRORS, IPSEC_DOWN)
