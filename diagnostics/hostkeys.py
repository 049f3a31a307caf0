"""Host key pinning: trust on first contact, per CloudStack identity, and refuse a change.

A key is pinned to the uuid CloudStack gives the router or host, not to its address: link-
local addresses are reused, and a router that CloudStack recreates comes back with a new
uuid and legitimately a new key, so it simply pins anew. The same uuid presenting another
key is refused (`host_key_changed`), recorded on the pin and in the audit log, and logged.
Keys listed for the address in the operator's known_hosts file (SSH_KNOWN_HOSTS_FILE) are
trusted as given and take precedence over the database.
"""

from __future__ import annotations

import base64
import hashlib
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from diagnostics.models import HostKeyPin
from diagnostics.ssh import AccessError, AccessReason, Endpoint, known_host_keys
from vrconsole.models import AuditEntry

logger = logging.getLogger(__name__)


def fingerprint(key_base64: str) -> str:
    """The OpenSSH SHA256 fingerprint (`SHA256:...`) of a public key blob in base64."""
    digest = hashlib.sha256(base64.b64decode(key_base64)).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


class PinnedHostKeys:
    """The HostKeyVerifier used by collections: known_hosts first, then the database pins."""

    def __init__(self, known_hosts_file: str | None = None) -> None:
        self.known_hosts_file = known_hosts_file if known_hosts_file is not None else settings.SSH_KNOWN_HOSTS_FILE

    def check(self, endpoint: Endpoint, key_type: str, key_base64: str) -> None:
        trusted = known_host_keys(self.known_hosts_file, endpoint.address, endpoint.port)
        if trusted:
            if (key_type, key_base64) in trusted:
                return
            self._refuse(endpoint, key_type, key_base64, pinned_by="known_hosts")
        try:
            with transaction.atomic():
                pin, created = HostKeyPin.objects.get_or_create(
                    kind=endpoint.kind,
                    identity=endpoint.identity,
                    defaults={
                        "address": endpoint.address,
                        "key_type": key_type,
                        "key_base64": key_base64,
                        "fingerprint": fingerprint(key_base64),
                    },
                )
        except IntegrityError:
            # Two workers met the same new router at once; the other one pinned first.
            pin, created = HostKeyPin.objects.get(kind=endpoint.kind, identity=endpoint.identity), False
        if created:
            logger.info("pinned %s key of %s %s: %s", key_type, endpoint.kind, endpoint.label, pin.fingerprint)
            return
        if pin.key_type == key_type and pin.key_base64 == key_base64:
            HostKeyPin.objects.filter(pk=pin.pk).update(last_seen=timezone.now(), address=endpoint.address)
            return
        HostKeyPin.objects.filter(pk=pin.pk).update(
            mismatch_seen_at=timezone.now(),
            mismatch_fingerprint=fingerprint(key_base64),
            mismatch_address=endpoint.address,
        )
        self._refuse(endpoint, key_type, key_base64, pinned_by=f"pin {pin.fingerprint}")

    def _refuse(self, endpoint: Endpoint, key_type: str, key_base64: str, pinned_by: str) -> None:
        seen = fingerprint(key_base64)
        message = (
            f"{endpoint.kind} {endpoint.label} ({endpoint.where}) presented {key_type} {seen}, "
            f"which does not match {pinned_by}"
        )
        logger.warning("refusing SSH to %s", message)
        AuditEntry.record(
            "ssh.host_key_changed",
            target=f"{endpoint.kind} {endpoint.label} {endpoint.where}",
            detail=message,
            outcome=AccessReason.HOST_KEY_CHANGED.value,
        )
        raise AccessError(AccessReason.HOST_KEY_CHANGED, message, retryable=False)
