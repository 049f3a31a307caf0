"""Tests of host key pinning: first contact, a changed key, a recreated router, known_hosts."""

from __future__ import annotations

from pathlib import Path

import pytest

from diagnostics.hostkeys import PinnedHostKeys, fingerprint
from diagnostics.models import HostKeyPin
from diagnostics.ssh import AccessError, AccessReason, Endpoint, connect
from tests.diagnostics.conftest import ClientKeys, SshServer
from vrconsole.models import AuditEntry

pytestmark = pytest.mark.django_db


def endpoint_for(server: SshServer, keys: ClientKeys, identity: str = "router-uuid-1") -> Endpoint:
    return Endpoint("router", identity, "r-1-VM", server.address, server.port, "root", str(keys.router))


def touch(server: SshServer, keys: ClientKeys, verifier: PinnedHostKeys, identity: str = "router-uuid-1") -> None:
    with connect(endpoint_for(server, keys, identity), verifier, connect_timeout=2, max_output_bytes=4096):
        pass


def public_key_of(server: SshServer) -> tuple[str, str]:
    key_type, key_base64 = Path(f"{server.host_key}.pub").read_text().split()[:2]
    return key_type, key_base64


def test_it_pins_the_key_on_first_contact(own_router_sshd: SshServer, client_keys: ClientKeys, tmp_path: Path) -> None:
    touch(own_router_sshd, client_keys, PinnedHostKeys(str(tmp_path / "absent")))
    pin = HostKeyPin.objects.get(kind="router", identity="router-uuid-1")
    key_type, key_base64 = public_key_of(own_router_sshd)
    assert (pin.key_type, pin.key_base64, pin.address) == (key_type, key_base64, own_router_sshd.address)
    assert pin.fingerprint == fingerprint(key_base64)


def test_it_accepts_the_pinned_key_again(own_router_sshd: SshServer, client_keys: ClientKeys, tmp_path: Path) -> None:
    verifier = PinnedHostKeys(str(tmp_path / "absent"))
    touch(own_router_sshd, client_keys, verifier)
    touch(own_router_sshd, client_keys, verifier)
    assert HostKeyPin.objects.count() == 1


def test_it_refuses_a_changed_key_for_the_same_router(
    own_router_sshd: SshServer, client_keys: ClientKeys, tmp_path: Path
) -> None:
    verifier = PinnedHostKeys(str(tmp_path / "absent"))
    touch(own_router_sshd, client_keys, verifier)
    own_router_sshd.replace_host_key()
    with pytest.raises(AccessError) as caught:
        touch(own_router_sshd, client_keys, verifier)
    assert caught.value.reason == AccessReason.HOST_KEY_CHANGED
    assert caught.value.retryable is False


def test_it_records_the_changed_key_on_the_pin_and_in_the_audit_log(
    own_router_sshd: SshServer, client_keys: ClientKeys, tmp_path: Path
) -> None:
    verifier = PinnedHostKeys(str(tmp_path / "absent"))
    touch(own_router_sshd, client_keys, verifier)
    own_router_sshd.replace_host_key()
    with pytest.raises(AccessError):
        touch(own_router_sshd, client_keys, verifier)
    pin = HostKeyPin.objects.get(identity="router-uuid-1")
    assert pin.mismatch_fingerprint == fingerprint(public_key_of(own_router_sshd)[1])
    assert AuditEntry.objects.filter(action="ssh.host_key_changed", outcome="host_key_changed").count() == 1


def test_it_pins_anew_when_the_router_was_recreated_with_a_new_uuid(
    own_router_sshd: SshServer, client_keys: ClientKeys, tmp_path: Path
) -> None:
    verifier = PinnedHostKeys(str(tmp_path / "absent"))
    touch(own_router_sshd, client_keys, verifier, identity="router-uuid-old")
    own_router_sshd.replace_host_key()
    touch(own_router_sshd, client_keys, verifier, identity="router-uuid-new")
    assert HostKeyPin.objects.get(identity="router-uuid-new").key_base64 == public_key_of(own_router_sshd)[1]


def test_it_trusts_a_key_listed_in_the_operators_known_hosts(
    own_router_sshd: SshServer, client_keys: ClientKeys, tmp_path: Path
) -> None:
    key_type, key_base64 = public_key_of(own_router_sshd)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[{own_router_sshd.address}]:{own_router_sshd.port} {key_type} {key_base64}\n")
    touch(own_router_sshd, client_keys, PinnedHostKeys(str(known_hosts)))
    assert not HostKeyPin.objects.exists()


def test_it_refuses_a_key_that_contradicts_the_operators_known_hosts(
    own_router_sshd: SshServer, client_keys: ClientKeys, tmp_path: Path, router_sshd: SshServer
) -> None:
    other_type, other_base64 = public_key_of(router_sshd)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[{own_router_sshd.address}]:{own_router_sshd.port} {other_type} {other_base64}\n")
    with pytest.raises(AccessError) as caught:
        touch(own_router_sshd, client_keys, PinnedHostKeys(str(known_hosts)))
    assert caught.value.reason == AccessReason.HOST_KEY_CHANGED
