"""Faults of the network features router (devcloud.lab.network_features): IP sets, the IPv6 firewall, radvd, BGP.

Each fault changes the real thing inside the router (or its upstream peer) and its clear puts
it back as the builder made it: `ipset-members-missing` flushes the egress rule's source set,
`ip6-firewall-missing` deletes table ip6 ip6_firewall, `ip6-firewall-policy-open` sets its
input chain's policy to accept, `radvd-down` stops radvd, `radvd-stale-prefix` restarts it
advertising another /64 than the guest's, and
`bgp-peer-down` stops the upstream router's bgpd so the VR's session drops. They are merged
into devcloud.lab.faults.FAULTS; only the router carrying the features accepts them.
"""

from __future__ import annotations

import os
import signal
import time

from devcloud.lab import network_features as features
from devcloud.lab.fault_target import FaultSpec
from devcloud.lab.fault_target import FaultTarget as Target
from devcloud.lab.lifecycle import LabError

RADVD_STOP_TIMEOUT = 10.0


def _require_features(target: Target) -> None:
    chosen = features.features_router(target.plan)
    if chosen is None or chosen.name != target.router.name:
        where = chosen.name if chosen is not None else "no router of this lab"
        raise LabError(f"{target.router.name} has no IPv6, egress IP sets or BGP: only {where} has them")


def _flush_source_set(target: Target) -> None:
    _require_features(target)
    target.run(["ipset", "flush", features.SOURCE_SET])


def _refill_source_set(target: Target) -> None:
    _require_features(target)
    features.fill_source_set(target.router, target.namespace, target.mount_file)


def _delete_ip6_firewall(target: Target) -> None:
    _require_features(target)
    target.run(["nft", "delete", "table", "ip6", features.FIREWALL_TABLE])


def _restore_ip6_firewall(target: Target) -> None:
    _require_features(target)
    target.run(["nft", "delete", "table", "ip6", features.FIREWALL_TABLE], check=False)
    features.load_ip6_firewall(target.plan, target.router, target.namespace, target.mount_file)


def _radvd_running(target: Target) -> bool:
    return bool(target.run(["pidof", "radvd"], check=False).strip())


def _stop_radvd(target: Target) -> None:
    _require_features(target)
    target.run(["pkill", "-TERM", "-x", "radvd"], check=False)
    deadline = time.monotonic() + RADVD_STOP_TIMEOUT
    while _radvd_running(target):
        if time.monotonic() > deadline:
            raise LabError("radvd did not stop")
        time.sleep(0.2)


def _start_radvd(target: Target) -> None:
    _require_features(target)
    if not _radvd_running(target):
        target.run(["rm", "-f", features.RADVD_PID])
        features.start_radvd(target.namespace, target.mount_file)


def _open_input_policy(target: Target) -> None:
    _require_features(target)
    target.run(["nft", "chain", "ip6", features.FIREWALL_TABLE, "fw_input", "{ policy accept ; }"])


def _drop_input_policy(target: Target) -> None:
    _require_features(target)
    target.run(["nft", "chain", "ip6", features.FIREWALL_TABLE, "fw_input", "{ policy drop ; }"])


def _restart_radvd_with(target: Target, stale: bool) -> None:
    prefix = features.stale_prefix(target.plan) if stale else None
    _stop_radvd(target)
    target.run(["tee", features.RADVD_CONF], stdin=features.radvd_conf(target.plan, target.router, prefix).encode())
    _start_radvd(target)


def _stop_upstream(target: Target) -> None:
    _require_features(target)
    pid = features.upstream_pid(target.plan)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
    features.wait_for_bgp(target.namespace, target.mount_file, "Active")


def _start_upstream(target: Target) -> None:
    _require_features(target)
    if features.upstream_pid(target.plan) is None:
        features.start_upstream_bgpd(target.plan)
    features.reconnect_bgp(target.namespace, target.mount_file)
    features.wait_for_bgp(target.namespace, target.mount_file, "Established", timeout=60.0)


NETWORK_FAULTS: dict[str, FaultSpec] = {
    "ipset-members-missing": (
        _flush_source_set,
        _refill_source_set,
        f"the egress rule's set {features.SOURCE_SET} flushed: FW_EGRESS_RULES matches nothing",
    ),
    "ip6-firewall-missing": (
        _delete_ip6_firewall,
        _restore_ip6_firewall,
        "nftables table ip6 ip6_firewall deleted: the IPv6 guest network is unfiltered",
    ),
    "ip6-firewall-policy-open": (
        _open_input_policy,
        _drop_input_policy,
        "chain fw_input of table ip6 ip6_firewall set to policy accept: the router takes any IPv6 traffic",
    ),
    "radvd-down": (_stop_radvd, _start_radvd, "radvd stopped: VMs get no IPv6 prefix or default route"),
    "radvd-stale-prefix": (
        lambda target: _restart_radvd_with(target, stale=True),
        lambda target: _restart_radvd_with(target, stale=False),
        "radvd restarted on a radvd.conf with another /64: VMs are told a prefix the router does not route",
    ),
    "bgp-peer-down": (
        _stop_upstream,
        _start_upstream,
        "the upstream BGP router stopped: the routed network's BGP session drops",
    ),
}
