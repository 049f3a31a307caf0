"""Faults injected for real into lab routers, and cleared again.

Each fault changes real processes, files or kernel state inside one router (never a faked
command output), so a probe sees it with the same commands it would run on a real VR:
dnsmasq-down, var-log-full, conntrack-near-limit, snat-missing, split-brain, config-apply-failed,
zombie-haproxy, sshd-down, mtu-mismatch, stale-lease, outdated-template, log-not-rotating,
password-server-down, password-token-missing, apache2-down, systemd-unreachable, kernel-oom-kill,
dhcphosts-missing, dhcphosts-vm-missing, dhcpopts-tag-missing, ramdisk-full and qemu-tap-failure (on the KVM
host's qemu log), plus the faults of faults_services (password server, vhosts, /etc/hosts, kernel lines,
/ramdisk), faults_dhcp (dhcpopts tags), faults_network (IP sets, IPv6 firewall, radvd, BGP) and faults_vpn
(conntrackd-down, conntrackd-not-syncing, s2s-tunnel-down, remote-access-vpn-down). Faults are
recorded in the lab state; the
registration is rewritten after each change because some faults change what the API says.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from devcloud.lab import daemons, faults_vpn, kvm_host, registration
from devcloud.lab.faults_dhcp import DHCP_FAULTS
from devcloud.lab.faults_network import NETWORK_FAULTS
from devcloud.lab.faults_services import SERVICE_FAULTS
from devcloud.lab.iptables_rules import snat_rule
from devcloud.lab.lifecycle import LabError, host_dir, mount_file, wait_for_election
from devcloud.lab.router_files import (
    OUTDATED_DATE,
    OUTDATED_VERSION,
    bash_date,
    config_apply_failure,
    dhcphosts,
    password_instances,
    python_log_line,
    release_line,
    syslog_time,
)
from devcloud.lab.state import load_state, save_state
from devcloud.lab.system_commands import ip_batch, run, run_inside, write_inside
from devcloud.lab.topology import LabPlan, Router, plan_lab

FILL_FILE = "/var/log/daemon.log.1"
CONNTRACK_FILL_RATIO = 0.92
MISMATCHED_MTU = 1450
CLOUD_LOG_TARGET = 10 * 1024 * 1024 + 512 * 1024
ZOMBIE_PID_FILE = "/run/haproxy-zombie.pid"
SPLIT_TIMEOUT = 15.0
TOKEN_FILE = "/tmp/passwdsrvrtoken"  # noqa: S108 - the real VR's path, inside the router's private /tmp
SYSTEMD_UNREACHABLE = "/run/lab-systemd-unreachable"  # read by the router's systemctl shim
KERN_LOG = "/var/log/kern.log"
DHCPHOSTS = "/etc/dhcphosts.txt"
RAMDISK_FILL = "/ramdisk/rrouter/keepalived.log.1"
OOM_MARK = "Out of memory"


class Target:
    """A router of a running lab, with the paths needed to act inside it."""

    def __init__(self, lab: str, router_name: str) -> None:
        state = load_state(lab)
        if state is None or state.status not in ("up", "building"):
            raise LabError(f"no lab named {lab!r} is up")
        self.lab = lab
        self.state = state
        self.plan: LabPlan = plan_lab(state.name, state.block, state.router_count)
        try:
            self.router: Router = self.plan.router(router_name)
        except KeyError:
            raise LabError(f"lab {lab!r} has no router {router_name!r}") from None
        self.namespace = self.router.namespace
        self.mount_file = mount_file(lab, self.namespace)

    def run(self, argv: list[str], stdin: bytes | None = None, check: bool = True) -> str:
        """Run a command inside the router."""
        return run_inside(self.namespace, self.mount_file, argv, stdin=stdin, check=check)


def parse_fault_spec(spec: str, plan: LabPlan | None = None) -> dict[str, list[str]]:
    """Parse `r-10-VM:dnsmasq-down,r-11-VM:var-log-full` into {router: [faults]}.

    With a plan, a router the lab would not have is refused too, before anything is built.
    """
    faults: dict[str, list[str]] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        router_name, separator, fault = item.partition(":")
        if not separator or fault not in FAULTS:
            raise LabError(f"bad fault {item!r}: use ROUTER:FAULT with FAULT one of {', '.join(sorted(FAULTS))}")
        if plan is not None and router_name not in {router.name for router in plan.routers}:
            raise LabError(
                f"lab {plan.name!r} would have no router {router_name!r}; its routers: "
                + ", ".join(router.name for router in plan.routers)
            )
        faults.setdefault(router_name, []).append(fault)
    return faults


def inject_faults(faults: dict[str, list[str]], lab: str = "vrc") -> None:
    """Inject every fault of a parsed spec into a running lab."""
    for router_name, names in faults.items():
        for fault in names:
            inject_fault(router_name, fault, lab=lab)


# dnsmasq-down -------------------------------------------------------------------------------


def _dnsmasq_down(target: Target) -> None:
    daemons.stop_and_wait(target.namespace, target.mount_file, "dnsmasq")


def _dnsmasq_up(target: Target) -> None:
    if target.router.redundant and registration.redundant_states(target.plan)[target.router.name] != "PRIMARY":
        return
    if daemons.read_pid(target.namespace, target.mount_file, "dnsmasq") is None:
        daemons.start(target.namespace, target.mount_file, "dnsmasq")


# var-log-full -------------------------------------------------------------------------------


def _fill_var_log(target: Target) -> None:
    # dd stops with "No space left on device", which is the point.
    target.run(["dd", "if=/dev/zero", f"of={FILL_FILE}", "bs=1M"], check=False)


def _empty_var_log(target: Target) -> None:
    target.run(["rm", "-f", FILL_FILE])


# conntrack-near-limit -----------------------------------------------------------------------


def _fill_conntrack(target: Target) -> None:
    maximum = int(target.run(["cat", "/proc/sys/net/netfilter/nf_conntrack_max"]).strip())
    count = int(target.run(["cat", "/proc/sys/net/netfilter/nf_conntrack_count"]).strip())
    # nf_conntrack_max is read-only inside a namespace on this kernel, so the table is filled
    # with real entries up to the machine's limit instead of lowering the limit.
    wanted = int(maximum * CONNTRACK_FILL_RATIO) - count
    vm = target.router.vms[0].ipaddress
    public = target.router.public.ipaddress
    lines = []
    for number in range(max(wanted, 0)):
        source_port = 1024 + number % 60000
        destination = f"198.18.{(number // 60000) % 256}.{1 + (number // 60000) // 256}"
        lines.append(
            f"-I -p udp -s {vm} -d {destination} --sport {source_port} --dport 53 -r {destination} "
            f"-q {public} --reply-port-src 53 --reply-port-dst {source_port} -t 86400"
        )
    target.run(["conntrack", "-R", "-"], stdin=("\n".join(lines) + "\n").encode(), check=False)


def _flush_conntrack(target: Target) -> None:
    target.run(["conntrack", "-F"], check=False)


# snat-missing -------------------------------------------------------------------------------


def _snat_args(target: Target, action: str) -> list[str]:
    rule = snat_rule(target.router).split()
    return ["iptables", "-t", "nat", action, *rule[1:]]


def _delete_snat(target: Target) -> None:
    target.run(_snat_args(target, "-D"))


def _restore_snat(target: Target) -> None:
    if not _snat_present(target):
        target.run(_snat_args(target, "-A"))


def _snat_present(target: Target) -> bool:
    return snat_rule(target.router) in target.run(["iptables-save", "-t", "nat"])


# split-brain --------------------------------------------------------------------------------


def _pair(target: Target) -> tuple[Router, Router]:
    if not target.router.redundant or target.router.pair_name is None:
        raise LabError(f"{target.router.name} is not a redundant router")
    return target.router, target.plan.router(target.router.pair_name)


def _isolate_pair(target: Target, isolated: str) -> None:
    for member in _pair(target):
        port = member.guest_nics()[0].peer_name
        run(
            [
                "ip",
                "netns",
                "exec",
                target.plan.switch_namespace,
                "bridge",
                "link",
                "set",
                "dev",
                port,
                "isolated",
                isolated,
            ]
        )


def _split_brain(target: Target) -> None:
    # Bridge port isolation stops the VRRP adverts between the two members (and nothing else
    # they need), so each one's keepalived times out its peer and goes PRIMARY for real.
    _isolate_pair(target, "on")
    first, second = _pair(target)

    def both_primary() -> bool:
        states = registration.redundant_states(target.plan)
        return states[first.name] == states[second.name] == "PRIMARY"

    _wait(both_primary, "both members to become PRIMARY", SPLIT_TIMEOUT)


def _heal_split_brain(target: Target) -> None:
    _isolate_pair(target, "off")
    wait_for_election(target.plan)


# config-apply-failed ------------------------------------------------------------------------


def _append_apply_failure(target: Target) -> None:
    text = config_apply_failure(datetime.now(UTC), target.router.id)
    write_inside(target.namespace, target.mount_file, "/var/log/cloud.log", text.encode(), append=True)


def _append_apply_success(target: Target) -> None:
    # A log cannot be un-written: clearing means a later apply that succeeded, as on a real VR.
    now = datetime.now(UTC)
    name = f"ip_associations.json.{target.router.id}"
    lines = [
        f"{bash_date(now)} : VR config: executing: /opt/cloud/bin/update_config.py {name}",
        python_log_line(now, "INFO", f"update_config.py :: Processing incoming file => {name}"),
        python_log_line(now, "INFO", f"Processing JSON file {name}"),
        python_log_line(now, "INFO", "Executing: conntrackd -F"),
    ]
    write_inside(
        target.namespace, target.mount_file, "/var/log/cloud.log", ("\n".join(lines) + "\n").encode(), append=True
    )


# zombie-haproxy -----------------------------------------------------------------------------


def _start_zombie_haproxy(target: Target) -> None:
    script = str(Path(__file__).with_name("zombie_haproxy.py"))
    target.run(["/bin/bash", "-c", 'exec -a haproxy /usr/bin/python3 -I "$0" "$1"', script, ZOMBIE_PID_FILE])
    _wait(lambda: _zombie_children(target) > 0, "defunct haproxy children")


def _zombie_parent(target: Target) -> int | None:
    text = target.run(["cat", ZOMBIE_PID_FILE], check=False).strip()
    return int(text) if text.isdigit() else None


def _zombie_children(target: Target) -> int:
    parent = _zombie_parent(target)
    if parent is None:
        return 0
    # The pid file holds a pid of the router's PID namespace: ask the router's own ps.
    output = target.run(["ps", "-o", "stat=,comm=", "--ppid", str(parent)], check=False)
    return sum(1 for line in output.splitlines() if line.strip().startswith("Z") and "haproxy" in line)


def _stop_zombie_haproxy(target: Target) -> None:
    parent = _zombie_parent(target)
    if parent is not None:
        target.run(["kill", "-KILL", str(parent)], check=False)
        _wait(lambda: _exited(target, parent), "the zombie haproxy parent to exit")
    target.run(["rm", "-f", ZOMBIE_PID_FILE])


def _exited(target: Target, pid: int) -> bool:
    # A killed process waiting to be reaped by the router's init has an empty cmdline.
    return not target.run(["cat", f"/proc/{pid}/cmdline"], check=False)


# sshd-down ----------------------------------------------------------------------------------


def _sshd_down(target: Target) -> None:
    daemons.stop(target.namespace, target.mount_file, "sshd")
    _wait(lambda: daemons.read_pid(target.namespace, target.mount_file, "sshd") is None, "sshd to exit")


def _sshd_up(target: Target) -> None:
    if daemons.read_pid(target.namespace, target.mount_file, "sshd") is None:
        daemons.start(target.namespace, target.mount_file, "sshd")


# mtu-mismatch -------------------------------------------------------------------------------


def _set_guest_mtu(target: Target, mtu: int) -> None:
    ip_batch([f"link set {target.router.guest_nics()[0].device} mtu {mtu}"], target.namespace)


# stale-lease --------------------------------------------------------------------------------

STALE_MAC = "02:00:de:ad:be:ef"


def _vm_namespace(target: Target) -> str:
    return f"{target.lab}-vm{target.router.index}"


def _stale_lease(target: Target) -> None:
    vm = target.router.vms[0]
    nic = target.router.guest_nics()[0]
    leases = target.run(["cat", "/var/lib/misc/dnsmasq.leases"]).splitlines()
    rewritten = [
        f"0 {STALE_MAC} {vm.ipaddress} old-{vm.name} *" if f" {vm.ipaddress} " in f" {line} " else line
        for line in leases
    ]
    # dnsmasq owns the lease file while it runs: stop it, edit, start it, as an operator would.
    had_dnsmasq = daemons.stop_and_wait(target.namespace, target.mount_file, "dnsmasq")
    write_inside(
        target.namespace, target.mount_file, "/var/lib/misc/dnsmasq.leases", ("\n".join(rewritten) + "\n").encode()
    )
    if had_dnsmasq:
        daemons.start(target.namespace, target.mount_file, "dnsmasq")
    vm_namespace = _vm_namespace(target)
    state = load_state(target.lab)
    if state is not None and vm_namespace not in state.namespaces:
        state.namespaces.append(vm_namespace)
        save_state(state)
    run(["ip", "netns", "add", vm_namespace])
    peer = f"r{target.router.index}vm"
    ip_batch([f"link add {peer} netns {target.plan.switch_namespace} type veth peer name eth0 netns {vm_namespace}"])
    ip_batch([f"link set {peer} master {nic.peer_bridge}", f"link set {peer} up"], target.plan.switch_namespace)
    ip_batch(["link set lo up", f"link set eth0 address {vm.macaddress}", "link set eth0 up"], vm_namespace)
    script = str(Path(__file__).with_name("dhcp_discover.py"))
    for _ in range(10):
        run(["ip", "netns", "exec", vm_namespace, "/usr/bin/python3", "-I", script, "eth0", vm.macaddress, vm.name])
        time.sleep(0.3)
        log = target.run(["cat", "/var/log/dnsmasq.log"], check=False)
        if f"{vm.macaddress} no address available" in log:
            return
    raise LabError(f"dnsmasq on {target.router.name} did not log the stale lease")


def _fresh_lease(target: Target) -> None:
    vm = target.router.vms[0]
    vm_namespace = _vm_namespace(target)
    run(["ip", "netns", "del", vm_namespace], check=False)
    state = load_state(target.lab)
    if state is not None and vm_namespace in state.namespaces:
        state.namespaces.remove(vm_namespace)
        save_state(state)
    leases = target.run(["cat", "/var/lib/misc/dnsmasq.leases"]).splitlines()
    rewritten = [f"0 {vm.macaddress} {vm.ipaddress} {vm.name} *" if STALE_MAC in line else line for line in leases]
    had_dnsmasq = daemons.stop_and_wait(target.namespace, target.mount_file, "dnsmasq")
    write_inside(
        target.namespace, target.mount_file, "/var/lib/misc/dnsmasq.leases", ("\n".join(rewritten) + "\n").encode()
    )
    if had_dnsmasq:
        daemons.start(target.namespace, target.mount_file, "dnsmasq")


# outdated-template --------------------------------------------------------------------------


def _outdated_release(target: Target) -> None:
    line = release_line(OUTDATED_VERSION, OUTDATED_DATE)
    write_inside(target.namespace, target.mount_file, "/etc/cloudstack-release", (line + "\n").encode())


def _current_release(target: Target) -> None:
    write_inside(target.namespace, target.mount_file, "/etc/cloudstack-release", (release_line() + "\n").encode())


# log-not-rotating ---------------------------------------------------------------------------


def _grow_cloud_log(target: Target) -> None:
    size = int(target.run(["stat", "-c", "%s", "/var/log/cloud.log"]).strip())
    now = datetime.now(UTC)
    block = "".join(
        python_log_line(now, "INFO", f"Executing: ip rule show table Table_eth{n % 3} {n:08d}") + "\n"
        for n in range(2000)
    ).encode()
    chunks = max(1, (CLOUD_LOG_TARGET - size) // len(block) + 1)
    write_inside(target.namespace, target.mount_file, "/var/log/cloud.log", block * chunks, append=True)
    target.run(["sh", "-c", "rm -f /var/log/cloud.log.[0-9]*"])


def _rotate_cloud_log(target: Target) -> None:
    # What logrotate's copytruncate + compress does to cloud.log.
    target.run(["sh", "-c", "gzip -c /var/log/cloud.log > /var/log/cloud.log.1.gz && truncate -s 0 /var/log/cloud.log"])


# qemu-tap-failure (on the KVM host) ---------------------------------------------------------


def _host_qemu_log(target: Target, text: str, state: str, reason: str) -> None:
    if target.router.hypervisor != "KVM":
        raise LabError(f"{target.router.name} does not run on the lab KVM host")
    host_mount = mount_file(target.lab, target.plan.host_namespace)
    log = f"/var/log/libvirt/qemu/{target.router.name}.log"
    write_inside(target.plan.host_namespace, host_mount, log, text.encode(), append=True)
    domains = [
        {**domain, "state": state, "reason": reason} if domain["name"] == target.router.name else domain
        for domain in kvm_host.domain_list(target.plan)
    ]
    kvm_host.write_domains(host_dir(target.lab) / "domains.json", domains)


def _tap_failure(target: Target) -> None:
    _host_qemu_log(target, kvm_host.tap_failure(datetime.now(UTC), 0), "shut off", "failed")


def _tap_recovered(target: Target) -> None:
    started = datetime.now(UTC)
    _host_qemu_log(target, kvm_host.qemu_log(target.plan, target.router, started, 1), "running", "booted")


# password-server-down, password-token-missing, apache2-down, systemd-unreachable -----------


def _serves_passwords(target: Target) -> bool:
    router = target.router
    return not router.redundant or registration.redundant_states(target.plan)[router.name] == "PRIMARY"


def _systemctl(target: Target, verb: str, unit: str) -> None:
    target.run(["/usr/local/bin/systemctl", verb, unit])


def _password_units(target: Target) -> list[str]:
    return [f"cloud-password-server@{instance}" for instance in password_instances(target.router)]


def _password_server_down(target: Target) -> None:
    for unit in _password_units(target):
        _systemctl(target, "stop", unit)


def _password_server_up(target: Target) -> None:
    if _serves_passwords(target):
        for unit in _password_units(target):
            _systemctl(target, "start", unit)


def _remove_token(target: Target) -> None:
    target.run(["rm", "-f", TOKEN_FILE])


def _renew_token(target: Target) -> None:
    # The password server writes a new token when it starts, as the real one does.
    if _serves_passwords(target):
        for unit in _password_units(target):
            _systemctl(target, "restart", unit)


def _apache_down(target: Target) -> None:
    _systemctl(target, "stop", "apache2")


def _apache_up(target: Target) -> None:
    _systemctl(target, "start", "apache2")


def _systemd_unreachable(target: Target) -> None:
    target.run(["touch", SYSTEMD_UNREACHABLE])


def _systemd_reachable(target: Target) -> None:
    target.run(["rm", "-f", SYSTEMD_UNREACHABLE])


# kernel-oom-kill ----------------------------------------------------------------------------


def _oom_lines(target: Target) -> list[str]:
    # What the kernel writes when it kills a process for memory; rsyslog puts kern.err in kern.log only.
    now = syslog_time(datetime.now(UTC))
    name = target.router.name
    return [
        f"{now} {name} kernel: [86400.100231] haproxy invoked oom-killer: "
        "gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0",
        f"{now} {name} kernel: [86400.100587] {OOM_MARK}: Killed process 2291 (haproxy) total-vm:301544kB, "
        "anon-rss:201232kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:560kB oom_score_adj:0",
    ]


def _append_oom(target: Target) -> None:
    write_inside(
        target.namespace, target.mount_file, KERN_LOG, ("\n".join(_oom_lines(target)) + "\n").encode(), append=True
    )


def _drop_oom(target: Target) -> None:
    # The lab's own lines go again (the rule looks back a day, a test cannot wait that long).
    target.run(["sed", "-i", "/oom-killer\\|Out of memory: Killed process/d", KERN_LOG])


# dhcphosts-missing, dhcphosts-vm-missing -----------------------------------------------------


def _remove_dhcphosts(target: Target) -> None:
    target.run(["rm", "-f", DHCPHOSTS])


def _drop_last_dhcphost(target: Target) -> None:
    # One VM's entry lost: dnsmasq keeps running and ignores that MAC (dhcp-ignore=tag:!known).
    target.run(["sed", "-i", "$d", DHCPHOSTS])


def _rewrite_dhcphosts(target: Target) -> None:
    write_inside(target.namespace, target.mount_file, DHCPHOSTS, dhcphosts(target.router).content)


# ramdisk-full --------------------------------------------------------------------------------


def _fill_ramdisk(target: Target) -> None:
    # dd stops with "No space left on device" once the 8 MB tmpfs is full.
    target.run(["dd", "if=/dev/zero", f"of={RAMDISK_FILL}", "bs=1M"], check=False)


def _empty_ramdisk(target: Target) -> None:
    target.run(["rm", "-f", RAMDISK_FILL])


class Fault(NamedTuple):
    """How to inject one fault, how to clear it, and what it does (for `scripts/run --help`)."""

    inject: Callable[[Target], None]
    clear: Callable[[Target], None]
    what: str


FAULTS: dict[str, Fault] = {
    "dnsmasq-down": Fault(_dnsmasq_down, _dnsmasq_up, "dnsmasq stopped: no DHCP or DNS for the tenant"),
    "var-log-full": Fault(_fill_var_log, _empty_var_log, "/var/log filled to the last block"),
    "conntrack-near-limit": Fault(_fill_conntrack, _flush_conntrack, "conntrack table filled to about 92%"),
    "snat-missing": Fault(_delete_snat, _restore_snat, "the source-NAT rule deleted from the nat table"),
    "split-brain": Fault(_split_brain, _heal_split_brain, "redundant pair cut apart: both members PRIMARY"),
    "config-apply-failed": Fault(
        _append_apply_failure, _append_apply_success, "cloud.log gets a failed vr_cfg.sh apply with its traceback"
    ),
    "zombie-haproxy": Fault(_start_zombie_haproxy, _stop_zombie_haproxy, "haproxy leaves defunct children"),
    "sshd-down": Fault(_sshd_down, _sshd_up, "the router's sshd stopped: Running but unmanageable"),
    "mtu-mismatch": Fault(
        lambda target: _set_guest_mtu(target, MISMATCHED_MTU),
        lambda target: _set_guest_mtu(target, 1500),
        f"guest NIC MTU set to {MISMATCHED_MTU} against the API's 1500",
    ),
    "stale-lease": Fault(_stale_lease, _fresh_lease, "a stale lease holds a VM's address for another MAC"),
    "outdated-template": Fault(_outdated_release, _current_release, "/etc/cloudstack-release says an older template"),
    "log-not-rotating": Fault(_grow_cloud_log, _rotate_cloud_log, "cloud.log grown past 10 MB without rotation"),
    "password-server-down": Fault(
        _password_server_down, _password_server_up, "cloud-password-server@<ip> stopped: VM password resets fail"
    ),
    "password-token-missing": Fault(
        _remove_token, _renew_token, "/tmp/passwdsrvrtoken removed: saving a VM password fails"
    ),
    "apache2-down": Fault(_apache_down, _apache_up, "apache2 stopped: VMs get no userdata or metadata"),
    "systemd-unreachable": Fault(
        _systemd_unreachable, _systemd_reachable, "systemctl cannot talk to systemd: unit states unknown"
    ),
    "dhcphosts-missing": Fault(
        _remove_dhcphosts, _rewrite_dhcphosts, "/etc/dhcphosts.txt deleted: no VM gets a DHCP lease"
    ),
    "dhcphosts-vm-missing": Fault(
        _drop_last_dhcphost, _rewrite_dhcphosts, "one VM's line removed from /etc/dhcphosts.txt (the databag has it)"
    ),
    "ramdisk-full": Fault(
        _fill_ramdisk, _empty_ramdisk, "/ramdisk (keepalived's state tmpfs) filled to the last block"
    ),
    "kernel-oom-kill": Fault(_append_oom, _drop_oom, "kern.log gets an OOM kill of haproxy"),
    "qemu-tap-failure": Fault(
        _tap_failure, _tap_recovered, "KVM host: the router's qemu log shows a tap device failure, domain shut off"
    ),
    **{name: Fault(*spec) for name, spec in SERVICE_FAULTS.items()},
    **{name: Fault(*spec) for name, spec in DHCP_FAULTS.items()},
    **{name: Fault(*spec) for name, spec in NETWORK_FAULTS.items()},
    **{name: Fault(*spec) for name, spec in faults_vpn.FAULTS.items()},
}


def _wait(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise LabError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _record(target: Target, fault: str, present: bool) -> None:
    state = load_state(target.lab)
    if state is None:
        return
    current = state.faults.setdefault(target.router.name, [])
    if present and fault not in current:
        current.append(fault)
    if not present and fault in current:
        current.remove(fault)
    if not current:
        state.faults.pop(target.router.name)
    save_state(state)
    if state.status == "up":
        registration.write_registration(target.plan, state)


def inject_fault(router_name: str, fault: str, lab: str = "vrc") -> None:
    """Inject a fault into a router of a running lab, for real."""
    if fault not in FAULTS:
        raise LabError(f"unknown fault {fault!r}; known: {', '.join(sorted(FAULTS))}")
    target = Target(lab, router_name)
    FAULTS[fault].inject(target)
    _record(target, fault, present=True)


def clear_fault(router_name: str, fault: str, lab: str = "vrc") -> None:
    """Undo a fault, restoring the healthy state where that is possible."""
    if fault not in FAULTS:
        raise LabError(f"unknown fault {fault!r}; known: {', '.join(sorted(FAULTS))}")
    target = Target(lab, router_name)
    FAULTS[fault].clear(target)
    _record(target, fault, present=False)
