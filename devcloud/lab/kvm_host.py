"""The lab "KVM host": the files its mount namespace shows and the virsh shim.

On a real KVM host the operator (or the dashboard) logs in on port 22 and reaches the routers'
link-local addresses through the `cloud0` bridge. The lab host is a network namespace with that
bridge, a real sshd, `/var/log/libvirt/qemu/<instance>.log` in libvirt's format, and a `virsh`
that answers `list --all` and `domstate [--reason]` from the lab's domain list, because a hypervisor cannot
run here (the only stand-in in the lab).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from devcloud.lab.router_files import ROOT_SHELL_FILES, RouterFile
from devcloud.lab.topology import LabPlan, Router

VIRSH_SHIM = """#!/usr/bin/python3
# virsh stand-in for the VR Console lab: the hypervisor cannot run here, so the domain list
# comes from the lab's record of its routers ({domains}).
import json
import sys

# virsh's reason for each state when the lab recorded none.
DEFAULT_REASONS = {{"running": "booted", "shut off": "destroyed", "paused": "user"}}

with open({domains!r}) as handle:
    domains = json.load(handle)
args = [arg for arg in sys.argv[1:] if not arg.startswith("--connect") and arg != "-q"]
if args[:1] == ["list"]:
    show_all = "--all" in args
    print(" Id   Name" + " " * 12 + "State")
    print("-" * 36)
    for number, domain in enumerate(domains, start=1):
        if domain["state"] == "running":
            print(" %-4s %-16s %s" % (number, domain["name"], domain["state"]))
        elif show_all:
            print(" %-4s %-16s %s" % ("-", domain["name"], domain["state"]))
    print("")
elif args[:1] == ["domstate"]:
    # `domstate [--reason] <name>`, options in any position, as virsh parses them.
    with_reason = "--reason" in args
    names = [arg for arg in args[1:] if not arg.startswith("--")]
    if len(names) != 1:
        sys.stderr.write("error: command 'domstate' requires <domain> option\\n")
        sys.exit(1)
    for domain in domains:
        if domain["name"] == names[0]:
            if with_reason:
                reason = domain.get("reason") or DEFAULT_REASONS.get(domain["state"], "unknown")
                print("%s (%s)" % (domain["state"], reason))
            else:
                print(domain["state"])
            print("")
            sys.exit(0)
    sys.stderr.write("error: failed to get domain '%s'\\n" % names[0])
    sys.exit(1)
else:
    sys.stderr.write("error: this lab host's virsh answers only 'list --all' and 'domstate [--reason] <name>'\\n")
    sys.exit(1)
"""


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
        "/etc/ssh/sshd_config": RouterFile(
            (
                "\n".join(
                    [
                        "Port 22",
                        f"ListenAddress {plan.host_ip}",
                        "HostKey /etc/ssh/ssh_host_ed25519_key",
                        "PermitRootLogin prohibit-password",
                        "PubkeyAuthentication yes",
                        "PasswordAuthentication no",
                        "KbdInteractiveAuthentication no",
                        "UsePAM no",
                        "UseDNS no",
                        "AllowTcpForwarding yes",
                        "MaxStartups 1000",
                        "MaxSessions 1000",
                        "PidFile /run/sshd.pid",
                        "Subsystem sftp /usr/lib/openssh/sftp-server",
                    ]
                )
                + "\n"
            ).encode()
        ),
        "/root/.ssh/authorized_keys": RouterFile((authorized_key.strip() + "\n").encode(), 0o600),
        **{path: RouterFile(content) for path, content in ROOT_SHELL_FILES.items()},
        "/usr/local/bin/virsh": RouterFile(VIRSH_SHIM.format(domains=str(domains_path)).encode(), 0o755),
    }
    kvm_routers = [router for router in plan.routers if router.hypervisor == "KVM"]
    for number, router in enumerate(kvm_routers, start=1):
        files[f"/var/log/libvirt/qemu/{router.name}.log"] = RouterFile(
            qemu_log(plan, router, started - timedelta(days=2, hours=3), number).encode(), 0o600
        )
    return files


def write_domains(path: Path, domains: list[dict[str, str]]) -> None:
    """Record the domain list the virsh shim reads."""
    path.write_text(json.dumps(domains, indent=2) + "\n")
