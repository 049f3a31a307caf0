"""How to reach one router: the access path chosen from its inventory row, and opening it.

KVM (and XenServer, whose link-local control address also lives only inside the host) is
reached through the hypervisor host: SSH to the host's `ipaddress`, then a direct-tcpip
channel to `<link_local_ip>:VR_SSH_PORT`. VMware and Hyper-V routers are reached directly on
their control address, which CloudStack reports in `linklocalip` although it is a pod private
IP there (CLOUDSTACK.md §2). SSH_OVERRIDES may change user, keys, ports or the path itself per
zone or per host ("zone:<uuid or name>", "host:<uuid or name>"; a host entry wins over its
zone's). Addresses are validated before any packet is sent.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from diagnostics.ssh import (
    AccessError,
    AccessReason,
    Endpoint,
    HostConnectionPool,
    HostKeyVerifier,
    SshSession,
    connect,
)
from vrconsole.models import Router

VIA_HOST_HYPERVISORS = frozenset({"kvm", "xenserver", "xcp-ng"})

ACCESS_PATH_VIA_HOST = "host"
ACCESS_PATH_DIRECT = "direct"

_OVERRIDABLE = {
    "ACCESS_PATH",
    "HOST_SSH_USER",
    "HOST_SSH_KEY_FILE",
    "HOST_SSH_PORT",
    "VR_SSH_KEY_FILE",
    "VR_SSH_PORT",
}


@dataclass(frozen=True)
class AccessPlan:
    """The endpoints to log in to for one router; `host` is None on the direct path."""

    router: Endpoint
    host: Endpoint | None

    @property
    def description(self) -> str:
        if self.host is None:
            return f"direct {self.router.where}"
        return f"via host {self.host.label} ({self.host.where}) to {self.router.where}"


def _validated_address(raw: str | None, what: str) -> str:
    if not raw:
        raise AccessError(AccessReason.NO_ADDRESS, f"{what} has no address in the inventory")
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        raise AccessError(AccessReason.NO_ADDRESS, f"{what} address {raw!r} is not an IP address") from None


def _port(value: Any, name: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"SSH_OVERRIDES {name}={value!r}: expected a port number") from None
    if not 1 <= port <= 65535:
        raise ImproperlyConfigured(f"SSH_OVERRIDES {name}={value!r}: expected a port number")
    return port


def effective_ssh_settings(router: Router) -> dict[str, Any]:
    """The SSH settings for this router: the defaults, then its zone's override, then its host's."""
    values: dict[str, Any] = {
        "ACCESS_PATH": "",
        "HOST_SSH_USER": settings.HOST_SSH_USER,
        "HOST_SSH_KEY_FILE": settings.HOST_SSH_KEY_FILE,
        "HOST_SSH_PORT": settings.HOST_SSH_PORT,
        "VR_SSH_KEY_FILE": settings.VR_SSH_KEY_FILE,
        "VR_SSH_PORT": settings.VR_SSH_PORT,
    }
    overrides = settings.SSH_OVERRIDES or {}
    keys: list[str] = []
    if router.zone is not None:
        keys += [f"zone:{router.zone.uuid}", f"zone:{router.zone.name}"]
    if router.host is not None:
        keys += [f"host:{router.host.uuid}", f"host:{router.host.name}"]
    for key in keys:
        override = overrides.get(key)
        if override is None:
            continue
        if not isinstance(override, dict) or not set(override) <= _OVERRIDABLE:
            raise ImproperlyConfigured(
                f"SSH_OVERRIDES[{key!r}]: expected an object with keys among {', '.join(sorted(_OVERRIDABLE))}"
            )
        values.update(override)
    values["HOST_SSH_PORT"] = _port(values["HOST_SSH_PORT"], "HOST_SSH_PORT")
    values["VR_SSH_PORT"] = _port(values["VR_SSH_PORT"], "VR_SSH_PORT")
    if values["ACCESS_PATH"] not in {"", ACCESS_PATH_VIA_HOST, ACCESS_PATH_DIRECT}:
        raise ImproperlyConfigured(f"SSH_OVERRIDES ACCESS_PATH={values['ACCESS_PATH']!r}: expected 'host' or 'direct'")
    return values


def plan_access(router: Router) -> AccessPlan:
    """Decide how to reach `router`; AccessError(no_address) when the inventory lacks what is needed."""
    values = effective_ssh_settings(router)
    path = values["ACCESS_PATH"] or (
        ACCESS_PATH_VIA_HOST if router.hypervisor.strip().lower() in VIA_HOST_HYPERVISORS else ACCESS_PATH_DIRECT
    )
    router_endpoint = Endpoint(
        kind="router",
        identity=router.uuid,
        label=router.name or router.uuid,
        address=_validated_address(router.link_local_ip, f"router {router.name or router.uuid} control"),
        port=values["VR_SSH_PORT"],
        username="root",
        key_file=values["VR_SSH_KEY_FILE"] or "",
    )
    if path == ACCESS_PATH_DIRECT:
        check_allowed(router_endpoint)
        return AccessPlan(router=router_endpoint, host=None)
    host = router.host
    if host is None:
        raise AccessError(AccessReason.NO_ADDRESS, f"router {router_endpoint.label} has no host in the inventory")
    host_endpoint = Endpoint(
        kind="host",
        identity=host.uuid,
        label=host.name or host.uuid,
        address=_validated_address(host.ipaddress, f"host {host.name or host.uuid}"),
        port=values["HOST_SSH_PORT"],
        username=values["HOST_SSH_USER"],
        key_file=values["HOST_SSH_KEY_FILE"] or "",
    )
    check_allowed(host_endpoint)
    check_forward_target(router_endpoint)
    return AccessPlan(router=router_endpoint, host=host_endpoint)


def check_allowed(endpoint: Endpoint) -> None:
    """Refuse, before any packet is sent, an address outside settings.SSH_ALLOWED_NETWORKS."""
    networks = settings.SSH_ALLOWED_NETWORKS
    if not networks:
        return
    address = ipaddress.ip_address(endpoint.address)
    if not any(address in network for network in networks):
        raise AccessError(
            AccessReason.NOT_ALLOWED,
            f"{endpoint.kind} {endpoint.label} address {endpoint.address} is outside SSH_ALLOWED_NETWORKS "
            f"({', '.join(str(n) for n in networks)}); nothing was sent",
        )


def check_forward_target(endpoint: Endpoint) -> None:
    """Refuse a via-host forward to anything but the control network (SSH_FORWARD_ALLOWED_NETWORKS).

    The host's sshd opens the TCP connection, so SSH_ALLOWED_NETWORKS (what the worker may
    reach itself) says nothing about it: a tampered inventory could otherwise use a KVM host
    as a springboard to any address the host reaches. A VR's control address is link-local
    (CloudStack's control.cidr, 169.254.0.0/16 unless changed).
    """
    address = ipaddress.ip_address(endpoint.address)
    networks = settings.SSH_FORWARD_ALLOWED_NETWORKS
    if not any(address in network for network in networks):
        raise AccessError(
            AccessReason.NOT_ALLOWED,
            f"{endpoint.kind} {endpoint.label} control address {endpoint.address} is outside "
            f"SSH_FORWARD_ALLOWED_NETWORKS ({', '.join(str(n) for n in networks)}); nothing was sent",
        )


@dataclass
class RouterConnection:
    """The open sessions of one collection: the router's, and the host's on the KVM path."""

    plan: AccessPlan
    router: SshSession
    host: SshSession | None


@contextmanager
def open_router_connection(
    plan: AccessPlan, verifier: HostKeyVerifier, pool: HostConnectionPool | None = None
) -> Iterator[RouterConnection]:
    """Open the plan's sessions; the host session comes from `pool` when one is given.

    A pooled host session stays open for the next router behind the same host; one opened
    here is closed with the router session.
    """
    timeout = settings.SSH_CONNECT_TIMEOUT
    cap = settings.SSH_MAX_OUTPUT_BYTES

    def open_host(endpoint: Endpoint) -> SshSession:
        return connect(endpoint, verifier, connect_timeout=timeout, max_output_bytes=cap)

    host_session: SshSession | None = None
    owns_host = False
    if plan.host is not None:
        if pool is not None:
            host_session = pool.session_for(plan.host)
        else:
            host_session = open_host(plan.host)
            owns_host = True
    try:
        router_session = connect(plan.router, verifier, connect_timeout=timeout, max_output_bytes=cap, via=host_session)
        try:
            yield RouterConnection(plan=plan, router=router_session, host=host_session)
        finally:
            router_session.close()
    finally:
        if owns_host and host_session is not None:
            host_session.close()


def management_endpoints() -> list[Endpoint]:
    """The management servers whose log the console may read (MANAGEMENT_SERVERS); check_allowed() before use.

    They are logged in to like the KVM hosts: a user and a key file named in settings. A
    server's host key is pinned to its address (its identity here, as CloudStack gives a
    management server no uuid the console sees).
    """
    endpoints = []
    for address in settings.MANAGEMENT_SERVERS:
        endpoint = Endpoint(
            kind="host",
            identity=f"management:{address}",
            label=f"management server {address}",
            address=_validated_address(address, "management server"),
            port=settings.MANAGEMENT_SSH_PORT,
            username=settings.MANAGEMENT_SSH_USER,
            key_file=settings.MANAGEMENT_SSH_KEY_FILE or "",
        )
        endpoints.append(endpoint)
    return endpoints


def new_host_pool(verifier: HostKeyVerifier, max_sessions: int | None = None) -> HostConnectionPool:
    """A per-sweep pool of host sessions opened with the configured timeouts and cap."""

    def open_host(endpoint: Endpoint) -> SshSession:
        return connect(
            endpoint,
            verifier,
            connect_timeout=settings.SSH_CONNECT_TIMEOUT,
            max_output_bytes=settings.SSH_MAX_OUTPUT_BYTES,
        )

    return HostConnectionPool(opener=open_host, max_sessions=max_sessions)
