"""The one seam to SSH: paramiko is imported here and nowhere else in VR Console.

It opens bounded SSH sessions (to a KVM host, to a router directly, or to a router through a
`direct-tcpip` channel of an already open host session), runs fixed commands with a deadline
and an output cap, streams the output of long-running ones (live tails) in chunks with a
deadline per read and a liveness check, and turns every way of failing into one `AccessError` whose `reason` says
what went wrong and whose `retryable` says whether trying again later can help. Host keys are
checked by a caller-supplied `HostKeyVerifier` before any credential is offered, so a changed
key never receives our key. Private keys are read from the files named by the endpoint and
are never logged, stored or included in an error message.
"""

from __future__ import annotations

import logging
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from threading import BoundedSemaphore, Lock, Timer
from types import TracebackType
from typing import Protocol

import paramiko
from django.db import models

logger = logging.getLogger(__name__)

# How long one recv() may block before the command loop re-checks its deadline.
_POLL_SECONDS = 0.1
_READ_CHUNK = 32768
# Commands in flight at once on one pooled host login, which many routers' collections share:
# under OpenSSH's default MaxSessions (10). Forwards (direct-tcpip) are not sessions there.
HOST_MAX_SESSIONS = 8


class AccessReason(models.TextChoices):
    """Why a router or host could not be reached or a command could not complete."""

    HOST_UNREACHABLE = "host_unreachable", "hypervisor host unreachable"
    HOST_AUTH_REFUSED = "host_auth_refused", "hypervisor host refused our key"
    HOST_KEY_CHANGED = "host_key_changed", "host key changed"
    ROUTER_UNREACHABLE = "router_unreachable", "router unreachable (control/link-local path down)"
    AUTH_REFUSED = "auth_refused", "router refused our key"
    TIMEOUT = "timeout", "timed out"
    PROTOCOL_ERROR = "protocol_error", "SSH protocol error"
    NO_ADDRESS = "no_address", "no usable address"
    KEY_MISSING = "key_missing", "SSH key file missing or unreadable"
    NOT_ALLOWED = "not_allowed", "address outside SSH_ALLOWED_NETWORKS"


# Retrying later helps when the network or the peer may come back; it does not help when
# our configuration or a pinned key is wrong.
_RETRYABLE = {
    AccessReason.HOST_UNREACHABLE,
    AccessReason.ROUTER_UNREACHABLE,
    AccessReason.TIMEOUT,
    AccessReason.PROTOCOL_ERROR,
}


class AccessError(Exception):
    """The one error of this module: a reason, whether retrying helps, and a readable message."""

    def __init__(self, reason: AccessReason, message: str, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.reason = AccessReason(reason)
        self.message = message
        self.retryable = self.reason in _RETRYABLE if retryable is None else retryable

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.message}"


@dataclass(frozen=True)
class CommandResult:
    """What one command printed, how it ended, and whether its output was cut at the cap."""

    stdout: str
    stderr: str
    exit_status: int | None
    duration: float
    truncated: bool = False


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to log in; `identity` is the CloudStack uuid the host key is pinned to.

    kind is "host" for a hypervisor host and "router" for a VR. `address` must already be a
    validated IP address; `key_file` names the private key, whose content is never kept here.
    """

    kind: str
    identity: str
    label: str
    address: str
    port: int
    username: str
    key_file: str

    @property
    def where(self) -> str:
        return f"{self.address}:{self.port}"


class HostKeyVerifier(Protocol):
    """Accepts or refuses the key an endpoint presented; raises AccessError(host_key_changed)."""

    def check(self, endpoint: Endpoint, key_type: str, key_base64: str) -> None: ...


def known_host_keys(path: str | None, address: str, port: int) -> list[tuple[str, str]]:
    """(key type, base64) pairs an OpenSSH known_hosts file trusts for address:port.

    Hashed entries are understood. A missing or unreadable file trusts nothing: the file is an
    optional operator-provided list, not a requirement.
    """
    if not path or not Path(path).is_file():
        return []
    try:
        host_keys = paramiko.HostKeys(path)
    except (OSError, paramiko.SSHException, ValueError) as exc:
        logger.warning("ignoring unreadable known_hosts file %s: %s", path, exc)
        return []
    name = address if port == 22 else f"[{address}]:{port}"
    entry = host_keys.lookup(name)
    if not entry:
        return []
    return [(key_type, entry[key_type].get_base64()) for key_type in entry.keys()]


# Loaded keys, by (path, mtime, size): cryptography checks an RSA key when it loads it, which
# costs more CPU than the rest of a collection; a replaced file is read again.
_KEY_CACHE: dict[tuple[str, int, int], paramiko.PKey] = {}
_KEY_CACHE_LOCK = Lock()


def _load_private_key(endpoint: Endpoint) -> paramiko.PKey:
    path = Path(endpoint.key_file) if endpoint.key_file else None
    if path is None or not path.is_file():
        raise AccessError(AccessReason.KEY_MISSING, f"no key file for {endpoint.kind} {endpoint.label}: {path}")
    try:
        status = path.stat()
        cache_key = (str(path), status.st_mtime_ns, status.st_size)
        with _KEY_CACHE_LOCK:
            cached = _KEY_CACHE.get(cache_key)
        if cached is not None:
            return cached
        key = paramiko.PKey.from_path(path)
    except (OSError, paramiko.SSHException, ValueError) as exc:
        # The exception text is paramiko's, about the format; it never contains key material.
        raise AccessError(AccessReason.KEY_MISSING, f"cannot read key file {path}: {type(exc).__name__}") from None
    with _KEY_CACHE_LOCK:
        for stale in [k for k in _KEY_CACHE if k[0] == cache_key[0]]:
            del _KEY_CACHE[stale]
        _KEY_CACHE[cache_key] = key
    return key


def _nul_free(data: bytes | bytearray) -> str:
    """Decoded output that PostgreSQL accepts: NUL (which no text column or JSON can hold) becomes U+FFFD.

    A log on a router's disk after a hard reset often holds runs of NUL bytes; storing them
    raw fails the whole collection, and U+FFFD is what a byte that does not decode already becomes.
    """
    return bytes(data).decode("utf-8", errors="replace").replace("\x00", "\ufffd")


class _Deadline:
    """Closes a channel when its deadline passes, whatever call is blocked on it.

    paramiko's `exec_command` waits for the server's answer with no timeout of its own: a
    router that freezes once the channel is open would hold the worker until TCP gives up.
    Closing the channel wakes every waiter on it (they raise), so no step outlives the deadline.
    """

    def __init__(self, channel: paramiko.Channel, seconds: float) -> None:
        self.fired = False
        self._channel = channel
        self._timer = Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        try:
            self._channel.close()
        except (paramiko.SSHException, OSError, EOFError):
            pass  # the connection is already gone: every waiter on the channel is woken all the same

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def _is_timeout(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, (socket.timeout, TimeoutError)) or "timed out" in text or "timeout" in text


class SshSession:
    """An authenticated SSH connection to one endpoint; use it as a context manager."""

    def __init__(
        self,
        transport: paramiko.Transport,
        endpoint: Endpoint,
        max_output_bytes: int,
        session_slots: BoundedSemaphore | None = None,
    ) -> None:
        self._transport = transport
        self.endpoint = endpoint
        self.max_output_bytes = max_output_bytes
        # Shared by the threads of a batch: bounds the commands running at once on this login.
        self.session_slots = session_slots

    def __enter__(self) -> SshSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def is_active(self) -> bool:
        return self._transport.is_active()

    def close(self) -> None:
        self._transport.close()

    def _unreachable_reason(self) -> AccessReason:
        return AccessReason.HOST_UNREACHABLE if self.endpoint.kind == "host" else AccessReason.ROUTER_UNREACHABLE

    def keep_alive(self, interval: int) -> None:
        """Send an SSH keepalive every `interval` seconds of silence, so NATs and firewalls keep the session."""
        self._transport.set_keepalive(interval)

    def check_alive(self, timeout: float) -> None:
        """A round trip to the peer within `timeout` seconds, or AccessError: a silent session may be dead.

        Opening (and closing) a session channel needs the peer's answer; keepalive packets do not
        (paramiko never waits for their reply), so this is what tells a quiet tail from a dead one.
        """
        if not self.is_active:
            raise AccessError(self._unreachable_reason(), f"connection to {self.endpoint.label} is closed")
        try:
            channel = self._transport.open_session(timeout=timeout)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            reason = AccessReason.TIMEOUT if _is_timeout(exc) or self.is_active else self._unreachable_reason()
            raise AccessError(
                reason, f"{self.endpoint.label} did not answer within {timeout:g}s ({exc})", retryable=True
            ) from None
        channel.close()

    def stream(self, command: str, timeout: float) -> CommandStream:
        """Start a long-running fixed command (a `tail -F`) whose output is read as it comes.

        `timeout` bounds opening the channel; reads are bounded by their own deadline.
        """
        try:
            channel = self._transport.open_session(timeout=timeout)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            reason = AccessReason.TIMEOUT if _is_timeout(exc) else self._unreachable_reason()
            raise AccessError(reason, f"cannot open a session on {self.endpoint.label}: {exc}") from None
        try:
            with _Deadline(channel, timeout) as deadline:
                channel.exec_command(command)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            channel.close()
            if deadline.fired:
                raise AccessError(
                    AccessReason.TIMEOUT,
                    f"{self.endpoint.label} did not start the command within {timeout:g}s",
                    retryable=True,
                ) from None
            raise AccessError(
                AccessReason.PROTOCOL_ERROR, f"{self.endpoint.label} refused the command: {exc}", retryable=True
            ) from None
        return CommandStream(self, channel)

    def open_forward(self, address: str, port: int, timeout: float) -> paramiko.Channel:
        """A direct-tcpip channel from this (host) session to address:port, as `ssh -W` does."""
        if not self.is_active:
            raise AccessError(AccessReason.HOST_UNREACHABLE, f"connection to {self.endpoint.label} is closed")
        try:
            return self._transport.open_channel("direct-tcpip", (address, port), ("127.0.0.1", 0), timeout=timeout)
        except paramiko.ChannelException as exc:
            if exc.code == paramiko.common.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED:
                # A configuration problem on the host, not an outage: retrying will not help.
                raise AccessError(
                    AccessReason.PROTOCOL_ERROR,
                    f"{self.endpoint.label} refuses TCP forwarding (sshd AllowTcpForwarding?)",
                    retryable=False,
                ) from None
            # The host's sshd could not open the TCP connection: the link-local path is down.
            raise AccessError(
                AccessReason.ROUTER_UNREACHABLE,
                f"{self.endpoint.label} cannot reach {address}:{port} ({exc.text or exc.code})",
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            reason = AccessReason.TIMEOUT if _is_timeout(exc) else AccessReason.ROUTER_UNREACHABLE
            raise AccessError(
                reason, f"forward through {self.endpoint.label} to {address}:{port} failed: {exc}"
            ) from None

    def run(self, command: str, timeout: float) -> CommandResult:
        """Run one fixed command; raise AccessError(timeout) when it outlives `timeout` seconds.

        Output past `max_output_bytes` on either stream is dropped, the result is marked
        truncated and the channel is closed, so a command that prints forever cannot hold the
        worker: the exit status is then unknown (None).
        """
        if self.session_slots is None:
            return self._run(command, timeout)
        if not self.session_slots.acquire(timeout=timeout):
            raise AccessError(
                AccessReason.TIMEOUT,
                f"no free session on {self.endpoint.label} within {timeout:g}s (all in use by other routers)",
                retryable=True,
            )
        try:
            return self._run(command, timeout)
        finally:
            self.session_slots.release()

    def _run(self, command: str, timeout: float) -> CommandResult:
        started = time.monotonic()
        deadline = started + timeout
        try:
            channel = self._transport.open_session(timeout=timeout)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            reason = AccessReason.TIMEOUT if _is_timeout(exc) else self._unreachable_reason()
            raise AccessError(reason, f"cannot open a session on {self.endpoint.label}: {exc}") from None
        stdout = bytearray()
        stderr = bytearray()
        truncated = False
        watchdog = _Deadline(channel, deadline - time.monotonic() + _POLL_SECONDS)
        try:
            watchdog.__enter__()
            channel.settimeout(_POLL_SECONDS)
            channel.exec_command(command)
            while True:
                progressed = False
                if channel.recv_ready():
                    chunk = channel.recv(_READ_CHUNK)
                    truncated |= _append_capped(stdout, chunk, self.max_output_bytes)
                    progressed = True
                if channel.recv_stderr_ready():
                    chunk = channel.recv_stderr(_READ_CHUNK)
                    truncated |= _append_capped(stderr, chunk, self.max_output_bytes)
                    progressed = True
                if truncated:
                    break
                drained = not channel.recv_ready() and not channel.recv_stderr_ready()
                # sshd may send the exit status before the last of the output: the command is
                # over only once the stream has ended (EOF, or the channel closed) and is drained.
                if drained and (channel.eof_received or channel.closed) and channel.exit_status_ready():
                    break
                if drained and channel.closed:
                    break
                if time.monotonic() > deadline:
                    raise AccessError(
                        AccessReason.TIMEOUT,
                        f"command on {self.endpoint.label} did not finish within {timeout:g}s",
                        retryable=True,
                    )
                if not self._transport.is_active():
                    raise AccessError(
                        self._unreachable_reason(), f"connection to {self.endpoint.label} dropped during a command"
                    )
                if not progressed:
                    # Blocks at most one poll interval: the channel's file descriptor wakes on
                    # output of either stream and on EOF; after EOF only the status is awaited.
                    if channel.eof_received:
                        channel.status_event.wait(_POLL_SECONDS)
                    else:
                        select.select([channel], [], [], _POLL_SECONDS)
            if watchdog.fired and not (channel.exit_status_ready() or truncated):
                raise AccessError(
                    AccessReason.TIMEOUT,
                    f"command on {self.endpoint.label} did not finish within {timeout:g}s",
                    retryable=True,
                )
            exit_status = channel.exit_status if not truncated and channel.exit_status_ready() else None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            if watchdog.fired:
                raise AccessError(
                    AccessReason.TIMEOUT,
                    f"command on {self.endpoint.label} did not finish within {timeout:g}s (the router stopped answering)",
                    retryable=True,
                ) from None
            reason = AccessReason.TIMEOUT if _is_timeout(exc) else AccessReason.PROTOCOL_ERROR
            raise AccessError(reason, f"command on {self.endpoint.label} failed: {exc}") from None
        finally:
            watchdog.__exit__()
            channel.close()
        return CommandResult(
            stdout=_nul_free(stdout),
            stderr=_nul_free(stderr),
            exit_status=exit_status,
            duration=time.monotonic() - started,
            truncated=truncated,
        )


@dataclass(frozen=True)
class StreamChunk:
    """What a streaming command printed since the last read; `ended` once it exited or its channel closed."""

    stdout: bytes = b""
    stderr: bytes = b""
    ended: bool = False
    exit_status: int | None = None


class CommandStream:
    """The output of one long-running command, read in bounded chunks with a deadline per read.

    The commands streamed are built to end when their standard input closes (the tail
    commands wait on `read` and then kill their process group), so `close()` sends EOF before
    closing the channel: nothing is left running on the router when a tail stops.
    """

    def __init__(self, session: SshSession, channel: paramiko.Channel) -> None:
        self.session = session
        self._channel = channel
        channel.settimeout(_POLL_SECONDS)

    def read(self, timeout: float, max_bytes: int = 4 * _READ_CHUNK) -> StreamChunk:
        """What arrived within `timeout` seconds (possibly nothing); at most about `max_bytes` per stream.

        Returns as soon as something arrived. Raises AccessError when the connection dropped.
        """
        channel = self._channel
        deadline = time.monotonic() + timeout
        while True:
            stdout = bytearray()
            stderr = bytearray()
            try:
                while channel.recv_ready() and len(stdout) < max_bytes:
                    stdout.extend(channel.recv(_READ_CHUNK))
                while channel.recv_stderr_ready() and len(stderr) < max_bytes:
                    stderr.extend(channel.recv_stderr(_READ_CHUNK))
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise AccessError(
                    self.session._unreachable_reason(), f"reading from {self.session.endpoint.label} failed: {exc}"
                ) from None
            drained = not channel.recv_ready() and not channel.recv_stderr_ready()
            ended = bool(drained and (channel.closed or (channel.eof_received and channel.exit_status_ready())))
            if stdout or stderr or ended:
                status = channel.exit_status if ended and channel.exit_status_ready() else None
                return StreamChunk(bytes(stdout), bytes(stderr), ended, status)
            if not self.session.is_active:
                raise AccessError(
                    self.session._unreachable_reason(),
                    f"connection to {self.session.endpoint.label} dropped during a tail",
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return StreamChunk()
            # Wakes on output of either stream and on EOF; otherwise sleeps out the read's deadline.
            if channel.eof_received:
                channel.status_event.wait(min(remaining, _POLL_SECONDS))
            else:
                select.select([channel], [], [], min(remaining, 1.0))

    def close(self) -> None:
        """End the command: EOF on its standard input, then close the channel."""
        try:
            if not self._channel.closed:
                self._channel.shutdown_write()
        except (paramiko.SSHException, OSError, EOFError):
            pass  # the channel or the connection is already gone; closing below is all that is left
        self._channel.close()


def _append_capped(buffer: bytearray, chunk: bytes, cap: int) -> bool:
    """Append what fits under the cap; True when something had to be dropped."""
    room = cap - len(buffer)
    if len(chunk) <= room:
        buffer.extend(chunk)
        return False
    buffer.extend(chunk[: max(room, 0)])
    return True


def connect(
    endpoint: Endpoint,
    verifier: HostKeyVerifier,
    *,
    connect_timeout: float,
    max_output_bytes: int,
    via: SshSession | None = None,
    keepalive_seconds: int | None = None,
) -> SshSession:
    """Open an authenticated session to `endpoint`, directly or through the host session `via`.

    Every step is bounded by `connect_timeout`: the TCP connect (or forward), the banner, the
    key exchange and the authentication, so a peer that accepts TCP and never speaks times out.
    """
    unreachable = AccessReason.HOST_UNREACHABLE if endpoint.kind == "host" else AccessReason.ROUTER_UNREACHABLE
    auth_refused = AccessReason.HOST_AUTH_REFUSED if endpoint.kind == "host" else AccessReason.AUTH_REFUSED
    private_key = _load_private_key(endpoint)
    if via is not None:
        sock: socket.socket | paramiko.Channel = via.open_forward(endpoint.address, endpoint.port, connect_timeout)
    else:
        try:
            sock = socket.create_connection((endpoint.address, endpoint.port), timeout=connect_timeout)
            # SSH sends many small packets that wait for each other's answer: without this,
            # Nagle plus delayed ACKs add about 40 ms to every command round trip.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except TimeoutError:
            raise AccessError(
                AccessReason.TIMEOUT, f"TCP connect to {endpoint.label} ({endpoint.where}) timed out"
            ) from None
        except OSError as exc:
            raise AccessError(
                unreachable, f"cannot connect to {endpoint.label} ({endpoint.where}): {exc.strerror or exc}"
            ) from None
    transport = paramiko.Transport(sock)
    transport.banner_timeout = connect_timeout
    transport.handshake_timeout = connect_timeout
    transport.auth_timeout = connect_timeout
    try:
        try:
            transport.start_client(timeout=connect_timeout)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            if _is_timeout(exc) or "banner" in str(exc).lower():
                reason = AccessReason.TIMEOUT
            elif isinstance(exc, (OSError, EOFError)):
                reason = unreachable
            else:
                reason = AccessReason.PROTOCOL_ERROR
            raise AccessError(reason, f"SSH handshake with {endpoint.label} ({endpoint.where}) failed: {exc}") from None
        if not (transport.is_active() and transport.initial_kex_done):
            # start_client returns quietly at its deadline when the peer never finished the handshake.
            raise AccessError(
                AccessReason.TIMEOUT,
                f"{endpoint.label} ({endpoint.where}) did not complete the SSH handshake within {connect_timeout:g}s",
            )
        server_key = transport.get_remote_server_key()
        verifier.check(endpoint, server_key.get_name(), server_key.get_base64())
        try:
            transport.auth_publickey(endpoint.username, private_key)
        except paramiko.AuthenticationException:
            raise AccessError(
                auth_refused, f"{endpoint.label} ({endpoint.where}) refused the key for {endpoint.username}"
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            reason = AccessReason.TIMEOUT if _is_timeout(exc) else AccessReason.PROTOCOL_ERROR
            raise AccessError(reason, f"authentication with {endpoint.label} failed: {exc}") from None
        if not transport.is_authenticated():
            raise AccessError(auth_refused, f"{endpoint.label} did not accept the key for {endpoint.username}")
    except BaseException:
        transport.close()
        raise
    # Keepalives keep NATs and firewalls from dropping a quiet session (a pooled host session
    # waits between routers); a dead peer is caught by each command's deadline, not by them.
    if keepalive_seconds is None:
        from django.conf import settings

        keepalive_seconds = int(getattr(settings, "SSH_KEEPALIVE_SECONDS", 15))
    transport.set_keepalive(keepalive_seconds)
    return SshSession(transport, endpoint, max_output_bytes)


@dataclass
class HostConnectionPool:
    """Host sessions shared by every router behind the same host during one sweep.

    Keyed by the host's identity; a dropped session is replaced on the next request. Close
    the pool (or use it as a context manager) when the sweep ends.
    """

    opener: Callable[[Endpoint], SshSession]
    # Commands at once on one pooled login (None: unbounded, the pool has one user at a time).
    max_sessions: int | None = None
    _sessions: dict[tuple[str, str, int], SshSession] = field(default_factory=dict)
    _lock: Lock = field(default_factory=Lock)
    _opening: dict[tuple[str, str, int], Lock] = field(default_factory=dict)
    # A host that just refused or did not answer: its other routers fail at once with the same
    # error for this long, instead of each waiting out its own connect timeout in turn.
    failure_memory_s: float = 30.0
    _failures: dict[tuple[str, str, int], tuple[AccessError, float]] = field(default_factory=dict)

    def __enter__(self) -> HostConnectionPool:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close_all()

    def session_for(self, endpoint: Endpoint) -> SshSession:
        """The pooled login to this host, opened on first use; threads wanting it wait for one login.

        Logins to different hosts open in parallel: only the threads of the same host wait.
        """
        key = (endpoint.identity, endpoint.address, endpoint.port)
        with self._lock:
            opening = self._opening.setdefault(key, Lock())
        with opening:
            with self._lock:
                session = self._sessions.get(key)
                failure = self._failures.get(key)
            if session is not None and session.is_active:
                return session
            if failure is not None and time.monotonic() - failure[1] < self.failure_memory_s:
                raise failure[0]
            try:
                session = self.opener(endpoint)
            except AccessError as exc:
                with self._lock:
                    self._failures[key] = (exc, time.monotonic())
                raise
            if self.max_sessions is not None:
                session.session_slots = BoundedSemaphore(self.max_sessions)
            with self._lock:
                self._sessions[key] = session
            return session

    def close_session(self, endpoint: Endpoint) -> None:
        """Close and forget the session to one host (its last user is done with it)."""
        with self._lock:
            session = self._sessions.pop((endpoint.identity, endpoint.address, endpoint.port), None)
        if session is not None:
            session.close()

    def close_all(self) -> None:
        with self._lock:
            for session in self._sessions.values():
                session.close()
            self._sessions.clear()
