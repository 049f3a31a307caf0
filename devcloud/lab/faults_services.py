"""Faults on a lab router's services, files and logs, injected for real and cleared again.

Each fault below proves one of the matrix's rules on a real lab router (tests/matrix/
test_lab_fidelity.py): the password server running but bound to the wrong address, or dying
on a taken port 8080 and logging it as it does; a guest address left without its apache2 vhost
the way an IP change leaves it; a VM's line gone from /etc/hosts; the kernel's own lines for a
NIC link flap and a martian-source storm in kern.log (a lab router is a namespace: the kernel
logs to the machine's ring buffer, not to the router's kern.log, so those lines are written in
the kernel's words); /ramdisk unmounted on a redundant member. `faults.FAULTS` takes them in
from `SERVICE_FAULTS` (inject, clear, what it does).

Lines a fault adds to a log are taken out again when it is cleared (the rules look back a day,
a test cannot wait that long): the file is rewritten in place, so a daemon appending to it keeps
writing to the same file.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import time
from collections.abc import Callable
from datetime import UTC, datetime

from devcloud.lab import registration
from devcloud.lab.fault_target import FaultSpec
from devcloud.lab.fault_target import FaultTarget as Target
from devcloud.lab.lifecycle import LabError, router_dir, wait_for_election
from devcloud.lab.router_files import apache_vhost, password_instances, syslog_time
from devcloud.lab.system_commands import write_inside
from devcloud.lab.topology import Nic

SYSTEMCTL = "/usr/local/bin/systemctl"
PASSWORD_SERVER = "/opt/cloud/bin/passwd_server_ip.py"
PASSWORD_PORT = 8080
# Where the misplaced password server listens: an address VMs never ask.
WRONG_PASSWORD_ADDRESS = "127.0.0.1"
MESSAGES = "/var/log/messages"
KERN_LOG = "/var/log/kern.log"
HOSTS = "/etc/hosts"
SITES = "/etc/apache2/sites-enabled"
RAMDISK = "/ramdisk"
RAMDISK_SIZE = "8m"
# More than the martian-source-storm threshold's default of 20.
MARTIAN_LINES = 25
# Marks in the lines the kernel faults write, so clearing takes out exactly those.
LINK_FLAP_PATTERN = r"NIC Link is \(Down\|Up\)"
MARTIAN_PATTERN = r"martian source\|ll header: "
DIED_PATTERN = r"serve_password hit exception .* -- died"
WAIT_SECONDS = 15.0


def _wait(condition: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise LabError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _serves_passwords(target: Target) -> bool:
    router = target.router
    return not router.redundant or registration.redundant_states(target.plan)[router.name] == "PRIMARY"


def _listening(target: Target, address: str, port: int) -> bool:
    return f"{address}:{port} " in target.run(["ss", "-ltnH"], check=False)


def _drop_lines(target: Target, path: str, pattern: str, whole_line: bool = False) -> None:
    """Take the lines matching a grep pattern (or equal to it) out of a file, rewriting it in place (same inode)."""
    exact = ["-F", "-x"] if whole_line else []
    kept = target.run(["grep", "-v", *exact, "--", pattern, path], check=False)
    write_inside(target.namespace, target.mount_file, path, kept.encode())


# password-server-wrong-address -----------------------------------------------------------


def _misplace_password_server(target: Target) -> None:
    if not _serves_passwords(target):
        raise LabError(f"{target.router.name} does not serve passwords (a BACKUP): nothing to misplace")
    for instance in password_instances(target.router):
        target.run([SYSTEMCTL, "stop", f"cloud-password-server@{instance}"])
    target.run([SYSTEMCTL, "start", f"cloud-password-server@{WRONG_PASSWORD_ADDRESS}"])
    _wait(lambda: _listening(target, WRONG_PASSWORD_ADDRESS, PASSWORD_PORT), "the misplaced password server")


def _place_password_server(target: Target) -> None:
    target.run([SYSTEMCTL, "stop", f"cloud-password-server@{WRONG_PASSWORD_ADDRESS}"], check=False)
    # The unit is gone for good, as after a network restart: list-units no longer shows it.
    target.run(["rm", "-f", f"/run/lab-units/cloud-password-server@{WRONG_PASSWORD_ADDRESS}"])
    if _serves_passwords(target):
        for instance in password_instances(target.router):
            target.run([SYSTEMCTL, "start", f"cloud-password-server@{instance}"])


# password-server-port-taken ---------------------------------------------------------------


def _start_on_taken_port(target: Target) -> None:
    """Start a second password server where the first one listens: it cannot bind 8080 and dies, logging why."""
    address = password_instances(target.router)[0].split(",")[0]
    if not _listening(target, address, PASSWORD_PORT):
        raise LabError(f"no password server listens on {address}:{PASSWORD_PORT} to take the port from")
    target.run(["/usr/bin/python3", PASSWORD_SERVER, address], check=False)
    _wait(
        lambda: bool(target.run(["grep", "-l", "--", DIED_PATTERN, MESSAGES], check=False).strip()),
        "the password server's exception in /var/log/messages",
    )


def _forget_taken_port(target: Target) -> None:
    _drop_lines(target, MESSAGES, DIED_PATTERN)


# userdata-vhost-missing -------------------------------------------------------------------


def _stale_address(address: str) -> str:
    """The guest address the router had before an IP change: another one of the same subnet."""
    value = ipaddress.IPv4Address(address)
    return str(value + 100) if int(value) % 256 < 100 else str(value - 100)


def _apache_reload(target: Target) -> None:
    target.run(["/usr/sbin/apache2ctl", "graceful"])


def _move_vhost(target: Target, gone: str, nic: Nic, listening: bool) -> None:
    """Replace the vhost of address `gone` by one for `nic`, reload apache2, wait for the guest address's state."""
    guest = target.router.guest_nics()[0].ipaddress
    target.run(["rm", "-f", f"{SITES}/vhost-{gone}.conf"])
    write_inside(
        target.namespace,
        target.mount_file,
        f"{SITES}/vhost-{nic.ipaddress}.conf",
        apache_vhost(target.router, nic).content,
    )
    _apache_reload(target)
    state = "listen" if listening else "stop listening"
    _wait(lambda: _listening(target, guest, 80) == listening, f"apache2 to {state} on {guest}:80")


def _leave_stale_vhost(target: Target) -> None:
    """A guest address without its vhost, the old address's still there: what an IP change leaves behind."""
    nic = target.router.guest_nics()[0]
    stale = dataclasses.replace(nic, ipaddress=_stale_address(nic.ipaddress))
    _move_vhost(target, nic.ipaddress, stale, listening=False)


def _restore_vhost(target: Target) -> None:
    nic = target.router.guest_nics()[0]
    _move_vhost(target, _stale_address(nic.ipaddress), nic, listening=True)


# hosts-vm-missing -------------------------------------------------------------------------


def _hosts_line(target: Target) -> str:
    vm = target.router.vms[-1]
    return f"{vm.ipaddress}\t{vm.name}"


def _drop_vm_from_hosts(target: Target) -> None:
    """One VM's `<ip>\\t<name>` line gone from /etc/hosts (CsDhcp rewrites it; a failed apply leaves it short)."""
    _drop_lines(target, HOSTS, _hosts_line(target), whole_line=True)


def _restore_vm_in_hosts(target: Target) -> None:
    text = target.run(["cat", HOSTS])
    line = _hosts_line(target)
    if line in text.splitlines():
        return
    lines = text.splitlines()
    # CsDhcp writes the VMs before the router's own data-server line.
    at = next((index for index, existing in enumerate(lines) if existing.endswith(" data-server")), len(lines))
    lines.insert(at, line)
    write_inside(target.namespace, target.mount_file, HOSTS, ("\n".join(lines) + "\n").encode())


# nic-link-flap-logged ----------------------------------------------------------------------


def _kernel_line(target: Target, uptime: float, text: str) -> str:
    return f"{syslog_time(datetime.now(UTC))} {target.router.name} kernel: [{uptime:12.6f}] {text}"


def _log_link_flap(target: Target) -> None:
    """vmxnet3's words for the public NIC losing its link for three seconds (VMware: the port group or uplink)."""
    device = target.router.public.device
    lines = [
        _kernel_line(target, 86400.1, f"vmxnet3 0000:0b:00.0 {device}: NIC Link is Down"),
        _kernel_line(target, 86403.2, f"vmxnet3 0000:0b:00.0 {device}: NIC Link is Up 10000 Mbps"),
    ]
    write_inside(target.namespace, target.mount_file, KERN_LOG, ("\n".join(lines) + "\n").encode(), append=True)


def _forget_link_flap(target: Target) -> None:
    _drop_lines(target, KERN_LOG, LINK_FLAP_PATTERN)


# martian-source-storm ----------------------------------------------------------------------


def _log_martians(target: Target) -> None:
    """A VM sending from another subnet's address: the kernel's martian-source pair of lines, many times.

    rsyslog sends kern.* to kern.log and kernel warnings to messages too, so both files get them.
    """
    guest = target.router.guest_nics()[0]
    device = guest.device
    lines = []
    for index in range(MARTIAN_LINES):
        uptime = 86500.0 + index * 0.25
        lines.append(
            _kernel_line(target, uptime, f"IPv4: martian source {guest.ipaddress} from 10.9.9.9, on dev {device}")
        )
        lines.append(_kernel_line(target, uptime, "ll header: 00000000: 02 00 0a 01 01 00 1e 00 0a 09 09 09 08 00"))
    content = ("\n".join(lines) + "\n").encode()
    for path in (KERN_LOG, MESSAGES):
        write_inside(target.namespace, target.mount_file, path, content, append=True)


def _forget_martians(target: Target) -> None:
    for path in (KERN_LOG, MESSAGES):
        _drop_lines(target, path, MARTIAN_PATTERN)


# ramdisk-unmounted -------------------------------------------------------------------------


def _mounted(target: Target) -> bool:
    return bool(target.run(["findmnt", "-n", "-o", "TARGET", RAMDISK], check=False).strip())


def _unmount_ramdisk(target: Target) -> None:
    """/ramdisk gone from a redundant member: keepalived's heartbeat script and state go with it."""
    if not target.router.redundant:
        raise LabError(f"{target.router.name} is not redundant: only a redundant member mounts /ramdisk")
    # Lazy: the heartbeat script may be running from it at this very moment.
    target.run(["umount", "-l", RAMDISK])
    _wait(lambda: not _mounted(target), f"{RAMDISK} to be unmounted")


def _mount_ramdisk(target: Target) -> None:
    if not _mounted(target):
        target.run(["mount", "-t", "tmpfs", "-o", f"size={RAMDISK_SIZE},mode=0755", "tmpfs", RAMDISK])
        # What the router set up there (heartbeat scripts, state files), as the lab seeded it.
        seed = router_dir(target.lab, target.router.name) / "seed" / "ramdisk"
        target.run(["cp", "-a", f"{seed}/.", RAMDISK])
    # Without its heartbeat the member may have gone FAULT: the pair settles again first.
    wait_for_election(target.plan)


# name -> (inject, clear, what it does), merged into faults.FAULTS.
SERVICE_FAULTS: dict[str, FaultSpec] = {
    "password-server-wrong-address": (
        _misplace_password_server,
        _place_password_server,
        f"the password server runs on {WRONG_PASSWORD_ADDRESS}:8080, not where the VMs ask",
    ),
    "password-server-port-taken": (
        _start_on_taken_port,
        _forget_taken_port,
        "a second password server finds 8080 taken and dies, logging the exception to /var/log/messages",
    ),
    "userdata-vhost-missing": (
        _leave_stale_vhost,
        _restore_vhost,
        "the guest address's apache2 vhost replaced by one for an old address (as an IP change leaves it)",
    ),
    "hosts-vm-missing": (_drop_vm_from_hosts, _restore_vm_in_hosts, "one VM's line removed from /etc/hosts"),
    "nic-link-flap-logged": (
        _log_link_flap,
        _forget_link_flap,
        "kern.log gets the NIC driver's 'NIC Link is Down' and 'Up' for the public NIC",
    ),
    "martian-source-storm": (
        _log_martians,
        _forget_martians,
        f"kern.log and messages get {MARTIAN_LINES} 'martian source' packets from a VM with a foreign address",
    ),
    "ramdisk-unmounted": (_unmount_ramdisk, _mount_ramdisk, "/ramdisk (keepalived's state tmpfs) unmounted"),
}
