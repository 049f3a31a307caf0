"""The lab "KVM host": the files its mount namespace shows and the virsh shim.

On a real KVM host the operator (or the dashboard) logs in on port 22 and reaches the routers'
link-local addresses through the `cloud0` bridge. The lab host is a network namespace with that
bridge, a real sshd, `/var/log/libvirt/qemu/<instance>.log` in libvirt's format, the CloudStack
agent's `/var/log/cloudstack/agent/agent.log` in its log4j format, and a `virsh`
that answers `list --all` and `domstate [--reason]` from the lab's domain list, because a hypervisor cannot
run here (the only stand-in in the lab).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from devcloud.lab.router_files import RouterFile, rendered, static
from devcloud.lab.topology import LabPlan, Router


def _qemu_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def qemu_log(plan: LabPlan, router: Router, started: datetime, domain_number: int) -> str:
    """A libvirt qemu log for a router domain, as libvirt writes it at start-up."""
    name = router.name
    lines = [
        f"{_qemu_time(started)}: starting up libvirt version: 9.0.0, package: 9.0.0-4+deb12u2 (Debian), "
        f"qemu version: 7.2.19Debian 1:7.2+dfsg-7+deb12u18, kernel: 6.1.0-37-amd64, hostname: {plan.host_name}",
        "LC_ALL=C \\",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\",
        f"HOME=/var/lib/libvirt/qemu/domain-{domain_number}-{name} \\",
        f"XDG_DATA_HOME=/var/lib/libvirt/qemu/domain-{domain_number}-{name}/.local/share \\",
        "/usr/bin/qemu-system-x86_64 \\",
        f"-name guest={name},debug-threads=on \\",
        "-S \\",
        "-machine pc-i440fx-7.2,usb=off,dump-guest-core=off,memory-backend=pc.ram \\",
        "-m 512 \\",
        f"-uuid {router.id} \\",
        "-smbios 'type=1,manufacturer=Apache Software Foundation,product=CloudStack KVM Hypervisor' \\",
    ]
    for slot, nic in enumerate(router.nics):
        lines.append(f"-netdev tap,fd={34 + slot * 2},id=hostnet{slot},vhost=on,vhostfd={35 + slot * 2} \\")
        lines.append(f"-device virtio-net-pci,netdev=hostnet{slot},id=net{slot},mac={nic.macaddress},bus=pci.0 \\")
    lines += [
        "-msg timestamp=on",
        "char device redirected to /dev/pts/1 (label charserial0)",
    ]
    return "\n".join(lines) + "\n"


def _agent_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S,") + f"{moment.microsecond // 1000:03d}"


def agent_log(plan: LabPlan, started: datetime) -> str:
    """The agent's log4j lines (`%d{ISO8601} %-5p [%c{3}] (%t:%x) %m`) of the routers' last checks.

    The agent names a router in the commands it runs on it (router_proxy.sh with the control
    address) and in the requests it receives (the router's instance name); a line about
    another router must not show in this router's filtered tail.
    """
    lines = [f"{_agent_time(started)} INFO  [cloud.agent.Agent] (main:null) (logid:) Agent started"]
    moment = started
    for number, router in enumerate(r for r in plan.routers if r.hypervisor == "KVM"):
        moment += timedelta(seconds=7, milliseconds=131 * number)
        logid = f"{0x3B1D5C2E + number:08x}"
        handler = f"(agentRequest-Handler-{number % 5 + 1}:null) (logid:{logid})"
        lines += [
            f"{_agent_time(moment)} DEBUG [cloud.agent.Agent] {handler} Request:Seq 1-{4711 + number}:  "
            f'{{ Cmd , MgmtId: 32988, via: 1, Ver: v1, Flags: 100011, [{{"com.cloud.agent.api.CheckRouterCommand":'
            f'{{"accessDetails":{{"router.name":"{router.name}","router.ip":"{router.control.ipaddress}"}},'
            '"wait":"0","bypassHostMaintenance":"false"}}] }',
            f"{_agent_time(moment + timedelta(milliseconds=3))} DEBUG [kvm.resource.LibvirtComputingResource] "
            f"{handler} Executing: /usr/share/cloudstack-common/scripts/network/domr/router_proxy.sh checkrouter.sh "
            f"{router.control.ipaddress}",
            f"{_agent_time(moment + timedelta(milliseconds=95))} DEBUG [kvm.resource.LibvirtComputingResource] "
            f"{handler} Execution is successful.",
        ]
    return "\n".join(lines) + "\n"


def tap_failure(moment: datetime, slot: int) -> str:
    """The qemu lines of a tap device that could not be configured, then libvirt's shutdown line."""
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}Z"
    return (
        f"{stamp} qemu-system-x86_64: -netdev tap,fd={34 + slot * 2},id=hostnet{slot},vhost=on,"
        f"vhostfd={35 + slot * 2}: could not configure /dev/net/tun (vnet{slot}): Device or resource busy\n"
        f"{_qemu_time(moment + timedelta(milliseconds=40))}: shutting down, reason=failed\n"
    )


def domain_list(plan: LabPlan) -> list[dict[str, str]]:
    """The domains the virsh shim reports: every KVM router of the lab, running."""
    return [
        {"name": router.name, "state": "running", "reason": "booted"}
        for router in plan.routers
        if router.hypervisor == "KVM"
    ]


def host_files(plan: LabPlan, started: datetime, authorized_key: str, domains_path: Path) -> dict[str, RouterFile]:
    """Every file the lab host shows at its real path."""
    files = {
        "/etc/ssh/sshd_config": rendered("host/etc/ssh/sshd_config.tmpl", host_ip=plan.host_ip),
        "/root/.ssh/authorized_keys": RouterFile((authorized_key.strip() + "\n").encode(), 0o600),
        "/root/.bashrc": static("host/root/.bashrc"),
        "/root/.profile": static("host/root/.profile"),
        # virsh cannot run here (no hypervisor): a stand-in answers from the lab's domain list.
        "/usr/local/bin/virsh": rendered("host/usr/local/bin/virsh.tmpl", domains_path=domains_path),
    }
    files["/var/log/cloudstack/agent/agent.log"] = RouterFile(agent_log(plan, started - timedelta(days=1)).encode())
    kvm_routers = [router for router in plan.routers if router.hypervisor == "KVM"]
    for number, router in enumerate(kvm_routers, start=1):
        files[f"/var/log/libvirt/qemu/{router.name}.log"] = RouterFile(
            qemu_log(plan, router, started - timedelta(days=2, hours=3), number).encode(), 0o600
        )
    return files


def write_domains(path: Path, domains: list[dict[str, str]]) -> None:
    """Record the domain list the virsh shim reads."""
    path.write_text(json.dumps(domains, indent=2) + "\n")
