"""Fixtures for the SSH and collection tests: real OpenSSH servers on loopback.

Each server is `/usr/sbin/sshd -D` on a 127.0.0.x address and a free high port, with its own
configuration, host key and authorized_keys under a temporary directory; it is stopped at
teardown. One server plays the KVM host (TCP forwarding allowed), one the router (reached
through the host's direct-tcpip channel, or directly). Inventory rows are created directly.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.conf import LazySettings

from diagnostics.tails.store import TailStore, redis_client
from tests.diagnostics.rq_support import redis_server  # noqa: F401 (a fixture of the tests that run RQ workers)
from vrconsole.models import Host, Region, Router, Zone

SSHD = "/usr/sbin/sshd"
HOST_ADDRESS = "127.0.0.2"
ROUTER_ADDRESS = "127.0.0.3"
# Loopback addresses nothing listens on, for the unreachable cases.
SILENT_ADDRESS = "127.0.0.9"


def _free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def _keygen(path: Path, kind: str = "ed25519") -> Path:
    # RSA for the router key, like CloudStack's id_rsa.cloud; 2048 bits keeps the suite quick.
    size = ["-b", "2048"] if kind == "rsa" else []
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, *size, "-N", "", "-C", "vrconsole-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path


@dataclass
class SshServer:
    """One sshd on a loopback address, authorising the given public keys."""

    directory: Path
    address: str
    port: int
    authorized: list[Path]
    allow_forwarding: bool = False
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def host_key(self) -> Path:
        return self.directory / "ssh_host_ed25519_key"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.host_key.exists():
            _keygen(self.host_key)
        (self.directory / "authorized_keys").write_text(
            "".join(Path(f"{key}.pub").read_text() for key in self.authorized)
        )
        config = self.directory / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"ListenAddress {self.address}:{self.port}",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.directory / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.directory / 'authorized_keys'}",
                    "StrictModes no",
                    "UsePAM no",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    f"AllowTcpForwarding {'yes' if self.allow_forwarding else 'no'}",
                    "MaxSessions 50",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )
        # sshd's privilege separation needs this directory; Debian creates it at service start.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.process.stderr.read().decode() if self.process.stderr else ''}")
            try:
                with socket.create_connection((self.address, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd on {self.address}:{self.port} did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def replace_host_key(self) -> None:
        """Restart with a new host key, as a reinstalled or impersonated machine would."""
        self.stop()
        self.host_key.unlink()
        Path(f"{self.host_key}.pub").unlink()
        self.start()


@dataclass(frozen=True)
class ClientKeys:
    host: Path
    router: Path
    stranger: Path


@pytest.fixture(scope="session")
def ssh_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ssh")


@pytest.fixture(scope="session")
def client_keys(ssh_workdir: Path) -> ClientKeys:
    keys = ssh_workdir / "client"
    keys.mkdir()
    return ClientKeys(
        host=_keygen(keys / "id_host"),
        router=_keygen(keys / "id_router", "rsa"),
        stranger=_keygen(keys / "id_stranger"),
    )


@pytest.fixture(scope="session")
def host_sshd(ssh_workdir: Path, client_keys: ClientKeys) -> Iterator[SshServer]:
    server = SshServer(
        ssh_workdir / "host", HOST_ADDRESS, _free_port(HOST_ADDRESS), [client_keys.host], allow_forwarding=True
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def router_sshd(ssh_workdir: Path, client_keys: ClientKeys) -> Iterator[SshServer]:
    server = SshServer(ssh_workdir / "router", ROUTER_ADDRESS, _free_port(ROUTER_ADDRESS), [client_keys.router])
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_router_sshd(tmp_path: Path, client_keys: ClientKeys) -> Iterator[SshServer]:
    """A router sshd of the test's own, for tests that change its host key."""
    server = SshServer(tmp_path / "router", ROUTER_ADDRESS, _free_port(ROUTER_ADDRESS), [client_keys.router])
    server.start()
    yield server
    server.stop()


@pytest.fixture
def silent_listener() -> Iterator[tuple[str, int]]:
    """A TCP listener that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
                accepted.append(connection)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()
    stop.set()
    thread.join(timeout=2)
    for connection in accepted:
        connection.close()
    listener.close()


@pytest.fixture
def ssh_settings(
    settings: LazySettings, client_keys: ClientKeys, host_sshd: SshServer, router_sshd: SshServer, tmp_path: Path
) -> LazySettings:
    settings.HOST_SSH_KEY_FILE = str(client_keys.host)
    settings.HOST_SSH_USER = "root"
    settings.HOST_SSH_PORT = host_sshd.port
    settings.VR_SSH_KEY_FILE = str(client_keys.router)
    settings.VR_SSH_PORT = router_sshd.port
    settings.SSH_KNOWN_HOSTS_FILE = str(tmp_path / "known_hosts")
    settings.SSH_CONNECT_TIMEOUT = 2.0
    settings.SSH_COMMAND_TIMEOUT = 5.0
    settings.SSH_MAX_OUTPUT_BYTES = 64 * 1024
    settings.RAW_OUTPUT_MAX_BYTES = 16 * 1024
    settings.SSH_OVERRIDES = {}
    return settings


@pytest.fixture
def region(db: None) -> Region:
    return Region.objects.create(name="test-region")


@pytest.fixture
def zone(region: Region) -> Zone:
    return Zone.objects.create(region=region, uuid="zone-1111", name="zone-a")


@pytest.fixture
def kvm_host(region: Region, zone: Zone) -> Host:
    return Host.objects.create(
        region=region, zone=zone, uuid="host-2222", name="kvm-host-1", ipaddress=HOST_ADDRESS, hypervisor="KVM"
    )


def make_router(region: Region, zone: Zone, host: Host | None, name: str, **fields: object) -> Router:
    """A present Running router row; KVM behind `host` unless told otherwise."""
    values: dict[str, object] = {
        "uuid": f"uuid-{name}",
        "state": "Running",
        "hypervisor": "KVM",
        "link_local_ip": ROUTER_ADDRESS,
    }
    values.update(fields)
    return Router.objects.create(region=region, zone=zone, host=host, name=name, **values)


@pytest.fixture
def kvm_router(region: Region, zone: Zone, kvm_host: Host) -> Router:
    return make_router(region, zone, kvm_host, "r-10-VM")


@pytest.fixture
def direct_router(region: Region, zone: Zone) -> Router:
    return make_router(region, zone, None, "r-20-VM", hypervisor="VMware")


@pytest.fixture
def clean_tail_keys() -> Iterator[None]:
    """No live-tail state in Redis before or after the test (router ids restart with every test database)."""

    async def clean() -> None:
        client = redis_client()
        keys = [key async for key in client.scan_iter(match=f"{TailStore().prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()

    async_to_sync(clean)()
    yield
    async_to_sync(clean)()
