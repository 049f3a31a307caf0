"""Capture the probe fixtures by running every probe's real command against a VR-like namespace.

Run as root from the repository: `.venv/bin/python -m devcloud.capture.namespaces`
(add `--regenerate` to rewrite only the expected JSON from the existing captures).
It builds network namespaces laid out like an isolated router, a VPC router and a KVM
host's cloud0 bridge (veth pairs, addresses, MTUs, policy routes and iptables-restore of
the CloudStack rule layout), then runs each probe's exact `command` inside them with
`sh -c`, in a private mount namespace whose /etc, /var and /opt are overlays carrying the
VR's files (vr_files.py) and, where the probe looks at processes, a private pid namespace
with stand-in processes titled like the VR's daemons (copies of `cat` blocked on a FIFO,
so that ps, /proc and the fd links are real). Only stdout is kept, as the SSH runner
keeps it. The namespaces and /ramdisk (a mount point it creates) are removed at the end.
Three things are not captured as they stand, because this machine lacks them: systemctl
is a stub printing the chosen `is-active` answer (no systemd here); the near-full
conntrack case is the real capture with its count and drop counters edited (a namespace
cannot fill the table); `virsh domiflist`/`domstate` outputs are written in virsh's
format (no libvirt here). Lab-router captures should replace these first.
The expected `.json` files are written from the parser and must be read before committing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devcloud.capture import vr_files as vr
from diagnostics.probes import PROBES_BY_NAME

# The golden fixtures live with the tests (tests/fixtures/<probe>/), not beside this module.
FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures"
ISO, VPC, HOST, PEER = "vrcprobe-iso", "vrcprobe-vpc", "vrcprobe-host", "vrcprobe-peer"
OLD_MTIME = 1742334000  # 2025-03-18 21:40 UTC: keeps file listings stable between captures

SERVICES_HEALTHY = (
    ("dnsmasq", "/usr/sbin/dnsmasq --conf-file=/etc/dnsmasq.conf --pid-file=/run/dnsmasq/dnsmasq.pid"),
    ("haproxy", "/usr/sbin/haproxy -f /etc/haproxy/haproxy.cfg -p /var/run/haproxy.pid -D"),
    ("keepalived", "/usr/sbin/keepalived --dont-fork -D"),
    ("conntrackd", "/usr/sbin/conntrackd -C /etc/conntrackd/conntrackd.conf"),
    ("sshd", "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"),
    ("charon", "/usr/lib/ipsec/charon"),
    ("apache2", "/usr/sbin/apache2 -k start"),
    ("python3", "python3 /opt/cloud/bin/passwd_server_ip.py 10.1.1.1"),
    ("rsyslogd", "/usr/sbin/rsyslogd -n -iNONE"),
    ("cron", "/usr/sbin/cron -f"),
)


def sh(*args: str) -> None:
    """Run a setup command, failing loudly."""
    subprocess.run(args, check=True)


def netns(name: str, *args: str) -> None:
    """Run `ip` inside a namespace."""
    sh("ip", "-n", name, *args)


def veth(ns: str, dev: str, peer: str, mtu: int = 1500) -> None:
    """A veth with one end named `dev` in `ns` and the other in the peer namespace, both up."""
    sh("ip", "link", "add", "name", dev, "netns", ns, "type", "veth", "peer", "name", peer, "netns", PEER)
    netns(ns, "link", "set", dev, "mtu", str(mtu), "up")
    netns(PEER, "link", "set", peer, "mtu", str(mtu), "up")


def iptables_restore(ns: str, rules: str) -> None:
    """Load a rule set into a namespace."""
    subprocess.run(["ip", "netns", "exec", ns, "iptables-restore"], input=rules.encode(), check=True)


def build_namespaces() -> None:
    """The isolated router, the VPC router (eth1 down: a BACKUP) and the host with cloud0."""
    for name in (ISO, VPC, HOST, PEER):
        sh("ip", "netns", "add", name)
        netns(name, "link", "set", "lo", "up")
    veth(ISO, "eth0", "iso0")
    veth(ISO, "eth1", "iso1")
    veth(ISO, "eth2", "iso2")
    netns(ISO, "addr", "add", "10.1.1.2/24", "brd", "10.1.1.255", "dev", "eth0")
    netns(ISO, "addr", "add", "10.1.1.1/24", "brd", "10.1.1.255", "dev", "eth0")
    netns(ISO, "addr", "add", "169.254.3.93/16", "brd", "169.254.255.255", "dev", "eth1")
    netns(ISO, "addr", "add", "198.51.100.10/24", "brd", "198.51.100.255", "dev", "eth2")
    netns(PEER, "addr", "add", "198.51.100.1/24", "dev", "iso2")
    netns(ISO, "route", "add", "default", "via", "198.51.100.1", "dev", "eth2")
    netns(ISO, "route", "add", "default", "via", "198.51.100.1", "dev", "eth2", "table", "102")
    netns(ISO, "route", "add", "10.1.1.0/24", "dev", "eth0", "table", "102")
    netns(ISO, "rule", "add", "fwmark", "0x66", "table", "102", "priority", "32761")
    netns(ISO, "rule", "add", "from", "198.51.100.10", "table", "102", "priority", "32762")
    for rules in (vr.ISOLATED_FILTER, vr.ISOLATED_NAT, vr.ISOLATED_MANGLE):
        iptables_restore(ISO, rules)

    veth(VPC, "eth0", "vpc0")
    veth(VPC, "eth1", "vpc1")
    veth(VPC, "eth2", "vpc2", mtu=1450)
    netns(VPC, "addr", "add", "169.254.1.20/16", "brd", "169.254.255.255", "dev", "eth0")
    netns(VPC, "addr", "add", "198.51.100.20/24", "brd", "198.51.100.255", "dev", "eth1")
    netns(VPC, "addr", "add", "10.10.1.1/24", "brd", "10.10.1.255", "dev", "eth2")
    # A BACKUP VPC router has its public NIC down, so the default route of Table_eth1 cannot exist.
    netns(VPC, "link", "set", "eth1", "down")
    netns(VPC, "rule", "add", "fwmark", "0x65", "table", "101", "priority", "32761")
    netns(VPC, "route", "add", "10.10.1.0/24", "dev", "eth2", "table", "252")
    for rules in (vr.VPC_FILTER, vr.VPC_NAT, vr.VPC_MANGLE):
        iptables_restore(VPC, rules)

    netns(HOST, "link", "add", "cloud0", "type", "bridge")
    netns(HOST, "addr", "add", "169.254.0.1/16", "brd", "169.254.255.255", "dev", "cloud0")
    netns(HOST, "link", "set", "cloud0", "up")
    for tap in ("vnet0", "vnet3"):
        sh("ip", "link", "add", "name", tap, "netns", HOST, "type", "veth", "peer", "name", f"p{tap}", "netns", PEER)
        netns(HOST, "link", "set", tap, "master", "cloud0", "up")
        netns(PEER, "link", "set", f"p{tap}", "up")


def remove_namespaces() -> None:
    """Delete what build_namespaces made."""
    for name in (ISO, VPC, HOST, PEER):
        subprocess.run(["ip", "netns", "delete", name], check=False)


RT_TABLES = "255\tlocal\n254\tmain\n253\tdefault\n0\tunspec\n101\tTable_eth1\n102\tTable_eth2\n251\tstatic_route_back\n252\tstatic_route\n"

_SETUP = r"""
set -e
mount --make-rprivate /
for d in etc var opt; do
  mount -t overlay overlay -o "lowerdir=/$d,upperdir=$R/up/$d,workdir=$R/work/$d" "/$d"
done
if [ -n "$TMPFS_LOG" ]; then mount -t tmpfs -o "$TMPFS_LOG" tmpfs /var/log; fi
if [ -d "$R/ramdisk" ]; then mount --bind "$R/ramdisk" /ramdisk; fi
if [ -f "$R/systemctl" ]; then mount --bind "$R/systemctl" /usr/bin/systemctl; fi
# A case that fills /var/log on purpose makes cp fail on the last file; that is the point.
cp -a "$R/stage/." / || true
if [ -f "$R/services.sh" ]; then exec unshare -pf --mount-proc bash "$R/services.sh"; fi
exec sh -c "$PROBE_COMMAND"
"""


def _services_script(root: Path, services: tuple[tuple[str, str], ...], zombies: int, hold_deleted: str) -> str:
    lines = ["set -e", f"mkfifo {root}/fifo"]
    for index, (comm, title) in enumerate(services):
        binary = root / "bin" / str(index) / comm
        binary.parent.mkdir(parents=True)
        shutil.copy("/bin/cat", binary)
        hold = f" 3<{hold_deleted}" if comm == "rsyslogd" and hold_deleted else ""
        if comm == "haproxy" and zombies:
            child = root / "bin" / "zombie" / "haproxy"
            child.parent.mkdir(parents=True)
            shutil.copy("/bin/true", child)
            starts = " ".join(f"{child} &" for _ in range(zombies))
            # The children exit at once; the exec'd parent never waits, so they stay <defunct>.
            lines.append(f"bash -c '{starts} exec -a \"{title}\" {binary} <> {root}/fifo' &")
        else:
            lines.append(f"(exec -a '{title}' {binary} <> {root}/fifo{hold}) &")
    if hold_deleted:
        lines += ["sleep 0.3", f"rm -f {hold_deleted}"]
    lines += ["sleep 0.5", 'sh -c "$PROBE_COMMAND"']
    return "\n".join(lines) + "\n"


def _tmpfs_options(tmpfs_log: bool | str) -> str:
    """Mount options for a private /var/log: True means a roomy one, a string is used as given."""
    if isinstance(tmpfs_log, str):
        return tmpfs_log
    return "size=64m" if tmpfs_log else ""


def run_probe(
    ns: str,
    command: str,
    files: dict[str, str] | None = None,
    *,
    services: tuple[tuple[str, str], ...] = (),
    zombies: int = 0,
    systemctl: str | None = None,
    ramdisk: bool = False,
    tmpfs_log: bool | str = False,
    sizes: dict[str, int] | None = None,
    hold_deleted: str = "",
) -> str:
    """The stdout of `sh -c command` inside the namespace with the given files and processes."""
    with tempfile.TemporaryDirectory(prefix="vrcprobe-") as tmp:
        root = Path(tmp)
        for d in ("etc", "var", "opt"):
            (root / "up" / d).mkdir(parents=True)
            (root / "work" / d).mkdir(parents=True)
        stage = root / "stage"
        stage.mkdir()
        for path, content in {"/etc/iproute2/rt_tables": RT_TABLES, **(files or {})}.items():
            target = stage / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            os.utime(target, (OLD_MTIME, OLD_MTIME))
        for path, size in (sizes or {}).items():
            target = stage / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("ab") as handle:
                handle.truncate(size)
            os.utime(target, (OLD_MTIME, OLD_MTIME))
        if ramdisk:
            (root / "ramdisk").mkdir()
        if systemctl is not None:
            fake = root / "systemctl"
            fake.write_text(f"#!/bin/sh\nprintf '%s\\n' '{systemctl}'\n")
            fake.chmod(0o755)
        if services:
            (root / "services.sh").write_text(_services_script(root, services, zombies, hold_deleted))
        env = {**os.environ, "R": str(root), "PROBE_COMMAND": command, "TMPFS_LOG": _tmpfs_options(tmpfs_log)}
        result = subprocess.run(
            ["ip", "netns", "exec", ns, "unshare", "-m", "bash", "-c", _SETUP],
            env=env,
            capture_output=True,
            check=False,
            timeout=60,
        )
        # A probe may end non-zero (its last file missing); only no output at all is a capture failure.
        if not result.stdout:
            raise RuntimeError(f"no output from {command!r}: {result.stderr.decode(errors='replace')}")
        return result.stdout.decode("utf-8", errors="replace")


def save(probe: str, case: str, text: str) -> None:
    """Write the captured output and the parser's facts beside it."""
    folder = FIXTURES / probe
    folder.mkdir(exist_ok=True)
    (folder / f"{case}.txt").write_text(text)
    facts = PROBES_BY_NAME[probe].parse(text)
    (folder / f"{case}.json").write_text(json.dumps(facts.to_dict(), indent=2, sort_keys=True) + "\n")
    print(f"{probe}/{case}")


@contextmanager
def ramdisk_mount_point() -> Iterator[None]:
    """/ramdisk must exist to bind the stand-in over it; remove it afterwards if we made it."""
    made = not os.path.exists("/ramdisk")
    if made:
        os.mkdir("/ramdisk")
    try:
        yield
    finally:
        if made:
            os.rmdir("/ramdisk")


def command(probe: str) -> str:
    """A router probe's constant command."""
    return PROBES_BY_NAME[probe].command


def host_command(probe: str) -> str:
    """A host probe's command for the router r-12-VM at 169.254.3.93."""
    return PROBES_BY_NAME[probe].command_line("r-12-VM", "169.254.3.93")


ISO_VR_FILES = {
    "/etc/cloudstack/cmdline.json": vr.ISOLATED_CMDLINE,
    "/etc/dnsmasq.conf": vr.DNSMASQ_CONF,
    "/etc/dnsmasq.d/cloud.conf": vr.CLOUD_CONF,
    "/etc/dhcphosts.txt": vr.DHCPHOSTS,
    "/etc/dhcpopts.txt": vr.DHCPOPTS,
    "/var/lib/misc/dnsmasq.leases": vr.LEASES,
    "/etc/haproxy/haproxy.cfg": vr.HAPROXY_CFG,
    "/etc/keepalived/keepalived.conf": vr.KEEPALIVED_CONF,
    "/etc/cloudstack-release": "Cloudstack Release 4.20.1 Tue Jun 10 09:12:44 UTC 2025\n",
    "/var/cache/cloud/cloud-scripts-signature": "3c9d7f1e0b2a4c6d8e0f1a2b3c4d5e6f\n",
    "/var/cache/cloud/boot_up_done": "",
}
VPC_VR_FILES = {"/etc/cloudstack/cmdline.json": vr.VPC_CMDLINE, "/etc/cloudstack/ips.json": vr.VPC_IPS}


def capture_network() -> None:
    """interfaces, routes and the three iptables tables on both router types."""
    save("interfaces", "isolated_primary", run_probe(ISO, command("interfaces")))
    save("interfaces", "vpc_backup_eth1_down", run_probe(VPC, command("interfaces")))
    save("routes", "isolated", run_probe(ISO, command("routes")))
    save("routes", "vpc_table_eth1_without_default", run_probe(VPC, command("routes")))
    for table in ("filter", "nat", "mangle"):
        save(f"iptables_{table}", "isolated", run_probe(ISO, command(f"iptables_{table}")))
        save(f"iptables_{table}", "vpc", run_probe(VPC, command(f"iptables_{table}")))
    snat = "-A POSTROUTING -o eth2 -j SNAT --to-source 198.51.100.10"
    subprocess.run(["ip", "netns", "exec", ISO, "iptables", "-t", "nat", *snat.split()[0:0], "-D", *snat.split()[1:]])
    save("iptables_nat", "isolated_missing_snat", run_probe(ISO, command("iptables_nat")))


def capture_kernel() -> None:
    """conntrack, softirq, cpu, softnet, system, disk: real /proc of this machine."""
    healthy = run_probe(ISO, command("conntrack"))
    save("conntrack", "healthy", healthy)
    sections = healthy.split("==> ")
    count_max = "==> nf_conntrack_count <==\n987654\n==> nf_conntrack_max <==\n1000000\n==> " + sections[3]
    stat_rows = sections[4].splitlines()
    # Drops on a full table: the kernel's per-CPU drop/early_drop/insert_failed columns grow.
    header = stat_rows[1].split()
    rows = []
    for row in stat_rows[2:]:
        values = dict(zip(header, row.split(), strict=True))
        values.update(entries="000f1204", drop="000003e8", early_drop="00000190", insert_failed="00000032")
        rows.append(" ".join(values[h] for h in header))
    near_full = count_max + "==> " + "\n".join([stat_rows[0], stat_rows[1], *rows]) + "\n"
    save("conntrack", "near_full_with_drops", near_full)
    missing = (
        "==> nf_conntrack_count <==\ncat: /proc/sys/net/netfilter/nf_conntrack_count: No such file or directory\n"
        "==> nf_conntrack_max <==\ncat: /proc/sys/net/netfilter/nf_conntrack_max: No such file or directory\n"
        "==> nf_conntrack_buckets <==\ncat: /proc/sys/net/netfilter/nf_conntrack_buckets: No such file or directory\n"
        "==> stat <==\nhead: cannot open '/proc/net/stat/nf_conntrack' for reading: No such file or directory\n"
    )
    save("conntrack", "module_not_loaded", missing)
    for probe in ("softirq", "cpu", "softnet", "system"):
        save(probe, "captured", run_probe(ISO, command(probe)))
    save("disk", "captured", run_probe(ISO, command("disk")))
    save("disk", "var_log_separate_tmpfs", run_probe(ISO, command("disk"), tmpfs_log=True))
    full = {"/var/log/haproxy.log": "x" * (1024 * 1024)}
    save("disk", "var_log_full", run_probe(ISO, command("disk"), full, tmpfs_log="size=1m"))
    many = {f"/var/log/cloud.log.{n}": "" for n in range(1, 80)}
    save("disk", "var_log_out_of_inodes", run_probe(ISO, command("disk"), many, tmpfs_log="size=8m,nr_inodes=64"))


def capture_processes() -> None:
    """The VR's daemons healthy, with defunct haproxy children, and with keepalived and dnsmasq gone."""
    save("processes", "healthy", run_probe(ISO, command("processes"), services=SERVICES_HEALTHY))
    save("processes", "haproxy_defunct", run_probe(ISO, command("processes"), services=SERVICES_HEALTHY, zombies=3))
    down = tuple(s for s in SERVICES_HEALTHY if s[0] not in ("keepalived", "dnsmasq"))
    save("processes", "keepalived_and_dnsmasq_down", run_probe(ISO, command("processes"), services=down))


def capture_vrrp() -> None:
    """checkrouter's inputs on both router types in each state."""
    log = {"/ramdisk/rrouter/keepalived.log": vr.KEEPALIVED_LOG}
    iso = {"/etc/cloudstack/cmdline.json": vr.ISOLATED_CMDLINE, **log}
    save("vrrp", "isolated_primary", run_probe(ISO, command("vrrp"), iso, systemctl="active", ramdisk=True))
    save("vrrp", "isolated_keepalived_down", run_probe(ISO, command("vrrp"), iso, systemctl="inactive", ramdisk=True))
    netns(ISO, "addr", "del", "10.1.1.1/24", "dev", "eth0")
    save("vrrp", "isolated_backup", run_probe(ISO, command("vrrp"), iso, systemctl="active", ramdisk=True))
    netns(ISO, "addr", "add", "10.1.1.1/24", "brd", "10.1.1.255", "dev", "eth0")
    save("vrrp", "vpc_backup_eth1_down", run_probe(VPC, command("vrrp"), VPC_VR_FILES, systemctl="active"))
    no_guest = {**VPC_VR_FILES, "/etc/cloudstack/ips.json": vr.VPC_IPS_NO_GUEST}
    save("vrrp", "vpc_no_guest_nics_unknown", run_probe(VPC, command("vrrp"), no_guest, systemctl="active"))
    single = vr.ISOLATED_CMDLINE.replace('"redundant_router": "true"', '"redundant_router": "false"')
    save(
        "vrrp",
        "isolated_not_redundant",
        run_probe(ISO, command("vrrp"), {"/etc/cloudstack/cmdline.json": single}, systemctl="inactive"),
    )


def capture_files() -> None:
    """dnsmasq, versions, config, logs and logfiles from VR files in the overlays."""
    save("dnsmasq", "healthy", run_probe(ISO, command("dnsmasq"), ISO_VR_FILES))
    stale = {**ISO_VR_FILES, "/var/lib/misc/dnsmasq.leases": vr.LEASES_STALE}
    save("dnsmasq", "stale_lease", run_probe(ISO, command("dnsmasq"), stale))
    save("dnsmasq", "files_missing", run_probe(ISO, command("dnsmasq"), {"/etc/dnsmasq.conf": vr.DNSMASQ_CONF}))
    intent = {"/etc/cloudstack/dhcpentry.json": vr.DHCPENTRY, "/etc/hosts": vr.ETC_HOSTS}
    save("dhcp_intent", "healthy", run_probe(ISO, command("dhcp_intent"), intent))
    extra = {"/etc/cloudstack/dhcpentry.json": vr.DHCPENTRY_EXTRA, "/etc/hosts": vr.ETC_HOSTS}
    save("dhcp_intent", "vm_not_written_out", run_probe(ISO, command("dhcp_intent"), extra))
    save("dhcp_intent", "databag_missing", run_probe(ISO, command("dhcp_intent"), {"/etc/hosts": vr.ETC_HOSTS}))
    save("versions", "healthy", run_probe(ISO, command("versions"), ISO_VR_FILES))
    save("versions", "release_missing", run_probe(ISO, command("versions")))
    save("config", "isolated_redundant", run_probe(ISO, command("config"), ISO_VR_FILES))
    save(
        "config",
        "haproxy_and_keepalived_missing",
        run_probe(ISO, command("config"), {"/etc/dnsmasq.conf": vr.DNSMASQ_CONF}),
    )

    def logs(
        cloud: str, dnsmasq: str, daemon: str, kern: str = vr.KERN_LOG_HEALTHY, messages: str = vr.MESSAGES_HEALTHY
    ) -> dict[str, str]:
        return {
            "/var/log/cloud.log": cloud,
            "/var/log/dnsmasq.log": dnsmasq,
            "/var/log/routerServiceMonitor.log": vr.MONITOR_LOG,
            "/var/log/daemon.log": daemon,
            "/var/log/kern.log": kern,
            "/var/log/messages": messages,
        }

    def run(files: dict[str, str]) -> str:
        return run_probe(ISO, command("logs"), files, tmpfs_log=True)

    save("logs", "benign_errors_only", run(logs(vr.CLOUD_LOG_HEALTHY, vr.DNSMASQ_LOG_HEALTHY, vr.DAEMON_LOG_HEALTHY)))
    save("logs", "config_apply_failed_traceback", run(logs(vr.CLOUD_LOG_APPLY_FAILED, vr.DNSMASQ_LOG_HEALTHY, "")))
    save(
        "logs",
        "dhcp_and_daemon_problems",
        run(logs(vr.CLOUD_LOG_HEALTHY, vr.DNSMASQ_LOG_PROBLEMS, vr.DAEMON_LOG_PROBLEMS)),
    )
    save(
        "logs",
        "kernel_and_syslog_problems",
        run(
            logs(
                vr.CLOUD_LOG_HEALTHY,
                vr.DNSMASQ_LOG_EXHAUSTED,
                vr.DAEMON_LOG_HEALTHY,
                vr.KERN_LOG_PROBLEMS,
                vr.MESSAGES_PROBLEMS,
            )
        ),
    )
    save("logs", "files_missing", run({"/var/log/cloud.log": vr.CLOUD_LOG_HEALTHY}))
    save("logs", "hostile_lines", run(logs(vr.HOSTILE_LOG, "", vr.HOSTILE_LOG)))

    log_files = {"/var/log/cloud.log": vr.CLOUD_LOG_HEALTHY, "/var/log/dnsmasq.log": vr.DNSMASQ_LOG_HEALTHY}
    sizes = {
        "/var/log/cloud.log.1": 10 * 1024 * 1024,
        "/var/log/cloud.log.2.gz": 1200345,
        "/var/log/daemon.log": 52428800,
        "/var/log/daemon.log.1": 48000000,
        "/var/log/haproxy.log": 1024,
        "/var/log/haproxy.log.1": 3 * 1024 * 1024 * 1024,
    }
    services = SERVICES_HEALTHY
    save(
        "logfiles",
        "rotated",
        run_probe(ISO, command("logfiles"), log_files, sizes=sizes, tmpfs_log=True, services=services),
    )
    save(
        "logfiles",
        "deleted_haproxy_log_held_by_rsyslog",
        run_probe(
            ISO,
            command("logfiles"),
            log_files,
            sizes=sizes,
            services=services,
            tmpfs_log=True,
            hold_deleted="/var/log/haproxy.log.1",
        ),
    )


def capture_host() -> None:
    """The host's cloud0 side from the host namespace; virsh output is not available here."""
    save("host_cloud0", "healthy", run_probe(HOST, host_command("host_cloud0")))
    netns(HOST, "link", "set", "cloud0", "down")
    save("host_cloud0", "bridge_down", run_probe(HOST, host_command("host_cloud0")))
    netns(HOST, "link", "set", "cloud0", "up")
    qemu = {"/var/log/libvirt/qemu/r-12-VM.log": vr.QEMU_LOG}
    save("host_qemu_log", "destroyed", run_probe(HOST, host_command("host_qemu_log"), qemu))
    save("host_qemu_log", "missing", run_probe(HOST, host_command("host_qemu_log")))
    ports = run_probe(HOST, "ip -j link show master cloud0")
    domiflist = (
        " Interface   Type     Source     Model    MAC\n"
        "-----------------------------------------------------------\n"
        " vnet0       bridge   cloud0     virtio   0e:00:a9:fe:03:5d\n"
        " vnet1       bridge   cloudbr0   virtio   02:00:4c:5e:00:10\n"
        " vnet2       bridge   cloudbr1   virtio   1e:00:1d:00:00:2a\n\n"
    )
    save("host_tap", "attached", f"==> domiflist <==\n{domiflist}==> ports <==\n{ports}")
    missing = domiflist.replace("vnet0 ", "vnet7 ")
    save("host_tap", "control_tap_not_on_cloud0", f"==> domiflist <==\n{missing}==> ports <==\n{ports}")
    save("host_domstate", "running", "running (booted)\n\n")
    save("host_domstate", "shut_off_crashed", "shut off (crashed)\n\n")
    save("host_domstate", "no_such_domain", "error: failed to get domain 'r-12-VM'\n\n")


def regenerate_expected() -> None:
    """Rewrite every <case>.json from its <case>.txt after a deliberate parser change (review the diff)."""
    for fixture in sorted(FIXTURES.glob("*/*.txt")):
        save(fixture.parent.name, fixture.stem, fixture.read_text())


def main() -> None:
    """Build the namespaces, capture every case, and always clean up; `--regenerate` only re-parses."""
    if sys.argv[1:] == ["--regenerate"]:
        regenerate_expected()
        return
    remove_namespaces()
    try:
        build_namespaces()
        with ramdisk_mount_point():
            capture_network()
            capture_kernel()
            capture_processes()
            capture_vrrp()
            capture_files()
            capture_host()
    finally:
        remove_namespaces()


if __name__ == "__main__":
    main()
