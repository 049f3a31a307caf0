"""Rules on IPsec VPNs: IKE errors in the logs, IPsec absent, site-to-site tunnels down, remote-access VPN down.

CloudStack configures no dedicated charon log: strongSwan writes to syslog, read here from
/var/log/daemon.log (§3.3). A site-to-site VPN shows in the filter table as INPUT rules for
udp 500/4500 and esp from the peer's address (configure.py) and as one `conn vpn-<peer>` in
/etc/ipsec.d/ipsec.vpn-<peer>.conf; CloudStack's checks2svpn.sh calls it connected when
`ipsec status vpn-<peer>` shows ESTABLISHED. Remote-access VPN is xl2tpd behind the
`L2TP-PSK` IPsec connection, enabled per public address in the remoteaccessvpn databag. A
redundant BACKUP or FAULT stops ipsec and xl2tpd on purpose (CsRedundant.set_backup/set_fault).
"""

from __future__ import annotations

from diagnostics.matrix.base import RouterContext, Rule, Verdict
from diagnostics.matrix.evidence import facts_of, quoted, recent_lines, verdict
from diagnostics.matrix.layout import is_standby
from diagnostics.probes import logs as log_kinds
from diagnostics.probes.vpn import SiteToSite, VpnFacts


def _ike_errors(ctx: RouterContext) -> list[Verdict]:
    logs = facts_of(ctx, "logs")
    if logs is None or _tunnels_down(ctx):
        # A tunnel found down quotes these lines as its reason: one finding per cause.
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


def _ipsec_down_rules(ctx: RouterContext) -> list[str]:
    """The site-to-site INPUT rules when IPSEC_DOWN fires on them (charon absent, not standby), else []."""
    processes = facts_of(ctx, "processes")
    if processes is None or processes.service("charon").running or is_standby(ctx):
        return []
    return _s2s_rules(ctx)


def _ipsec_down(ctx: RouterContext) -> list[Verdict]:
    rules = _ipsec_down_rules(ctx)
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


def _vpn(ctx: RouterContext) -> VpnFacts | None:
    facts = facts_of(ctx, "vpn")
    return None if facts is None or is_standby(ctx) else facts


def _down_reason(facts: VpnFacts, connection: SiteToSite) -> str:
    """Why a configured connection is not up, from what `ipsec statusall` shows of it."""
    if not facts.charon_running:
        return "charon (strongSwan) is not running"
    if connection.name not in facts.loaded:
        return "charon has not loaded the connection (ipsec statusall does not list it)"
    sas = facts.sas_of(connection.name)
    ike = [sa for sa in sas if sa.kind == "ike"]
    if any(sa.state == "ESTABLISHED" for sa in ike):
        return "IKE SA established but no CHILD SA installed (phase 2 failed)"
    if ike:
        return f"IKE SA {ike[0].state}, not ESTABLISHED"
    if any(sa.kind == "routed" for sa in sas):
        return "no IKE SA: only the trap policy is installed, the tunnel is not negotiated"
    return "no IKE SA and no trap policy"


def _tunnels_down(ctx: RouterContext) -> list[tuple[SiteToSite, str]]:
    """The configured site-to-site connections that are not up, with the reason; [] when unknown."""
    facts = _vpn(ctx)
    if facts is None or not facts.connections:
        return []
    if not facts.charon_running:
        # site-to-site-vpn-down already reports charon absent where the INPUT rules show the VPN.
        return [] if _ipsec_down_rules(ctx) else [(c, _down_reason(facts, c)) for c in facts.connections]
    if not facts.statusall_answered:
        return []  # charon runs but did not answer: the tunnels' state is unknown, not down
    return [(c, _down_reason(facts, c)) for c in facts.connections if not facts.is_up(c.name)]


def _tunnel_down(ctx: RouterContext) -> list[Verdict]:
    facts = _vpn(ctx)
    if facts is None:
        return []
    found = []
    for connection, reason in _tunnels_down(ctx):
        peer = connection.right or connection.name.removeprefix("vpn-")
        lines = [
            f"{sa.name}{'[' if sa.kind == 'ike' else '{'}{sa.id}{']' if sa.kind == 'ike' else '}'}: {sa.state} {sa.detail}"
            for sa in facts.sas_of(connection.name)
        ]
        evidence = [
            reason,
            f"/etc/ipsec.d/ipsec.vpn-{peer}.conf: conn {connection.name} left={connection.left} "
            f"leftsubnet={connection.left_subnet} right={connection.right} rightsubnet={connection.right_subnet}",
            *(
                quoted((f"ipsec statusall: {line}" for line in lines), 4)
                if lines
                else ["ipsec statusall: no SA for it"]
            ),
            *quoted((f"daemon.log: {line}" for line in facts.charon_log[-6:]), 6),
        ]
        remediation = (
            f"The tenant's site-to-site link to {peer} is down ({reason}). AUTHENTICATION_FAILED in the log: the "
            "pre-shared keys differ (update the VPN customer gateway's IPsec PSK to the peer's). NO_PROPOSAL_CHOSEN: "
            "the IKE/ESP policies or lifetimes differ. Retransmits: the peer does not answer on udp 500/4500. "
            f"On the router `ipsec up {connection.name}` retries and prints the exchange; then resetVpnConnection "
            "id=<connection uuid>."
        )
        found.append(
            verdict(
                TUNNEL_DOWN,
                f"site-to-site VPN {connection.name} to peer {peer} is down: {reason}",
                evidence,
                remediation,
            )
        )
    if facts.s2s_peers is not None:
        files = {c.right for c in facts.connections} | {c.name.removeprefix("vpn-") for c in facts.connections}
        for peer in facts.s2s_peers:
            if peer not in files:
                evidence = [
                    f"site2sitevpn databag: connection to peer {peer}",
                    f"no /etc/ipsec.d/ipsec.vpn-{peer}.conf (charon cannot know the connection)",
                ]
                remediation = (
                    "CloudStack asked for this connection but the router never wrote it: the configuration push "
                    "failed (read cloud.log for CsSite2SiteVpn errors). resetVpnConnection, or restartVPC."
                )
                found.append(
                    verdict(
                        TUNNEL_DOWN,
                        f"site-to-site VPN to peer {peer} is not configured on the router",
                        evidence,
                        remediation,
                    )
                )
    return found


TUNNEL_DOWN = Rule(
    id="site-to-site-vpn-tunnel-down",
    category="vpn",
    severity="critical",
    summary=(
        "A site-to-site connection configured in /etc/ipsec.d/ipsec.vpn-<peer>.conf (or asked for by the "
        "site2sitevpn databag) is not up: no ESTABLISHED IKE SA with an INSTALLED CHILD SA in `ipsec statusall`."
    ),
    remedy="Read the reason (PSK, proposals, peer unreachable), fix the customer gateway, resetVpnConnection.",
    reads=("facts:vpn", "facts:processes", "facts:iptables_filter", "facts:vrrp"),
    thresholds=(),
    check=_tunnel_down,
)


def _remote_access_down(ctx: RouterContext) -> list[Verdict]:
    facts = _vpn(ctx)
    if facts is None or not facts.remote_access:
        return []
    public = facts.remote_access[0]
    causes = []
    if not facts.xl2tpd_running:
        causes.append("xl2tpd is not running")
    if not facts.charon_running:
        causes.append("charon (strongSwan) is not running")
    elif facts.statusall_answered and "L2TP-PSK" not in facts.loaded:
        causes.append("charon has not loaded the L2TP-PSK connection (ipsec statusall does not list it)")
    if facts.l2tp_left and facts.l2tp_left not in facts.remote_access:
        causes.append(f"/etc/ipsec.d/l2tp.conf has left={facts.l2tp_left}, not the VPN's address {public}")
    if not causes:
        return []
    evidence = [
        f"remoteaccessvpn databag: enabled on {', '.join(facts.remote_access)}",
        *causes,
        f"l2tp.conf left={facts.l2tp_left or '(absent)'}; ipsec statusall lists: {', '.join(facts.loaded) or 'nothing'}",
    ]
    return [verdict(REMOTE_ACCESS_DOWN, f"remote-access VPN on {public} is down: {causes[0]}", evidence)]


REMOTE_ACCESS_DOWN = Rule(
    id="remote-access-vpn-down",
    category="vpn",
    severity="critical",
    summary=(
        "Remote-access VPN is enabled in the remoteaccessvpn databag but xl2tpd or charon is not running, "
        "or charon has not loaded the L2TP-PSK connection."
    ),
    remedy=(
        "The tenant's VPN clients cannot connect. On the router: `systemctl restart xl2tpd`, `ipsec update` "
        "(or `ipsec restart`), then `ipsec statusall` must list L2TP-PSK; daemon.log says why a daemon stopped. "
        "If the files are wrong, disable and enable the VPN again (deleteRemoteAccessVpn, createRemoteAccessVpn)."
    ),
    reads=("facts:vpn", "facts:vrrp"),
    thresholds=(),
    check=_remote_access_down,
)

RULES = (IKE_ERRORS, IPSEC_DOWN, TUNNEL_DOWN, REMOTE_ACCESS_DOWN)
