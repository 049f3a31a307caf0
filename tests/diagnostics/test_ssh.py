"""Tests of the SSH seam against real sshd processes on loopback: paths, limits and failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from diagnostics.ssh import AccessError, AccessReason, Endpoint, HostConnectionPool, SshSession, connect
from tests.diagnostics.conftest import ROUTER_ADDRESS, SILENT_ADDRESS, ClientKeys, SshServer


class TrustEverything:
    """A verifier for tests that are not about host keys."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def check(self, endpoint: Endpoint, key_type: str, key_base64: str) -> None:
        self.seen.append((endpoint.kind, key_type))


def host_endpoint(server: SshServer, key: Path, address: str | None = None) -> Endpoint:
    return Endpoint("host", "host-uuid", "kvm-host-1", address or server.address, server.port, "root", str(key))


def router_endpoint(server: SshServer, key: Path, address: str | None = None, port: int | None = None) -> Endpoint:
    return Endpoint("router", "router-uuid", "r-1-VM", address or server.address, port or server.port, "root", str(key))


def open_direct(endpoint: Endpoint, cap: int = 65536, timeout: float = 2.0) -> SshSession:
    return connect(endpoint, TrustEverything(), connect_timeout=timeout, max_output_bytes=cap)


def test_it_runs_a_command_on_a_router_reached_directly(router_sshd: SshServer, client_keys: ClientKeys) -> None:
    with open_direct(router_endpoint(router_sshd, client_keys.router)) as session:
        result = session.run("echo hello; echo oops >&2; exit 3", timeout=5)
    assert (result.stdout, result.stderr, result.exit_status, result.truncated) == ("hello\n", "oops\n", 3, False)


def test_it_reaches_a_router_through_the_hosts_direct_tcpip_channel(
    host_sshd: SshServer, router_sshd: SshServer, client_keys: ClientKeys
) -> None:
    with open_direct(host_endpoint(host_sshd, client_keys.host)) as host:
        router = connect(
            router_endpoint(router_sshd, client_keys.router),
            TrustEverything(),
            connect_timeout=2,
            max_output_bytes=65536,
            via=host,
        )
        with router:
            result = router.run("echo $SSH_CONNECTION", timeout=5)
    # The router saw the connection come from the host's side of the forward, not from us.
    assert result.stdout.split()[2] == ROUTER_ADDRESS
    assert result.exit_status == 0


def test_it_caps_the_output_and_marks_it_truncated(router_sshd: SshServer, client_keys: ClientKeys) -> None:
    with open_direct(router_endpoint(router_sshd, client_keys.router), cap=4096) as session:
        result = session.run("head -c 100000 /dev/zero | tr '\\0' x", timeout=5)
    assert result.truncated is True
    assert len(result.stdout) == 4096
    assert result.exit_status is None


def test_it_stops_a_command_that_prints_forever_at_the_cap(router_sshd: SshServer, client_keys: ClientKeys) -> None:
    with open_direct(router_endpoint(router_sshd, client_keys.router), cap=8192) as session:
        result = session.run("yes", timeout=5)
    assert result.truncated is True


def test_it_times_out_a_command_and_keeps_the_session_usable(router_sshd: SshServer, client_keys: ClientKeys) -> None:
    with open_direct(router_endpoint(router_sshd, client_keys.router)) as session:
        with pytest.raises(AccessError) as caught:
            session.run("sleep 30", timeout=0.5)
        after = session.run("echo still here", timeout=5)
    assert caught.value.reason == AccessReason.TIMEOUT
    assert caught.value.retryable is True
    assert after.stdout == "still here\n"


def test_it_reports_a_router_with_nothing_listening_as_unreachable(
    router_sshd: SshServer, client_keys: ClientKeys
) -> None:
    with pytest.raises(AccessError) as caught:
        open_direct(router_endpoint(router_sshd, client_keys.router, address=SILENT_ADDRESS))
    assert caught.value.reason == AccessReason.ROUTER_UNREACHABLE
    assert caught.value.retryable is True


def test_it_reports_a_host_with_nothing_listening_as_host_unreachable(
    host_sshd: SshServer, client_keys: ClientKeys
) -> None:
    with pytest.raises(AccessError) as caught:
        open_direct(host_endpoint(host_sshd, client_keys.host, address=SILENT_ADDRESS))
    assert caught.value.reason == AccessReason.HOST_UNREACHABLE


def test_it_reports_a_dead_link_local_path_as_router_unreachable(
    host_sshd: SshServer, router_sshd: SshServer, client_keys: ClientKeys
) -> None:
    with open_direct(host_endpoint(host_sshd, client_keys.host)) as host:
        with pytest.raises(AccessError) as caught:
            connect(
                router_endpoint(router_sshd, client_keys.router, address=SILENT_ADDRESS),
                TrustEverything(),
                connect_timeout=2,
                max_output_bytes=4096,
                via=host,
            )
    assert caught.value.reason == AccessReason.ROUTER_UNREACHABLE


def test_it_reports_a_refused_router_key_as_auth_refused(router_sshd: SshServer, client_keys: ClientKeys) -> None:
    with pytest.raises(AccessError) as caught:
        open_direct(router_endpoint(router_sshd, client_keys.stranger))
    assert caught.value.reason == AccessReason.AUTH_REFUSED
    assert caught.value.retryable is False


def test_it_reports_a_refused_host_key_as_host_auth_refused(host_sshd: SshServer, client_keys: ClientKeys) -> None:
    with pytest.raises(AccessError) as caught:
        open_direct(host_endpoint(host_sshd, client_keys.stranger))
    assert caught.value.reason == AccessReason.HOST_AUTH_REFUSED


def test_it_times_out_a_peer_that_accepts_tcp_and_never_speaks(
    silent_listener: tuple[str, int], client_keys: ClientKeys
) -> None:
    address, port = silent_listener
    endpoint = Endpoint("router", "router-uuid", "r-1-VM", address, port, "root", str(client_keys.router))
    with pytest.raises(AccessError) as caught:
        open_direct(endpoint, timeout=1.0)
    assert caught.value.reason == AccessReason.TIMEOUT


def test_it_refuses_a_missing_key_file_before_connecting(router_sshd: SshServer, tmp_path: Path) -> None:
    with pytest.raises(AccessError) as caught:
        open_direct(router_endpoint(router_sshd, tmp_path / "no-such-key"))
    assert caught.value.reason == AccessReason.KEY_MISSING
    assert caught.value.retryable is False


def test_it_never_puts_key_material_in_an_error(router_sshd: SshServer, tmp_path: Path) -> None:
    garbage = tmp_path / "broken_key"
    garbage.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LW1hdGVyaWFs\n-----END OPENSSH PRIVATE KEY-----\n")
    with pytest.raises(AccessError) as caught:
        open_direct(router_endpoint(router_sshd, garbage))
    assert caught.value.reason == AccessReason.KEY_MISSING
    assert "c2VjcmV0" not in str(caught.value)


def test_it_checks_the_host_key_before_offering_credentials(router_sshd: SshServer, client_keys: ClientKeys) -> None:
    class RefuseEverything:
        def check(self, endpoint: Endpoint, key_type: str, key_base64: str) -> None:
            raise AccessError(AccessReason.HOST_KEY_CHANGED, "refused")

    with pytest.raises(AccessError) as caught:
        connect(
            router_endpoint(router_sshd, client_keys.router),
            RefuseEverything(),
            connect_timeout=2,
            max_output_bytes=4096,
        )
    assert caught.value.reason == AccessReason.HOST_KEY_CHANGED


def test_it_reuses_one_host_session_for_every_router_behind_it(host_sshd: SshServer, client_keys: ClientKeys) -> None:
    opened: list[Endpoint] = []

    def opener(endpoint: Endpoint) -> SshSession:
        opened.append(endpoint)
        return open_direct(endpoint)

    with HostConnectionPool(opener=opener) as pool:
        first = pool.session_for(host_endpoint(host_sshd, client_keys.host))
        second = pool.session_for(host_endpoint(host_sshd, client_keys.host))
    assert first is second
    assert len(opened) == 1
    assert not first.is_active


def test_it_replaces_a_pooled_host_session_that_dropped(host_sshd: SshServer, client_keys: ClientKeys) -> None:
    with HostConnectionPool(opener=open_direct) as pool:
        first = pool.session_for(host_endpoint(host_sshd, client_keys.host))
        first.close()
        second = pool.session_for(host_endpoint(host_sshd, client_keys.host))
        assert second is not first
        assert second.is_active


def test_it_says_when_the_host_refuses_tcp_forwarding(router_sshd: SshServer, client_keys: ClientKeys) -> None:
    # The router sshd does not allow forwarding: used as a host, it must refuse the hop.
    refusing_host = Endpoint(
        "host", "host-uuid", "kvm-host-1", router_sshd.address, router_sshd.port, "root", str(client_keys.router)
    )
    with open_direct(refusing_host) as host:
        with pytest.raises(AccessError) as caught:
            host.open_forward(ROUTER_ADDRESS, router_sshd.port, timeout=2)
    assert caught.value.reason == AccessReason.PROTOCOL_ERROR
    assert caught.value.retryable is False
