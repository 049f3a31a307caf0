"""Bringing a lab up, taking it down and reporting what is there.

`up` checks that it may run (Linux, root, no address or route overlap with 198.19.<block>.0/24),
records each kernel object in the state file before creating it, then builds: the root bridge,
the switch namespace with one bridge per guest network and the public bridge, the KVM host
namespace (cloud0, sshd on 22), and the routers in parallel (veths, addresses, sysctl, files in
their own mount namespace, iptables-restore, sshd on 3922, dnsmasq, keepalived, haproxy). It then
waits for every redundant pair to elect one PRIMARY and writes the
registration file. `down` walks the state file: kills what runs in the lab namespaces, unmounts,
deletes namespaces and root links, and removes the lab directory. It refuses a second `up` of a
lab that exists (it is not idempotent: `down` first).
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

from devcloud.lab import daemons, kvm_host, network_features, registration, vpn
from devcloud.lab.iptables_rules import build_ruleset
from devcloud.lab.router_files import RouterFile, password_instances, router_files
from devcloud.lab.state import (
    LabState,
    all_lab_names,
    delete_state,
    lab_dir,
    labs_root,
    load_state,
    save_state,
)
from devcloud.lab.system_commands import ip_batch, netns_path, pid_file, run, run_inside, uts_file
from devcloud.lab.topology import PUBLIC_GATEWAY, LabPlan, Router, plan_lab

REQUIRED_PROGRAMS = (
    "ip",
    "nsenter",
    "unshare",
    "mount",
    "umount",
    "iptables-restore",
    "sshd",
    "dnsmasq",
    "keepalived",
    "haproxy",
    "apache2ctl",
    "rsyslogd",
    "conntrack",
    "ssh-keygen",
    "sysctl",
    "bridge",
)
ROUTER_SYSCTLS = (
    "net.ipv4.ip_forward=1",
    "net.ipv4.tcp_max_tw_buckets=1000000",
    "net.core.somaxconn=65535",
    "net.ipv4.tcp_tw_reuse=1",
    "net.ipv4.tcp_timestamps=0",
    "net.ipv4.tcp_syncookies=1",
    "net.ipv4.conf.all.arp_announce=2",
    "net.ipv4.conf.all.arp_ignore=2",
    "net.ipv4.conf.all.promote_secondaries=1",
    "net.ipv4.ip_nonlocal_bind=1",
    "net.ipv4.conf.all.accept_redirects=0",
    "net.ipv4.conf.all.send_redirects=0",
    # Read-only outside the initial namespace on this kernel (6.x): the VR's value of 1000000
    # cannot be set per router, so routers inherit the machine's limit. Tried, and ignored.
    "net.netfilter.nf_conntrack_max=1000000",
)
OVERLAID_DIRS = {"/etc": "etc", "/var": "var", "/opt": "opt", "/root": "root", "/usr/local/bin": "usrlocalbin"}
SEEDED_TMPFS = {"/var/log": "varlog", "/ramdisk": "ramdisk"}
VAR_LOG_SIZE = "32m"
BUILD_WORKERS = 6
ELECTION_TIMEOUT = 25.0
NAMESPACE_READY = b"namespace ready\n"
INIT_TIMEOUT = 30.0


class LabError(RuntimeError):
    """The lab cannot be brought up or changed; the message says why."""


def require_platform() -> None:
    """Refuse anywhere but Linux as root with the lab's programs installed."""
    if not sys.platform.startswith("linux"):
        raise LabError("the lab needs Linux (network and mount namespaces)")
    if os.geteuid() != 0:
        raise LabError("the lab needs root (it creates namespaces, veths and mounts)")
    missing = [program for program in REQUIRED_PROGRAMS if shutil.which(program) is None]
    if missing:
        raise LabError(f"the lab needs these programs: {', '.join(missing)}")


def check_address_block(plan: LabPlan) -> None:
    """Refuse when 198.19.<block>.0/24 overlaps a root-namespace route or address already in use."""
    subnet = plan.management_subnet
    routes = json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]) or "[]")
    for route in routes:
        destination = route.get("dst", "")
        if destination in ("default", ""):
            continue
        try:
            network = ipaddress.IPv4Network(destination if "/" in destination else f"{destination}/32", strict=False)
        except ValueError:
            continue
        if network.overlaps(subnet):
            raise LabError(
                f"{subnet} overlaps the route {destination} dev {route.get('dev', '?')}: pick another --block"
            )
    addresses = json.loads(run(["ip", "-j", "-4", "addr", "show"]) or "[]")
    for link in addresses:
        for info in link.get("addr_info", []):
            if ipaddress.IPv4Address(info["local"]) in subnet:
                raise LabError(f"{info['local']} on {link['ifname']} is already in {subnet}: pick another --block")
    for other in all_lab_names():
        other_state = load_state(other)
        if other_state is not None and other_state.block == plan.block:
            raise LabError(f"lab {other!r} already uses block {plan.block}")


def router_dir(lab: str, router_name: str) -> Path:
    """The directory holding one router's files (overlay uppers, seeds, mount plan)."""
    return lab_dir(lab) / "routers" / router_name


def mount_file(lab: str, namespace: str) -> Path:
    """The file the namespace's persistent mount namespace is pinned to."""
    return lab_dir(lab) / "ns" / namespace


def host_dir(lab: str) -> Path:
    """The directory holding the KVM host's files."""
    return lab_dir(lab) / "host"


def place_files(base: Path, files: dict[str, RouterFile]) -> None:
    """Write files into the overlay upper or tmpfs seed directory their real path falls in."""
    for real_path, router_file in files.items():
        target = _staging_path(base, real_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(router_file.content)
        target.chmod(router_file.mode)


def _staging_path(base: Path, real_path: str) -> Path:
    for prefix, name in {**SEEDED_TMPFS, **OVERLAID_DIRS}.items():
        if real_path.startswith(prefix + "/"):
            root = "seed" if prefix in SEEDED_TMPFS else "upper"
            return base / root / name / real_path[len(prefix) + 1 :]
    raise LabError(f"{real_path} is outside the directories a lab namespace owns")


def _kept_under_tmp() -> list[str]:
    """The lab's own directories that lie under /tmp (the checkout, the labs' var dir), outermost only."""
    tmp = Path("/tmp")  # noqa: S108
    candidates = sorted({Path(__file__).resolve().parents[2], labs_root().resolve()}, key=lambda path: len(path.parts))
    kept: list[Path] = []
    for path in candidates:
        if path.is_relative_to(tmp) and path != tmp and not any(path.is_relative_to(outer) for outer in kept):
            kept.append(path)
    return [str(path) for path in kept]


def _mount_steps(base: Path, tmpfs_extra: list[str]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for target, name in OVERLAID_DIRS.items():
        upper = base / "upper" / name
        work = base / "work" / name
        upper.mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)
        upper.chmod(0o700 if target == "/root" else 0o755)
        steps.append({"kind": "overlay", "target": target, "lower": target, "upper": str(upper), "work": str(work)})
    for target, name in SEEDED_TMPFS.items():
        seed = base / "seed" / name
        seed.mkdir(parents=True, exist_ok=True)
        size = VAR_LOG_SIZE if target == "/var/log" else "8m"
        steps.append({"kind": "tmpfs", "target": target, "size": size})
        steps.append({"kind": "seed", "source": str(seed), "target": target})
    steps.append({"kind": "tmpfs", "target": "/run", "size": "8m"})
    # The router's rsyslogd makes its /dev/log socket: on an overlay of the machine's /dev, so every
    # device stays the machine's while the socket is the router's own (the machine's /dev is untouched).
    dev_upper, dev_work = base / "upper" / "dev", base / "work" / "dev"
    dev_upper.mkdir(parents=True, exist_ok=True)
    dev_work.mkdir(parents=True, exist_ok=True)
    steps.append(
        {
            "kind": "overlay",
            "target": "/dev",
            "lower": "/dev",
            "upper": str(dev_upper),
            "work": str(dev_work),
            "keep": [mount for mount in ("/dev/pts", "/dev/shm") if os.path.ismount(mount)],
        }
    )
    # A private /tmp: the password server keeps its token in /tmp/passwdsrvrtoken, one per router.
    # A checkout (or its var/) under /tmp stays visible: the lab's own scripts and files live there.
    steps.append(
        {"kind": "tmpfs", "target": "/tmp", "size": "8m", "mode": "1777", "keep": _kept_under_tmp()}  # noqa: S108
    )
    # /opt/tftpboot: the template's dnsmasq.conf enables TFTP there, and dnsmasq refuses to start without it.
    for directory in ("/run/sshd", "/run/dnsmasq", "/run/apache2", "/run/lock/apache2", "/opt/tftpboot", *tmpfs_extra):
        steps.append({"kind": "mkdir", "target": directory})
    return steps


def _make_mount_namespace(lab: str, namespace: str, base: Path, state: LabState, hostname: str) -> Path:
    pinned = mount_file(lab, namespace)
    pinned_uts = uts_file(pinned)
    pinned_pid = pid_file(pinned)
    for path in (pinned, pinned_uts, pinned_pid):
        path.touch()
        state.mount_files.append(str(path))
    plan_path = base / "mounts.json"
    steps = _mount_steps(base, [])
    steps.append({"kind": "proc", "target": "/proc"})
    steps.append({"kind": "hostname", "target": hostname})
    plan_path.write_text(json.dumps(steps))
    script = Path(__file__).with_name("mount_namespace.py")
    # Started in the router's network namespace so that `down`, which kills every process of
    # the network namespace, also kills the PID namespace's init and with it everything else.
    _start_namespace_init(
        [
            "nsenter",
            f"--net={netns_path(namespace)}",
            "unshare",
            f"--mount={pinned}",
            f"--uts={pinned_uts}",
            f"--pid={pinned_pid}",
            "--fork",
            "--propagation",
            "private",
            "/usr/bin/python3",
            "-I",
            str(script),
            str(plan_path),
        ]
    )
    return pinned


def _start_namespace_init(argv: list[str]) -> None:
    """Run unshare until its PID 1 reports ready, then drop unshare and leave PID 1 running."""
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout = cast(IO[bytes], process.stdout)
    try:
        ready = stdout.readline(len(NAMESPACE_READY) + 1)
        if ready == NAMESPACE_READY:
            # unshare only waits for its child; killing it leaves PID 1 re-parented and alive.
            process.kill()
            process.wait(timeout=INIT_TIMEOUT)
            return
        _, errors = process.communicate(timeout=INIT_TIMEOUT)
        stderr = errors.decode(errors="replace").strip()[-2000:]
        raise LabError(f"{' '.join(argv)} exited {process.returncode}: {stderr}")
    finally:
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _record_namespace(state: LabState, namespace: str) -> None:
    state.namespaces.append(namespace)
    run(["ip", "netns", "add", namespace])
    ip_batch(["link set lo up"], namespace)


def _build_root_and_switch(plan: LabPlan, state: LabState) -> None:
    state.root_links.append(plan.root_bridge)
    ip_batch(
        [
            f"link add {plan.root_bridge} type bridge",
            f"addr add {plan.root_bridge_ip}/24 dev {plan.root_bridge}",
            f"link set {plan.root_bridge} up",
        ]
    )
    _record_namespace(state, plan.switch_namespace)
    lines = ["link add pub type bridge", f"addr add {PUBLIC_GATEWAY}/16 dev pub", "link set pub up"]
    for network in plan.networks:
        lines += [f"link add {network.bridge} type bridge", f"link set {network.bridge} up"]
    ip_batch(lines, plan.switch_namespace)


def _build_host(plan: LabPlan, state: LabState, started: datetime) -> None:
    namespace = plan.host_namespace
    _record_namespace(state, namespace)
    state.root_links.append(plan.host_uplink)
    run(["ip", "link", "add", plan.host_uplink, "type", "veth", "peer", "name", "eth0", "netns", namespace])
    ip_batch([f"link set {plan.host_uplink} master {plan.root_bridge}", f"link set {plan.host_uplink} up"])
    ip_batch(
        [
            f"addr add {plan.host_ip}/24 dev eth0",
            "link set eth0 up",
            "link add cloud0 type bridge",
            "addr add 169.254.0.1/16 dev cloud0",
            "link set cloud0 up",
        ],
        namespace,
    )
    base = host_dir(plan.name)
    private_key, public_key = daemons.new_host_key()
    domains_path = base / "domains.json"
    files = kvm_host.host_files(plan, started, daemons.public_key(daemons.host_key_file()), domains_path)
    files["/etc/ssh/ssh_host_ed25519_key"] = RouterFile(private_key, 0o600)
    files["/etc/ssh/ssh_host_ed25519_key.pub"] = RouterFile(public_key)
    place_files(base, files)
    kvm_host.write_domains(domains_path, kvm_host.domain_list(plan))
    pinned = _make_mount_namespace(plan.name, namespace, base, state, plan.host_name)
    daemons.start(namespace, pinned, "sshd")


def _veth_lines(plan: LabPlan, router: Router) -> tuple[list[str], dict[str, list[str]]]:
    """Root-namespace `ip` lines creating the router's veths, and per-namespace lines for the far ends."""
    create: list[str] = []
    far_ends: dict[str, list[str]] = {}
    for nic in router.nics:
        if nic.peer_namespace:
            create.append(
                f"link add {nic.peer_name} netns {nic.peer_namespace} type veth peer name {nic.device} "
                f"netns {router.namespace}"
            )
            far_ends.setdefault(nic.peer_namespace, []).extend(
                [f"link set {nic.peer_name} master {nic.peer_bridge}", f"link set {nic.peer_name} up"]
            )
        else:
            create.append(f"link add {nic.peer_name} type veth peer name {nic.device} netns {router.namespace}")
            far_ends.setdefault("", []).extend(
                [f"link set {nic.peer_name} master {nic.peer_bridge}", f"link set {nic.peer_name} up"]
            )
    return create, far_ends


def _build_router(plan: LabPlan, router: Router, state: LabState, started: datetime) -> None:
    _record_namespace(state, router.namespace)
    create, far_ends = _veth_lines(plan, router)
    for nic in router.nics:
        if not nic.peer_namespace:
            state.root_links.append(nic.peer_name)
    ip_batch(create)
    for namespace, lines in far_ends.items():
        ip_batch(lines, namespace or None)
    inside = []
    for nic in router.nics:
        inside += [
            f"link set {nic.device} address {nic.macaddress} mtu {nic.mtu}",
            f"addr add {nic.ipaddress}/{nic.prefixlen} dev {nic.device}",
            f"link set {nic.device} up",
        ]
    inside.append(f"route add default via {router.public.gateway} dev {router.public.device}")
    ip_batch(inside, router.namespace)
    run_inside(router.namespace, None, ["sysctl", "-q", "-w", *ROUTER_SYSCTLS], check=False)

    base = router_dir(plan.name, router.name)
    private_key, public_key = daemons.new_host_key()
    files = router_files(plan, router, started, daemons.public_key(daemons.vr_key_file()), "lab router host key")
    files["/etc/ssh/ssh_host_ed25519_key"] = RouterFile(private_key, 0o600)
    files["/etc/ssh/ssh_host_ed25519_key.pub"] = RouterFile(public_key)
    ruleset = build_ruleset(router)
    files["/etc/iptables/rules.v4"] = RouterFile(ruleset.encode())
    if router.redundant:
        files[vpn.CONNTRACKD_CONF] = vpn.conntrackd_conf(router)
    place_files(base, files)
    # Another checkout's `lab down` may have removed the shared, empty mount point meanwhile.
    Path("/ramdisk").mkdir(exist_ok=True)
    pinned = _make_mount_namespace(plan.name, router.namespace, base, state, router.name)
    run_inside(router.namespace, pinned, ["iptables-restore"], stdin=ruleset.encode())
    # rsyslogd first, as on a VR: keepalived, sshd and the password server log through it.
    daemons.start(router.namespace, pinned, "rsyslogd")
    daemons.start(router.namespace, pinned, "sshd")
    # apache2 serves userdata on every member; the password server runs where dnsmasq does (the
    # PRIMARY's configure_router.py starts it on the VIP, a BACKUP stops it).
    daemons.start(router.namespace, pinned, "apache2")
    if router.redundant:
        vpn.start_conntrackd(router.namespace, pinned)
        daemons.start(router.namespace, pinned, "keepalived")
    else:
        daemons.start(router.namespace, pinned, "dnsmasq")
        for instance in password_instances(router):
            daemons.start_password_server(router.namespace, pinned, instance)
    if router.runs_haproxy:
        daemons.start(router.namespace, pinned, "haproxy")
    network_features.furnish(plan, router, pinned)


def wait_for_election(plan: LabPlan, timeout: float = ELECTION_TIMEOUT) -> None:
    """Wait until each redundant pair has exactly one PRIMARY (keepalived's first election)."""
    deadline = time.monotonic() + timeout
    pairs = [router for router in plan.routers if router.redundant and router.priority == 100]
    while True:
        states = registration.redundant_states(plan)
        if all(
            sorted([states[router.name], states[router.pair_name or ""]]) == ["BACKUP", "PRIMARY"] for router in pairs
        ):
            return
        if time.monotonic() > deadline:
            raise LabError(f"redundant pairs did not elect one PRIMARY each within {timeout:.0f}s: {states}")
        time.sleep(0.5)


def up(name: str = "vrc", block: int = 0, router_count: int | None = None) -> LabState:
    """Bring a healthy lab up and return its state; refuse when a lab of that name exists.

    Faults are injected afterwards, by whoever wants them (devcloud.lab.faults).
    """
    require_platform()
    plan = plan_lab(name, block, router_count)
    if load_state(name) is not None:
        raise LabError(f"lab {name!r} is already up (run `lab down --name {name}` first)")
    check_address_block(plan)
    began = time.monotonic()
    started = datetime.now(UTC).replace(microsecond=0)
    state = LabState(name=name, block=block, router_count=router_count, created=started.isoformat())
    directory = lab_dir(name)
    directory.mkdir(parents=True, exist_ok=True)
    save_state(state)
    try:
        daemons.ensure_login_keys()
        ns_dir = directory / "ns"
        ns_dir.mkdir(exist_ok=True)
        # Pinned mount namespaces must live on a private mount, or the kernel refuses the pin.
        state.private_mounts.append(str(ns_dir))
        run(["mount", "--bind", str(ns_dir), str(ns_dir)])
        run(["mount", "--make-private", str(ns_dir)])
        if not Path("/ramdisk").exists():
            state.created_ramdisk_dir = True
            Path("/ramdisk").mkdir()
        _build_root_and_switch(plan, state)
        _build_host(plan, state, started)
        save_state(state)
        with ThreadPoolExecutor(max_workers=BUILD_WORKERS) as pool:
            for future in [pool.submit(_build_router, plan, router, state, started) for router in plan.routers]:
                future.result()
        state.timings["routers_built"] = round(time.monotonic() - began, 2)
        save_state(state)
        wait_for_election(plan)
        state.status = "up"
        save_state(state)
        registration.write_registration(plan, state)
        state.timings["up_total"] = round(time.monotonic() - began, 2)
        save_state(state)
        return state
    except BaseException:
        state.status = "failed"
        save_state(state)
        raise


def down(name: str = "vrc") -> list[str]:
    """Remove everything the lab recorded; return what was removed. Safe after a failed `up`."""
    require_platform()
    state = load_state(name)
    if state is None:
        raise LabError(f"no lab named {name!r} is up")
    removed: list[str] = []
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for namespace in state.namespaces:
            for pid in daemons.namespace_pids(namespace):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    continue
        if sig == signal.SIGTERM:
            time.sleep(0.3)
    for pinned in reversed(state.mount_files):
        run(["umount", pinned], check=False)
        removed.append(f"mount namespace {pinned}")
    for namespace in reversed(state.namespaces):
        run(["ip", "netns", "del", namespace], check=False)
        removed.append(f"namespace {namespace}")
    for link in reversed(state.root_links):
        if Path(f"/sys/class/net/{link}").exists():
            run(["ip", "link", "del", link], check=False)
            removed.append(f"link {link}")
    for mount in reversed(state.private_mounts):
        run(["umount", mount], check=False)
    # /ramdisk stays: removing a directory that is a mount point in other mount namespaces
    # detaches those mounts (Linux >= 3.18), so a lab going down would unmount /ramdisk in the
    # routers of every other lab on the machine, including those of other checkouts, which
    # all_lab_names() does not see. An empty directory left at / is harmless.
    delete_state(name)
    shutil.rmtree(lab_dir(name), ignore_errors=True)
    return removed


def status(name: str = "vrc") -> dict[str, object]:
    """What the lab has right now, read from the kernel and the daemons' pid files."""
    state = load_state(name)
    if state is None:
        return {"name": name, "up": False}
    plan = plan_lab(state.name, state.block, state.router_count)
    existing = set(run(["ip", "netns", "list"], check=False).split())
    redundant = registration.redundant_states(plan) if state.status == "up" else {}
    routers = []
    for router in plan.routers:
        present = router.namespace in existing
        pinned = mount_file(name, router.namespace)
        processes = {}
        if present and pinned.exists():
            for daemon in ("rsyslogd", "sshd", "dnsmasq", "keepalived", "haproxy"):
                processes[daemon] = daemons.read_pid(router.namespace, pinned, daemon)
        routers.append(
            {
                "name": router.name,
                "kind": router.kind,
                "hypervisor": router.hypervisor,
                "namespace": router.namespace,
                "namespace_present": present,
                "control_ip": router.control.ipaddress,
                "public_ip": router.public.ipaddress,
                "redundant_state": redundant.get(router.name),
                "pids": processes,
                "faults": state.faults.get(router.name, []),
            }
        )
    return {
        "name": name,
        "up": state.status == "up",
        "status": state.status,
        "block": state.block,
        "host": {
            "namespace": plan.host_namespace,
            "ipaddress": plan.host_ip,
            "present": plan.host_namespace in existing,
        },
        "namespaces": state.namespaces,
        "root_links": state.root_links,
        "registration": str(registration.registration_path(name)),
        "timings": state.timings,
        "routers": routers,
    }
