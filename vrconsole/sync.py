"""The inventory sync: one region's zones, hosts, VPCs, networks and routers into the database.

The API is read page by page by a thread of the client while the sync applies each page in
one transaction that holds the region's lock: the management server builds the next page
while we digest and write this one. Nothing is committed before the read is complete and
well-formed, so a 401, a 5xx, a timeout or a malformed page rolls back to the previous
inventory exactly as it was and marks the region's sync failed with a reason.
Applying is idempotent and cheap when nothing changed: rows are keyed on (region, uuid);
hosts, VPCs, networks and routers are read as item texts (ListedItem), and an item whose
text's fingerprint is a present row's is that row, never parsed and never written. New rows
go in with COPY, changed ones in batched upserts, and NICs are replaced only for routers
that changed. No
statement takes one parameter per router (`__any`, vrconsole.lookups: one array
parameter), so a region of any size stays under PostgreSQL's 65,535-parameter limit.
Routers the API no longer lists are marked removed (kept, with their history); state and
redundant-state transitions are written as RouterStateChange rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import Model
from django.utils import timezone

from vrconsole import bulk
from vrconsole.cloudstack import mapping
from vrconsole.cloudstack.client import ApiFailure, CloudStackClient, ListedItem, collector_paused
from vrconsole.cloudstack.regions import RegionConfig, region_config
from vrconsole.models import (
    Host,
    Network,
    Region,
    Router,
    RouterNic,
    RouterStateChange,
    SyncRun,
    SyncStatus,
    Vpc,
    Zone,
)

logger = logging.getLogger(__name__)


class SyncRefused(Exception):
    """The API answered, but applying the answer would destroy too much to be believable."""


@dataclass
class SyncResult:
    """What one sync did; the JSON line of `sync_routers --json`."""

    region: str
    routers: int
    created: int
    updated: int
    removed: int
    state_changes: int
    duration_s: float
    status: str = SyncStatus.OK
    error: str = ""
    skipped: int = 0
    warnings: str = ""
    # Router rows the sync wrote or marked removed: what a live fleet page re-renders.
    changed_router_ids: list[int] = field(default_factory=list, repr=False)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["changed_router_ids"]
        data["duration_s"] = round(self.duration_s, 3)
        return data


# An API item with its id and digest: (uuid, digest, item), the item parsed (zones) or listed.
Digested = tuple[str, str, Any]


def digested(items: Iterable[dict[str, Any]]) -> list[Digested]:
    """Each parsed item with the id and digest the sync keys and compares it by."""
    return [(mapping.item_id(item), mapping.digest(item), item) for item in items]


def present_by_digest(existing: dict[str, tuple[Any, ...]]) -> dict[str, str]:
    """digest -> uuid of the rows the API listed last time (not removed): how an unchanged item is known."""
    return {known[1]: uuid for uuid, known in existing.items() if known[2] is None and known[1]}


def identified(
    items: Iterable[ListedItem | dict[str, Any]], by_digest: dict[str, str]
) -> list[tuple[str, str, ListedItem]]:
    """Each listed item (a parsed one is listed first) with its id and the digest of its text.

    An item whose text is that of a present row is that row: nothing of it is parsed (a
    re-sync's thousands of unchanged routers are never built). Any other item is parsed for
    its id, and will be written.
    """
    out = []
    for item in items:
        if not isinstance(item, ListedItem):
            item = ListedItem.of(item)
        uuid = by_digest.get(item.digest)
        out.append((uuid if uuid is not None else mapping.item_id(item.parsed()), item.digest, item))
    return out


def _existing(model: type[Model], region: Region, *more: str) -> dict[str, tuple[Any, ...]]:
    """uuid -> (pk, digest, removed at, *more) of a region's rows: all a sync needs to know of an unchanged one.

    Tens of thousands of rows for a large region, every sync: read with the driver's own
    cursor, skipping the ORM's per-row work.
    """
    rows = model._default_manager.filter(region=region).values_list("uuid", "pk", "api_digest", "removed_at", *more)
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0]: row[1:] for row in cursor.fetchall()}


def _upsert_plain(
    model: type[Model],
    region: Region,
    items: list[Digested],
    existing: dict[str, tuple[Any, ...]],
    fields_of: Any,
    extra: Any,
    now: datetime,
) -> dict[str, int]:
    """Upsert zones, hosts, VPCs or networks; return uuid -> pk for every listed item."""
    ids: dict[str, int] = {}
    rows = []
    for uuid, dig, item in items:
        if not uuid or uuid in ids:
            continue
        known = existing.get(uuid)
        if known is not None and known[1] == dig and known[2] is None:
            ids[uuid] = known[0]
            continue
        ids[uuid] = 0
        if isinstance(item, ListedItem):
            item = item.parsed()
        rows.append(
            {
                "region_id": region.pk,
                "uuid": uuid,
                "api_digest": dig,
                "first_seen": now,
                "api_changed_at": now,
                "removed_at": None,
                **fields_of(item),
                **extra(item),
            }
        )
    for (_region_id, uuid), pk in _write(model, rows, existing, keep=("first_seen",)).items():
        ids[uuid] = pk
    gone = [uuid for uuid, known in existing.items() if uuid not in ids and known[2] is None]
    if gone:
        model._default_manager.filter(region=region, uuid__any=gone).update(removed_at=now)
    return ids


def _write(
    model: type[Model], rows: list[dict[str, Any]], existing: dict[str, Any], keep: tuple[str, ...] = ()
) -> dict[tuple[int, str], int]:
    """Write rows keyed on (region, uuid): new ones with COPY, known ones upserted; the keys' pks.

    Under the region lock a uuid the sync does not know cannot exist in the region, so new
    rows need no conflict handling (the whole of a first sync goes in by COPY).
    """
    new = [row for row in rows if row["uuid"] not in existing]
    known = [row for row in rows if row["uuid"] in existing]
    ids = bulk.upsert(model, known, unique=("region_id", "uuid"), keep=keep)
    for row, pk in zip(new, bulk.insert(model, new, returning_ids=True), strict=True):
        ids[(row["region_id"], row["uuid"])] = pk
    return ids


# Changed routers are written while the read goes on once this many have piled up: what is
# left for the end, after the last page, is at most this many rows and the removals. An
# ordinary re-sync (1% of 10,000 routers changed, a few per page) writes every few pages; the
# database does it while the API builds the next pages, instead of after the last one.
WRITE_AHEAD_ROWS = 50


class _RegionApply:
    """Applies a region's read as its pages arrive, inside the sync's transaction.

    The reads come in dependency order (templates, zones, hosts, VPCs, networks, routers):
    each kind is written as soon as it is complete, and changed routers page by page, so the
    database works while the API builds the next page. Nothing is committed before the read
    is complete and believable: an API failure or a refused mass removal rolls it all back.
    """

    def __init__(self, region: Region, now: datetime) -> None:
        self.region = region
        self.now = now
        # Read while the client already fetches the first pages.
        self.existing: dict[type[Model], dict[str, tuple[Any, ...]]] = {
            model: _existing(model, region) for model in (Zone, Host, Vpc)
        }
        self.existing[Network] = _existing(Network, region, "network_type")
        # Only zones and their system templates are kept whole until written; the other kinds
        # are digested as they come (pending, the router writer).
        self.kept: dict[str, list[dict[str, Any]]] = {"zones": [], "templates": []}
        self.pending: list[Digested] = []
        self.kind = ""
        self.by_digest: dict[type[Model], dict[str, str]] = {}
        self.ids: dict[str, dict[str, int]] = {}
        self.writer: _RouterWriter | None = None
        # Running routers read until one carrying addresses shows the key is a root admin's.
        self.running_routers = self.running_routers_with_addresses = 0
        self.network_types: dict[str, str] = {}  # network uuid -> type (Isolated, Shared, L2)

    def add(self, kind: str, items: list[Any]) -> None:
        """One page of `kind` items (Inventory field names): dicts, or ListedItems (what a raw read gives)."""
        if kind != self.kind:
            self._complete(self.kind)
            self.kind = kind
        if kind == "routers":
            # Router pages are not kept: once digested, an unchanged router's item is dropped
            # with its page (freed while the API builds the next page, not all at the end) and
            # a changed one is held only until it is written.
            writer = self._router_writer()
            routers = identified(items, writer.by_digest)
            if not self.running_routers_with_addresses:
                for _, _, router in routers:
                    if router.state == "Running":
                        self.running_routers += 1
                        if router.addressed:
                            self.running_routers_with_addresses = 1
                            break
            for uuid, dig, router in routers:
                writer.add(uuid, dig, router)
            if len(writer.changed) >= WRITE_AHEAD_ROWS:
                writer.write_changed()
        elif kind in ("hosts", "vpcs", "networks"):
            # Written, then dropped, once the kind is complete.
            model = {"hosts": Host, "vpcs": Vpc, "networks": Network}[kind]
            if model not in self.by_digest:
                self.by_digest[model] = present_by_digest(self.existing[model])
            self.pending.extend(identified(items, self.by_digest[model]))
        else:
            self.kept.setdefault(kind, []).extend(items)

    def _zone_of(self, item: dict[str, Any]) -> dict[str, Any]:
        return {"zone_id": self.ids["zones"].get(mapping.text(item.get("zoneid"), 64))}

    def _network_extra(self, item: dict[str, Any]) -> dict[str, Any]:
        return {**self._zone_of(item), "vpc_id": self.ids["vpcs"].get(mapping.text(item.get("vpcid"), 64))}

    def _complete(self, kind: str) -> None:
        """Write a kind whose items have all been read (routers are written page by page)."""
        if kind in ("", "routers") or kind in self.ids:
            return
        if kind == "templates":
            return  # zones carry them
        if kind == "zones":
            templates = mapping.system_templates_by_zone(self.kept["templates"])
            zones = digested(
                {**zone, "systemtemplates": templates.get(mapping.text(zone.get("id"), 64), [])}
                for zone in self.kept["zones"]
            )
            self.ids["zones"] = _upsert_plain(
                Zone,
                self.region,
                zones,
                self.existing[Zone],
                lambda item: {**mapping.zone_fields(item), "system_templates": item["systemtemplates"]},
                lambda item: {},
                self.now,
            )
            return
        plain: dict[str, tuple[type[Model], Any, Any]] = {
            "hosts": (Host, mapping.host_fields, self._zone_of),
            "vpcs": (Vpc, mapping.vpc_fields, self._zone_of),
            "networks": (Network, mapping.network_fields, self._network_extra),
        }
        model, fields_of, extra = plain[kind]
        self.ids[kind] = _upsert_plain(
            model, self.region, self.pending, self.existing[model], fields_of, extra, self.now
        )
        if kind == "networks":
            # An unchanged network's type is its row's; a changed one's is read from its item.
            known = self.existing[Network]
            self.network_types = {
                uuid: known[uuid][3] if uuid in known and known[uuid][1] == dig else mapping.text(item.type, 32)
                for uuid, dig, item in self.pending
            }
        self.pending = []

    def _router_writer(self) -> _RouterWriter:
        if self.writer is None:
            for kind in ("templates", "zones", "hosts", "vpcs", "networks"):
                self._complete(kind)
            self.writer = _RouterWriter(
                self.region,
                self.now,
                lookups=_Lookups(
                    self.ids["zones"], self.ids["hosts"], self.ids["vpcs"], self.ids["networks"], self.network_types
                ),
                existing=_existing(Router, self.region),
            )
        return self.writer

    def finish(self, allow_mass_removal: bool) -> SyncResult:
        """Everything read: remove what the API no longer lists (unless that is unbelievable), write the rest."""
        writer = self._router_writer()
        gone = [uuid for uuid, known in writer.existing.items() if uuid not in writer.listed and known[2] is None]
        present_before = sum(1 for known in writer.existing.values() if known[2] is None)
        guard = settings.SYNC_MASS_REMOVAL_GUARD
        if not allow_mass_removal and present_before >= 20 and len(gone) > guard * present_before:
            raise SyncRefused(
                f"the API listed {len(writer.listed)} routers but {present_before} were known: applying it would "
                f"mark {len(gone)} routers removed at once (more than {guard:.0%}). This looks like a permission or "
                "API problem, so the inventory was kept. If the routers are really gone, run "
                "`python manage.py sync_routers --allow-mass-removal`."
            )
        writer.remove(gone)
        written = writer.flush()
        changed = set(written.values()) | {writer.existing[uuid][0] for uuid in writer.removed}
        return SyncResult(
            region=self.region.name,
            routers=len(writer.listed),
            created=writer.created,
            updated=writer.updated,
            removed=len(gone),
            state_changes=writer.state_changes,
            duration_s=0.0,
            skipped=writer.skipped,
            warnings=_warnings(self.running_routers, self.running_routers_with_addresses),
            changed_router_ids=sorted(changed),
        )


@dataclass
class _Lookups:
    """CloudStack uuid -> our primary key, for the foreign keys of router rows."""

    zones: dict[str, int]
    hosts: dict[str, int]
    vpcs: dict[str, int]
    networks: dict[str, int]
    network_types: dict[str, str]


def _existing_routers(routers: Any) -> dict[str, tuple[Any, ...]]:
    """uuid -> (pk, digest, removed at): all a sync needs to know of an unchanged router."""
    return {row[0]: row[1:] for row in routers.values_list("uuid", "pk", "api_digest", "removed_at")}


class _RouterWriter:
    """Turns listRouters items into router rows, NICs and state transitions, then writes them in bulk.

    Only items whose digest changed are mapped; the previous state of those few routers is
    read in one query per write, so an unchanged fleet costs one narrow read. Changed rows
    and their state transitions may be written as they come (write_changed, once enough have
    piled up); flush writes the rest and the removals.
    """

    def __init__(self, region: Region, now: datetime, lookups: _Lookups, existing: dict[str, tuple[Any, ...]]) -> None:
        self.region = region
        self.now = now
        self.lookups = lookups
        self.existing = existing
        self.by_digest = present_by_digest(existing)
        self.listed: set[str] = set()
        self.skipped = self.created = self.updated = 0
        self.changed: list[tuple[str, str, ListedItem]] = []  # uuid, digest, item
        self.transitions: list[tuple[str, str, Any, Any]] = []  # uuid, kind, from, to
        self.removed: list[str] = []
        self.pk_of: dict[str, int] = {}  # uuid -> pk of the rows written so far
        self.written_transitions = 0  # how many of self.transitions are in the database

    @property
    def state_changes(self) -> int:
        return sum(1 for t in self.transitions if t[1] != RouterStateChange.Kind.PRESENCE)

    def add(self, uuid: str, dig: str, item: ListedItem) -> None:
        """One listed item, with its id and digest; only a changed one is kept (and later parsed) for writing."""
        if not uuid or uuid in self.listed:
            self.skipped += 1
            return
        self.listed.add(uuid)
        known = self.existing.get(uuid)
        if known is not None and known[1] == dig and known[2] is None:
            return
        self.changed.append((uuid, dig, item))

    def _rows(self) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
        """Row values and NICs of the changed items, with their state transitions recorded."""
        now, lookups = self.now, self.lookups
        known_pks = [self.existing[uuid][0] for uuid, _, _ in self.changed if uuid in self.existing]
        previous = {
            pk: rest
            for pk, *rest in (
                Router.objects.filter(pk__any=known_pks).values_list(
                    "pk", "state", "redundant_state", "state_since", "first_seen", "api_changed_at", "api_data"
                )
                if known_pks  # none in a first sync: no query
                else ()
            )
        }
        rows, nics_of = [], {}
        for uuid, dig, listed in self.changed:
            item = listed.parsed()
            changed_at: Any = now
            values = mapping.router_fields(item)
            values["router_type"] = mapping.router_type(item, lookups.network_types)
            values["zone_id"] = lookups.zones.get(mapping.text(item.get("zoneid"), 64))
            values["host_id"] = lookups.hosts.get(mapping.text(item.get("hostid"), 64))
            values["vpc_id"] = lookups.vpcs.get(mapping.text(item.get("vpcid"), 64))
            values["network_id"] = lookups.networks.get(mapping.text(item.get("guestnetworkid"), 64))
            known = self.existing.get(uuid)
            if known is None:
                self.created += 1
                values["state_since"] = now
                values["first_seen"] = now
                self.transitions.append((uuid, RouterStateChange.Kind.PRESENCE, "", "listed"))
            else:
                self.updated += 1
                old_state, old_redundant, state_since, first_seen, api_changed_at, old_item = previous[known[0]]
                if known[2] is None and old_item == item:
                    # The same content under another fingerprint (the API wrote it differently, or
                    # the fingerprint's definition changed): rewritten, but its data did not change.
                    changed_at = api_changed_at
                values["first_seen"] = first_seen
                values["state_since"] = state_since or now
                if known[2] is not None:
                    self.transitions.append((uuid, RouterStateChange.Kind.PRESENCE, "removed", "listed"))
                if old_state != values["state"]:
                    values["state_since"] = now
                    self.transitions.append((uuid, RouterStateChange.Kind.STATE, old_state, values["state"]))
                if old_redundant != values["redundant_state"] and (old_redundant or values["redundant_state"]):
                    self.transitions.append(
                        (uuid, RouterStateChange.Kind.REDUNDANT, old_redundant, values["redundant_state"])
                    )
            nics_of[uuid] = mapping.router_nics(item)
            rows.append(
                {
                    "region_id": self.region.pk,
                    "uuid": uuid,
                    "api_digest": dig,
                    "api_changed_at": changed_at,
                    "removed_at": None,
                }
                | values
            )
        return rows, nics_of

    def remove(self, uuids: list[str]) -> None:
        """Mark routers the API no longer lists as removed (kept, with their history)."""
        for uuid in uuids:
            if uuid in self.existing and self.existing[uuid][2] is None:
                self.removed.append(uuid)
                self.transitions.append((uuid, RouterStateChange.Kind.PRESENCE, "listed", "removed"))

    def write_changed(self) -> None:
        """Write the rows, NICs and state transitions of the changed routers added so far."""
        if not self.changed:
            return
        rows, nics_of = self._rows()
        self.changed = []
        written = _write(Router, rows, self.existing)
        pk_of = {uuid: pk for (_region_id, uuid), pk in written.items()}
        self.pk_of |= pk_of
        rewritten = [pk for uuid, pk in pk_of.items() if uuid in self.existing]
        if rewritten:
            RouterNic.objects.filter(router_id__any=rewritten).delete()
        bulk.insert(RouterNic, [{"router_id": pk_of[uuid], **nic} for uuid, nics in nics_of.items() for nic in nics])
        self._write_transitions()

    def _write_transitions(self) -> None:
        """Record the state transitions noted since the last write."""
        if self.written_transitions == len(self.transitions):
            return
        new = self.transitions[self.written_transitions :]
        self.written_transitions = len(self.transitions)
        bulk.insert(
            RouterStateChange,
            [
                {
                    "router_id": self.pk_of[uuid] if uuid in self.pk_of else self.existing[uuid][0],
                    "kind": kind,
                    "from_state": old or "",
                    "to_state": new_state or "",
                    "at": self.now,
                }
                for uuid, kind, old, new_state in new
            ],
        )

    def flush(self) -> dict[str, int]:
        """Write everything not written yet; returns uuid -> pk of the rows written."""
        self.write_changed()
        if self.removed:
            Router.objects.filter(region=self.region, uuid__any=self.removed).update(removed_at=self.now)
        self._write_transitions()
        return self.pk_of


# How long a one-router refresh (triage, an action's re-read) waits for its region's lock. A
# region's sync holds that lock for its whole read of the API (tens of seconds at 50,000
# routers); triage must not stand behind it, and the sync writes the same rows when it ends.
REFRESH_LOCK_WAIT_SECONDS = 5


class RegionBusy(ApiFailure):
    """A refresh gave up waiting for its region's lock: the region's sync is running."""


def sync_router(router: Router) -> Router | None:
    """Refresh one router's row from its region's API (triage); None when the API no longer lists it.

    Raises ApiFailure when the API cannot answer, and ImproperlyConfigured when the router's
    region is not configured here any more.
    """
    config = region_config(router.region.name)
    item = CloudStackClient(config, page_size=settings.CLOUDSTACK_PAGE_SIZE).listed_router(router.uuid)
    _write_routers(router.region, [item] if item is not None else [], Router.objects.filter(pk=router.pk))
    if item is None:
        return None
    return Router.objects.get(pk=router.pk)


def sync_network_routers(router: Router) -> list[Router]:
    """Refresh every router of this router's VPC (or network) from the API; the present ones, afterwards.

    After a restart with cleanup CloudStack has replaced the routers: the old rows are marked
    removed and the new ones appear at once, without waiting for the region's next sync. A
    router without a network or VPC in the inventory is refreshed alone. Raises like sync_router.
    """
    client = CloudStackClient(region_config(router.region.name), page_size=settings.CLOUDSTACK_PAGE_SIZE)
    if router.vpc is not None:
        items = client.listed_routers_of(vpcid=router.vpc.uuid)
        known = Router.objects.filter(region=router.region, vpc=router.vpc)
    elif router.network is not None:
        items = client.listed_routers_of(networkid=router.network.uuid)
        known = Router.objects.filter(region=router.region, network=router.network)
    else:
        refreshed = sync_router(router)
        return [refreshed] if refreshed is not None else []
    listed = _write_routers(router.region, items, known)
    return list(Router.objects.filter(region=router.region, uuid__any=sorted(listed)).present().order_by("name"))


def _lock_for_refresh(region: Region) -> None:
    """Take the region's lock within the running transaction, waiting REFRESH_LOCK_WAIT_SECONDS at most."""
    postgres = connection.vendor == "postgresql"
    if postgres:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{REFRESH_LOCK_WAIT_SECONDS * 1000}ms"])
    try:
        Region.objects.select_for_update().get(pk=region.pk)
    except OperationalError as exc:
        raise RegionBusy(
            f"region {region.name} is being synced (its lock is held for more than {REFRESH_LOCK_WAIT_SECONDS} s): "
            "its routers are written when that sync ends"
        ) from exc
    if postgres:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', '0', true)")


def _write_routers(region: Region, items: list[ListedItem], known: Any) -> set[str]:
    """Upsert these listRouters items and mark removed the `known` routers they do not include."""
    with transaction.atomic():
        _lock_for_refresh(region)
        now = timezone.now()

        parsed = [item.parsed() for item in items]

        def ids(model: type[Model], field: str) -> dict[str, int]:
            keys = {mapping.text(item.get(field), 64) for item in parsed} - {""}
            if not keys:
                return {}
            return dict(model._default_manager.filter(region=region, uuid__any=sorted(keys)).values_list("uuid", "pk"))

        networks = ids(Network, "guestnetworkid")
        lookups = _Lookups(
            zones=ids(Zone, "zoneid"),
            hosts=ids(Host, "hostid"),
            vpcs=ids(Vpc, "vpcid"),
            networks=networks,
            network_types=dict(
                Network.objects.filter(region=region, uuid__any=list(networks)).values_list("uuid", "network_type")
            ),
        )
        listed = identified(items, {})
        listed_uuids = {uuid for uuid, _, _ in listed} - {""}
        existing = _existing_routers(Router.objects.filter(region=region, uuid__any=sorted(listed_uuids)) | known)
        writer = _RouterWriter(region, now, lookups, existing)
        for uuid, dig, item in listed:
            writer.add(uuid, dig, item)
        writer.remove([uuid for uuid in existing if uuid not in writer.listed])
        writer.flush()
    return writer.listed


def _warnings(running: int, running_with_addresses: int) -> str:
    """What the operator should know about the answer even though it was applied."""
    if running and not running_with_addresses:
        return (
            "listRouters returned no link-local IPs or NICs: the API key is not a root admin's, so routers "
            "cannot be reached over SSH. Use a root-admin key for this region."
        )
    return ""


def sync_region(
    config: RegionConfig,
    trigger: str = SyncRun.Trigger.SCHEDULE,
    allow_mass_removal: bool = False,
    client: CloudStackClient | None = None,
) -> SyncResult:
    """Read one region from the API and apply it; failures are recorded, not raised."""
    started = time.monotonic()
    region, _ = Region.objects.get_or_create(name=config.name, defaults={"endpoint": config.endpoint})
    now = timezone.now()
    Region.objects.filter(pk=region.pk).update(
        endpoint=config.endpoint, last_sync_started=now, last_sync_status=SyncStatus.RUNNING
    )
    run = SyncRun.objects.create(region=region, trigger=trigger, started=now)
    client = client or CloudStackClient(config, page_size=settings.CLOUDSTACK_PAGE_SIZE)
    try:
        with collector_paused(), closing(client.inventory_pages(raw=True)) as pages, transaction.atomic():
            locked = Region.objects.select_for_update().get(pk=region.pk)
            # Foreign keys are checked as each statement runs, while the API is still being
            # read, rather than all at commit once it has been.
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            apply = _RegionApply(locked, timezone.now())
            for kind, items in pages:
                apply.add(kind, items)
            result = apply.finish(allow_mass_removal)
            del apply  # the read is freed while the collector is paused (see collector_paused)
    except (ApiFailure, SyncRefused) as exc:
        logger.warning("sync of region %s failed: %s", config.name, exc)
        result = _failed(region, started, str(exc))
        _finish(region, run, result)
        return result
    except Exception as exc:
        # A bug of ours: record it for the operator, then let RQ or the command show the traceback.
        _finish(region, run, _failed(region, started, f"internal error: {exc!r}"))
        raise
    result.duration_s = time.monotonic() - started
    _finish(region, run, result)
    return result


def _failed(region: Region, started: float, error: str) -> SyncResult:
    """The result of a sync that wrote nothing: the region keeps the routers it had."""
    return SyncResult(
        region=region.name,
        routers=Router.objects.present().filter(region=region).count(),
        created=0,
        updated=0,
        removed=0,
        state_changes=0,
        duration_s=time.monotonic() - started,
        status=SyncStatus.FAILED,
        error=error,
    )


def _finish(region: Region, run: SyncRun, result: SyncResult) -> None:
    now = timezone.now()
    run.status = result.status
    run.finished = now
    run.duration_s = result.duration_s
    run.routers = result.routers
    run.created = result.created
    run.updated = result.updated
    run.removed = result.removed
    run.state_changes = result.state_changes
    run.skipped = result.skipped
    run.error = result.error
    run.warnings = result.warnings
    run.save()
    fields: dict[str, Any] = {
        "last_sync_finished": now,
        "last_sync_status": result.status,
        "last_sync_error": result.error,
        "last_sync_warning": result.warnings,
    }
    if result.status == SyncStatus.OK:
        fields["last_success"] = now
    Region.objects.filter(pk=region.pk).update(**fields)
