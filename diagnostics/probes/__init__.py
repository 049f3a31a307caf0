"""The registry of probes: every read-only command the console runs, with its parser and timeout.

`ROUTER_PROBES` run inside a virtual router over SSH (`sh -c <command>` as root);
`HOST_PROBES` run on the KVM host the router lives on and are built per router by
`Probe.command_line(instance_name, link_local_ip)`. A probe's name is also the key of its
facts.

To add a probe: write `diagnostics/probes/<name>.py` with a module docstring, a constant
`COMMAND` (bounded output: `head`/`tail`; several files as `==> name <==` sections read by
`base.split_sections`; log-like text prefixed with `|` so no line can forge a marker), a
frozen facts dataclass deriving from `base.Facts` (typed fields, tuples not lists) and a
pure `parse(text)` that raises only `base.ParseError`. Register it below, then add
`tests/fixtures/<name>/<case>.txt` captured from a router with the expected
`<case>.json` (`facts.to_dict()`), a healthy case and each problem case; the golden and
hypothesis tests in tests/probes pick it up from this registry.
"""

from __future__ import annotations

from diagnostics.probes import (
    config,
    conntrack,
    conntrackd,
    cpu,
    dhcp_intent,
    disk,
    dnsmasq,
    frr,
    host_side,
    interfaces,
    ipset,
    iptables,
    ipv6,
    log_tails,
    logfiles,
    logs,
    processes,
    routes,
    services,
    softirq,
    softnet,
    system,
    versions,
    vpn,
    vrrp,
)
from diagnostics.probes.base import Probe

__all__ = ["EVIDENCE_PROBES", "HOST_PROBES", "PROBES_BY_NAME", "ROUTER_PROBES", "Probe"]

ROUTER_PROBES: tuple[Probe, ...] = (
    Probe("interfaces", interfaces.COMMAND, interfaces.parse, timeout=10.0),
    Probe("routes", routes.COMMAND, routes.parse, timeout=10.0),
    Probe("iptables_filter", iptables.command_for("filter"), iptables.parse, timeout=20.0),
    Probe("iptables_nat", iptables.command_for("nat"), iptables.parse, timeout=20.0),
    Probe("iptables_mangle", iptables.command_for("mangle"), iptables.parse, timeout=20.0),
    Probe("conntrack", conntrack.COMMAND, conntrack.parse, timeout=10.0),
    Probe("softirq", softirq.COMMAND, softirq.parse, timeout=10.0),
    Probe("cpu", cpu.COMMAND, cpu.parse, timeout=15.0),
    Probe("softnet", softnet.COMMAND, softnet.parse, timeout=10.0),
    Probe("system", system.COMMAND, system.parse, timeout=10.0),
    Probe("disk", disk.COMMAND, disk.parse, timeout=15.0),
    Probe("processes", processes.COMMAND, processes.parse, timeout=10.0),
    Probe("vrrp", vrrp.COMMAND, vrrp.parse, timeout=15.0),
    Probe("dnsmasq", dnsmasq.COMMAND, dnsmasq.parse, timeout=15.0),
    Probe("dhcp_intent", dhcp_intent.COMMAND, dhcp_intent.parse, timeout=15.0),
    Probe("logs", logs.COMMAND, logs.parse, timeout=20.0),
    Probe("services", services.COMMAND, services.parse, timeout=15.0),
    Probe("versions", versions.COMMAND, versions.parse, timeout=10.0),
    Probe("logfiles", logfiles.COMMAND, logfiles.parse, timeout=20.0),
    Probe("config", config.COMMAND, config.parse, timeout=15.0, redact_output=config.redact_output),
    Probe("ipset", ipset.COMMAND, ipset.parse, timeout=15.0),
    Probe("ipv6", ipv6.COMMAND, ipv6.parse, timeout=15.0),
    Probe("frr", frr.COMMAND, frr.parse, timeout=15.0),
    Probe("conntrackd", conntrackd.COMMAND, conntrackd.parse, timeout=20.0),
    Probe("vpn", vpn.COMMAND, vpn.parse, timeout=20.0),
)

# Host probes have no constant command: `command` says what they run, for reading only. They
# read libvirt (virsh, the qemu log) and the KVM agent's private bridge: a XenServer/XCP-ng
# dom0 has neither (the router is still reached through it, on its link-local address), so
# there they do not apply.
KVM_ONLY = frozenset({"kvm"})
HOST_PROBES: tuple[Probe, ...] = (
    Probe(
        "host_cloud0",
        "private.bridge.name from agent.properties (cloud0); ip -j addr show dev <bridge>; ip -j route get <link-local ip>",
        host_side.parse_cloud0,
        timeout=10.0,
        scope="host",
        hypervisors=KVM_ONLY,
        host_command=host_side.cloud0_command,
    ),
    Probe(
        "host_tap",
        "virsh domiflist <instance>; ip -j link show master <bridge>",
        host_side.parse_tap,
        timeout=15.0,
        scope="host",
        hypervisors=KVM_ONLY,
        host_command=host_side.tap_command,
    ),
    Probe(
        "host_domstate",
        "virsh domstate --reason <instance>",
        host_side.parse_domstate,
        timeout=15.0,
        scope="host",
        hypervisors=KVM_ONLY,
        host_command=host_side.domstate_command,
    ),
    Probe(
        "host_qemu_log",
        "tail -n 200 /var/log/libvirt/qemu/<instance>.log",
        host_side.parse_qemu_log,
        timeout=10.0,
        scope="host",
        hypervisors=KVM_ONLY,
        host_command=host_side.qemu_log_command,
    ),
    Probe(
        "host_logfiles",
        "find /var/log/cloudstack/agent/agent.log /var/log/libvirt/qemu/<instance>.log",
        logfiles.parse,
        timeout=10.0,
        scope="host",
        hypervisors=KVM_ONLY,
        host_command=host_side.logfiles_command,
    ),
)

# Run only when evidence is captured before a destructive action, never by the sweep.
EVIDENCE_PROBES: tuple[Probe, ...] = (Probe("log_tails", log_tails.COMMAND, log_tails.parse, timeout=30.0),)

PROBES_BY_NAME: dict[str, Probe] = {probe.name: probe for probe in ROUTER_PROBES + HOST_PROBES + EVIDENCE_PROBES}
