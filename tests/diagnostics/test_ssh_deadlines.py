"""Every SSH step ends by its deadline, sessions send keepalives, and outputs PostgreSQL accepts.

The frozen router is a real SSH server (paramiko's server side, in a thread on loopback) that
opens the session channel and then never answers the exec request, as a router that froze
after the channel opened; the keepalive and NUL cases run against the real sshd of the suite.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from diagnostics.models import ProbeResult
from diagnostics.ssh import AccessError, AccessReason, Endpoint, connect
from tests.diagnostics.conftest import ClientKeys, SshServer
from tests.diagnostics.test_ssh import TrustEverything, router_endpoint


class FrozenAfterOpen(paramiko.ServerInterface):
    """Accepts our key and opens sessions, then hangs on the command until released."""

    def __init__(self, release: threading.Event) -> None:
        self.release = release

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        self.release.wait(60)
        return False


@pytest.fixture
def frozen_router(tmp_path: Path) -> Iterator[tuple[int, threading.Event]]:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    release = threading.Event()
    host_key = paramiko.Ed25519Key.from_private_key_file(_host_key(tmp_path))
    transports: list[paramiko.Transport] = []
    channels: list[paramiko.Channel | None] = []

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        transport = paramiko.Transport(conn)
        transports.append(transport)
        transport.add_server_key(host_key)
        transport.start_server(server=FrozenAfterOpen(release))
        # Kept referenced: a server channel that is garbage-collected closes itself.
        channels.append(transport.accept(10))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port, release
    finally:
        release.set()
        listener.close()
        for transport in transports:
            transport.close()


def _host_key(directory: Path) -> str:
    import subprocess

    path = directory / "frozen_host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return str(path)


def test_a_router_that_freezes_after_the_channel_opens_times_out_by_the_deadline(
    frozen_router: tuple[int, threading.Event], client_keys: ClientKeys
) -> None:
    port, _ = frozen_router
    endpoint = Endpoint("router", "router-uuid", "r-1-VM", "127.0.0.1", port, "root", str(client_keys.router))
    outcome: dict[str, object] = {}

    def attempt() -> None:
        with connect(endpoint, TrustEverything(), connect_timeout=2, max_output_bytes=4096) as session:
            started = time.monotonic()
            try:
                session.run("uptime", timeout=1.0)
            except AccessError as exc:
                outcome["error"] = exc
            outcome["took"] = time.monotonic() - started

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(15)
    assert not worker.is_alive(), "run() was still waiting for the frozen router after 15 s"
    error = outcome["error"]
    assert isinstance(error, AccessError) and error.reason == AccessReason.TIMEOUT and error.retryable
    assert float(outcome["took"]) < 3  # type: ignore[arg-type]


def test_a_stream_start_on_a_frozen_router_times_out_by_the_deadline(
    frozen_router: tuple[int, threading.Event], client_keys: ClientKeys
) -> None:
    port, _ = frozen_router
    endpoint = Endpoint("router", "router-uuid", "r-1-VM", "127.0.0.1", port, "root", str(client_keys.router))
    outcome: dict[str, object] = {}

    def attempt() -> None:
        with connect(endpoint, TrustEverything(), connect_timeout=2, max_output_bytes=4096) as session:
            try:
                session.stream("tail -F /var/log/cloud.log", timeout=1.0)
            except AccessError as exc:
                outcome["error"] = exc

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(15)
    assert not worker.is_alive(), "stream() was still waiting for the frozen router after 15 s"
    assert isinstance(outcome["error"], AccessError) and outcome["error"].reason == AccessReason.TIMEOUT


def test_sessions_send_keepalives(router_sshd: SshServer, client_keys: ClientKeys) -> None:
    with connect(
        router_endpoint(router_sshd, client_keys.router),
        TrustEverything(),
        connect_timeout=2,
        max_output_bytes=4096,
        keepalive_seconds=7,
    ) as session:
        interval = session._transport.packetizer._Packetizer__keepalive_interval  # type: ignore[attr-defined]
    assert interval == 7


def test_nul_bytes_in_output_become_replacement_characters(router_sshd: SshServer, client_keys: ClientKeys) -> None:
    with connect(
        router_endpoint(router_sshd, client_keys.router), TrustEverything(), connect_timeout=2, max_output_bytes=4096
    ) as session:
        result = session.run("printf 'before\\0\\0after\\n'; printf 'err\\0\\n' >&2", timeout=5)
    assert result.stdout == "before\ufffd\ufffdafter\n" and result.stderr == "err\ufffd\n"


@pytest.mark.django_db
def test_output_with_nul_bytes_is_stored(router_sshd: SshServer, client_keys: ClientKeys) -> None:
    from diagnostics.models import Collection
    from tests.vrconsole.router_factory import make_region, make_router, make_zone

    with connect(
        router_endpoint(router_sshd, client_keys.router), TrustEverything(), connect_timeout=2, max_output_bytes=4096
    ) as session:
        result = session.run("printf 'cloud.log\\0\\0\\0tail\\n'", timeout=5)
    collection = Collection.objects.create(router=make_router(make_zone(make_region()), name="r-5-VM"))
    stored = ProbeResult.objects.create(collection=collection, name="logfiles", stdout=result.stdout)
    stored.refresh_from_db()
    assert stored.stdout.endswith("tail\n")
