"""Faults in conntrackd, the site-to-site tunnel and the remote-access VPN of lab routers, and how to set those up.

conntrackd runs on every redundant lab router from the start (devcloud/lab/vpn.py). The
VPNs are set up on demand, idempotently, by `enable_site_to_site` and
`enable_remote_access` (a fault that needs one sets it up first), so a lab that never asks
for a VPN runs no charon. Each fault breaks the real thing: conntrackd stopped, its sync
multicast dropped on INPUT, the customer gateway's pre-shared key changed and the tunnel
renegotiated, xl2tpd stopped.
"""

from __future__ import annotations

from devcloud.lab import vpn
from devcloud.lab.fault_target import FaultSpec
from devcloud.lab.fault_target import FaultTarget as Target
from devcloud.lab.lifecycle import LabError, mount_file
from devcloud.lab.topology import LabPlan, Router

# Inserted at the top of INPUT: the peer's sync messages never reach conntrackd.
SYNC_DROP = ["INPUT", "-d", f"{vpn.CONNTRACKD_MULTICAST}/32", "-p", "udp", "-j", "DROP"]


def _router(lab: str, router: Router) -> vpn.VpnRouter:
    return vpn.VpnRouter(router.namespace, mount_file(lab, router.namespace))


def site_to_site_connection(plan: LabPlan) -> str:
    """The VR side's connection name, `vpn-<peer public address>` as CsSite2SiteVpn names it."""
    _, peer = vpn.site_to_site_pair(plan)
    return f"vpn-{peer.public.ipaddress}"


def enable_site_to_site(plan: LabPlan, lab: str) -> None:
    """Write both sides' files and rules, start charon on both and bring the tunnel up."""
    vr, peer = vpn.site_to_site_pair(plan)
    vr_files, peer_files = vpn.site_to_site_files(plan)
    local, remote = _router(lab, vr), _router(lab, peer)
    local.write(vr_files)
    remote.write(peer_files)
    local.add_rules(vpn.site_to_site_rules(vr.public.ipaddress, peer.public.ipaddress, vr.public.device))
    remote.add_rules(vpn.site_to_site_rules(peer.public.ipaddress, vr.public.ipaddress, peer.public.device))
    remote.add_rules(vpn.ingress_rules(peer, ("500", "4500"), f"{vr.public.ipaddress}/32"))
    for side in (remote, local):
        side.start_ipsec()
        side.run(["ipsec", "rereadsecrets"], check=False)
        side.run(["ipsec", "reload"], check=False)
    local.bring_up(site_to_site_connection(plan))


def configure_remote_access(plan: LabPlan, lab: str, router: Router) -> vpn.VpnRouter:
    """Write CsRemoteAccessVpn's files, databag and rules into a router, starting nothing."""
    target = _router(lab, router)
    target.write(vpn.remote_access_files(router, vpn.lab_psk(plan)))
    target.add_rules(vpn.remote_access_rules(router))
    return target


def start_remote_access(target: vpn.VpnRouter) -> None:
    """Run charon with L2TP-PSK loaded, then xl2tpd, as CsRemoteAccessVpn does."""
    target.start_ipsec()
    target.run(["ipsec", "update"], check=False)
    target.run(["ipsec", "rereadsecrets"], check=False)
    target.start_xl2tpd()


def enable_remote_access(plan: LabPlan, lab: str) -> None:
    """Remote-access VPN on the lab's first isolated router: files, rules, charon (L2TP-PSK loaded) and xl2tpd."""
    start_remote_access(configure_remote_access(plan, lab, vpn.remote_access_router(plan)))


def _require_redundant(target: Target) -> None:
    if not target.router.redundant:
        raise LabError(f"{target.router.name} is not a redundant router: it runs no conntrackd")


def _conntrackd_down(target: Target) -> None:
    _require_redundant(target)
    vpn.stop_conntrackd(target.namespace, target.mount_file)


def _conntrackd_up(target: Target) -> None:
    _require_redundant(target)
    if not target.run(["pidof", "conntrackd"], check=False).strip():
        vpn.start_conntrackd(target.namespace, target.mount_file)


def _drop_sync(target: Target) -> None:
    _require_redundant(target)
    if not _sync_dropped(target):
        target.run(["iptables", "-I", *SYNC_DROP])


def _sync_dropped(target: Target) -> bool:
    return "present" in target.run(
        ["sh", "-c", 'iptables -C "$@" >/dev/null 2>&1 && echo present', "iptables", *SYNC_DROP], check=False
    )


def _accept_sync(target: Target) -> None:
    while _sync_dropped(target):
        target.run(["iptables", "-D", *SYNC_DROP])


def _require_site_to_site(target: Target) -> vpn.VpnRouter:
    vr, _ = vpn.site_to_site_pair(target.plan)
    if target.router.name != vr.name:
        raise LabError(f"the site-to-site VPN of this lab is on {vr.name}, not {target.router.name}")
    return _router(target.lab, vr)


def _peer(target: Target) -> vpn.VpnRouter:
    _, peer = vpn.site_to_site_pair(target.plan)
    return _router(target.lab, peer)


def _peer_secrets(target: Target, psk: str) -> None:
    vr, peer = vpn.site_to_site_pair(target.plan)
    remote = _peer(target)
    remote.run(["chmod", "0600", "/etc/ipsec.secrets"], check=False)
    remote.write({"/etc/ipsec.secrets": f'{peer.public.ipaddress} {vr.public.ipaddress} : PSK "{psk}"\n'.encode()})
    remote.run(["ipsec", "rereadsecrets"])


def _break_tunnel(target: Target) -> None:
    local = _require_site_to_site(target)
    if not local.charon_running() or not _peer(target).charon_running():
        enable_site_to_site(target.plan, target.lab)
    connection = site_to_site_connection(target.plan)
    _peer_secrets(target, vpn.lab_psk(target.plan) + "-changed")
    local.run(["ipsec", "down", connection], check=False)
    # The renegotiation fails (AUTHENTICATION_FAILED): `ipsec up` says so and returns.
    local.run(["ipsec", "up", connection], check=False, timeout=30)


def _mend_tunnel(target: Target) -> None:
    local = _require_site_to_site(target)
    _peer_secrets(target, vpn.lab_psk(target.plan))
    local.bring_up(site_to_site_connection(target.plan))


def _require_remote_access(target: Target) -> vpn.VpnRouter:
    router = vpn.remote_access_router(target.plan)
    if target.router.name != router.name:
        raise LabError(f"the remote-access VPN of this lab is on {router.name}, not {target.router.name}")
    local = _router(target.lab, router)
    if not local.charon_running():
        enable_remote_access(target.plan, target.lab)
    return local


def _xl2tpd_down(target: Target) -> None:
    _require_remote_access(target).stop_xl2tpd()


def _xl2tpd_up(target: Target) -> None:
    _require_remote_access(target).start_xl2tpd()


FAULTS: dict[str, FaultSpec] = {
    "conntrackd-down": (_conntrackd_down, _conntrackd_up, "conntrackd stopped on a redundant router: no state sync"),
    "conntrackd-not-syncing": (
        _drop_sync,
        _accept_sync,
        "conntrackd's sync multicast (225.0.0.50) dropped on INPUT: it hears nothing from its peer",
    ),
    "s2s-tunnel-down": (
        _break_tunnel,
        _mend_tunnel,
        "site-to-site VPN (VPC router): the customer gateway's PSK changed, the tunnel fails to renegotiate",
    ),
    "remote-access-vpn-down": (
        _xl2tpd_down,
        _xl2tpd_up,
        "remote-access VPN enabled (first isolated router) but xl2tpd stopped",
    ),
}
"""name -> (inject, clear, description), merged into devcloud.lab.faults.FAULTS."""
