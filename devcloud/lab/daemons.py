"""Starting and stopping the real daemons inside lab routers: rsyslogd, sshd, dnsmasq, keepalived, haproxy,
apache2 and the password server.

Each daemon runs inside the router's network and mount namespaces (via nsenter), reads its
configuration from its real path there, daemonizes itself (its orphan is adopted by the router's
own PID 1) and writes its pid file, holding a pid of the router's PID namespace, under the
router's private /run, which is where fault injection and `status` look for it (translated to
the machine-wide pid, which is what the lab's own code can signal). Keys are made
here too: the system-VM key pair and host login key (shared by the lab's users, mode 0600) and
one fresh SSH host key per router.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.conf import settings

from devcloud.lab.system_commands import LabCommandError, pid_file, run, run_inside

PID_FILES = {
    "sshd": "/run/sshd.pid",
    "dnsmasq": "/run/dnsmasq/dnsmasq.pid",
    "keepalived": "/run/keepalived.pid",
    "haproxy": "/run/haproxy.pid",
    "apache2": "/run/apache2/apache2.pid",
    "rsyslogd": "/run/rsyslogd.pid",
}


def daemons_default(name: str) -> Path:
    """Where the lab keeps its login keys when the settings name none."""
    return Path(settings.VAR_DIR) / "lab" / "keys" / name


def vr_key_file() -> Path:
    """The system-VM private key (id_rsa.cloud) the lab routers accept."""
    return Path(settings.VR_SSH_KEY_FILE or daemons_default("id_rsa.cloud"))


def host_key_file() -> Path:
    """The private key the lab KVM host accepts for root."""
    return Path(settings.HOST_SSH_KEY_FILE or daemons_default("id_rsa.host"))


def ensure_login_keys() -> None:
    """Create the RSA system-VM key and the host login key when missing; keep them 0600."""
    for path, comment in ((vr_key_file(), "root@cloudstack-management"), (host_key_file(), "vrconsole@lab")):
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        if not path.exists():
            run(["ssh-keygen", "-q", "-t", "rsa", "-b", "3072", "-N", "", "-C", comment, "-f", str(path)])
        os.chmod(path, 0o600)


def public_key(private_key: Path) -> str:
    """The OpenSSH public key line of a private key file."""
    return Path(f"{private_key}.pub").read_text().strip()


def new_host_key() -> tuple[bytes, bytes]:
    """A fresh ed25519 SSH host key (private PEM, public line): a recreated router gets a new one."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, public + b"\n"


# Fixed shell text; the pid file path arrives as $0, so nothing is interpolated into it.
LIVE_PID_SCRIPT = 'read pid < "$0" && kill -0 "$pid" 2>/dev/null && echo "$pid"'


def read_pid(namespace: str, mount_file: Path, daemon: str) -> int | None:
    """The machine-wide pid of a daemon from its pid file inside the router, if that process is alive.

    The pid file holds a pid of the router's own PID namespace, which means nothing from the
    machine's (it may even name an unrelated process there), so the liveness check runs inside
    the router and the answer is translated to the pid the lab's own code can signal.
    """
    text = run_inside(namespace, mount_file, ["/bin/sh", "-c", LIVE_PID_SCRIPT, PID_FILES[daemon]], check=False)
    try:
        inner = int(text.split()[0])
    except (ValueError, IndexError):
        return None
    return machine_pid(namespace, mount_file, inner)


def machine_pid(namespace: str, mount_file: Path, inner: int) -> int | None:
    """The machine-wide pid of the process the router's PID namespace numbers `inner`."""
    pinned = pid_file(mount_file)
    if not pinned.exists():
        return inner
    router_pid_namespace = os.stat(pinned).st_ino
    for candidate in namespace_pids(namespace):
        try:
            if os.stat(f"/proc/{candidate}/ns/pid").st_ino != router_pid_namespace:
                continue
            status = Path(f"/proc/{candidate}/status").read_text()
        except OSError:
            continue
        # NSpid lists the pid in each namespace from the machine's down to the innermost.
        for line in status.splitlines():
            if line.startswith("NSpid:") and line.split()[-1] == str(inner):
                return candidate
    return None


def start(namespace: str, mount_file: Path, daemon: str) -> None:
    """Start one daemon inside the router (it daemonizes and writes its pid file)."""
    argv = {
        "sshd": ["/usr/sbin/sshd", "-f", "/etc/ssh/sshd_config"],
        "dnsmasq": ["/usr/sbin/dnsmasq", "--conf-file=/etc/dnsmasq.conf"],
        # keepalived daemonizes and logs through syslog (daemon facility), as on a VR: the router's
        # rsyslogd writes it to /var/log/daemon.log.
        "keepalived": [
            "/usr/sbin/keepalived",
            "--vrrp",
            "--use-file=/etc/keepalived/keepalived.conf",
            "--pid=/run/keepalived.pid",
            "--vrrp_pid=/run/keepalived_vrrp.pid",
        ],
        "rsyslogd": ["/usr/sbin/rsyslogd", "-f", "/etc/rsyslog.conf", "-i", "/run/rsyslogd.pid"],
        "haproxy": ["/usr/sbin/haproxy", "-f", "/etc/haproxy/haproxy.cfg", "-D", "-p", "/run/haproxy.pid"],
        # Debian's apache2ctl reads /etc/apache2/envvars (run and lock dirs under the router's /run).
        "apache2": ["/usr/sbin/apache2ctl", "start"],
    }[daemon]
    run_inside(namespace, mount_file, argv, timeout=30)


def start_password_server(namespace: str, mount_file: Path, instance: str) -> None:
    """Start cloud-password-server@<instance> through the router's systemctl, as CsPasswdSvc does."""
    run_inside(
        namespace, mount_file, ["/usr/local/bin/systemctl", "start", f"cloud-password-server@{instance}"], timeout=30
    )


def stop_password_server(namespace: str, mount_file: Path, instance: str) -> None:
    """Stop cloud-password-server@<instance> through the router's systemctl."""
    run_inside(
        namespace, mount_file, ["/usr/local/bin/systemctl", "stop", f"cloud-password-server@{instance}"], timeout=30
    )


def stop(namespace: str, mount_file: Path, daemon: str) -> bool:
    """Kill a daemon by its pid file; True when something was killed."""
    pid = read_pid(namespace, mount_file, daemon)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def stop_and_wait(namespace: str, mount_file: Path, daemon: str, timeout: float = 10.0) -> bool:
    """Stop a daemon and wait until no process of its name is left in the router.

    dnsmasq forks helpers that hold its sockets a little longer than the main process lives;
    a restart before they are gone fails with "Address already in use". The router has its
    own PID namespace, so `pidof` and `pkill` inside it see only its own processes.
    Returns whether the daemon was running.
    """
    was_running = stop(namespace, mount_file, daemon)
    deadline = time.monotonic() + timeout
    while run_inside(namespace, mount_file, ["pidof", daemon], check=False).strip():
        if time.monotonic() > deadline:
            run_inside(namespace, mount_file, ["pkill", "-KILL", "-x", daemon], check=False)
            deadline = time.monotonic() + timeout
        time.sleep(0.1)
    return was_running


def namespace_pids(namespace: str) -> list[int]:
    """Every process living in a network namespace (`ip netns pids`)."""
    try:
        output = run(["ip", "netns", "pids", namespace], check=True)
    except LabCommandError:
        return []
    return [int(token) for token in output.split() if token.isdigit()]
