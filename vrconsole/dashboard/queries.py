"""Queries behind the fleet dashboard: the summary band, list filtering and sorting, filter choices.

Everything here is plain ORM over the inventory models and knows nothing about HTTP, so the
same numbers can be asserted in tests and reused by other pages. Every function answers with
a fixed number of aggregate queries whatever the fleet size: the dashboard sits on a wall and
is reloaded every thirty seconds against fleets of ten thousand routers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
    Window,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from diagnostics.matrix.base import CATEGORIES
from diagnostics.models import Finding, RouterStatus, in_category
from diagnostics.router_status import stale_before
from vrconsole.models import (
    TRANSITIONAL_STATES,
    Host,
    RedundantState,
    Region,
    Router,
    RouterQuerySet,
    RouterState,
    SyncStatus,
    Zone,
)

# The columns of the router list an operator may sort by, and what each sorts on. Anything
# else in ?sort= is ignored, so a hand-edited URL can never reach an arbitrary field.
SORT_COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("name",),
    "state": ("state",),
    "redundant": ("redundant_state",),
    "type": ("router_type",),
    "network": ("network_sort_label",),
    "account": ("account",),
    "zone": ("zone__name",),
    "host": ("host_name",),
    "hypervisor": ("hypervisor",),
    "ip": ("public_ip",),
    "version": ("template_version",),
    "health": ("health_checks_failed",),
    "changed": ("api_changed_at",),
    # Annotated by sort_routers: the status as shown (a stale verdict counts as unknown).
    "status": ("status_sort_rank",),
    # The wall's default: worst status first (critical, warning, unknown, ok), then worst state
    # (Error, stuck, in transition, unknown, stopped, Running), then by name.
    "worst": ("worst_status_order", "worst_state_order", "name"),
}
DEFAULT_SORT = "worst"

# The fields the list renders; everything else (api_data above all) stays in the database.
LIST_FIELDS = (
    "uuid",
    "name",
    "state",
    "state_since",
    "is_redundant",
    "redundant_state",
    "router_type",
    "link_local_ip",
    "guest_ip",
    "public_ip",
    "host_name",
    "hypervisor",
    "account",
    "project",
    "template_version",
    "requires_upgrade",
    "health_checks",
    "health_checks_failed",
    "api_changed_at",
    "removed_at",
    "zone__name",
    "network__name",
    "network__uuid",
    "vpc__name",
    "vpc__uuid",
    "region__name",
    # Enough of the zone and host to say why a never-collected router cannot be reached.
    "zone__uuid",
    "host__uuid",
    "host__name",
    "host__ipaddress",
    # The verdict status row (diagnostics.RouterHealth), joined rather than aggregated per row.
    "health__status",
    "health__categories",
    "health__acknowledged_findings",
    "health__status_since",
    "health__evaluated_at",
    "health__collection_status",
    "health__collection__reason",
    "health__collection__error",
    "health__collection__finished",
)


class RemovedFilter:
    """What the list does with routers the API no longer lists."""

    HIDE = ""
    INCLUDE = "include"
    ONLY = "only"


class PairFilter:
    """Values of the `redundant` filter: plain yes/no, or one of the two broken pair shapes."""

    YES = "yes"
    NO = "no"
    SPLIT_BRAIN = "split-brain"
    NO_PRIMARY = "no-primary"


@dataclass(frozen=True)
class FleetCriteria:
    """One reading of the list's query string, already validated by the filter form."""

    q: str = ""
    region: int | None = None
    zone: int | None = None
    state: str = ""
    hypervisor: str = ""
    account: str = ""
    network: str = ""
    vpc: str = ""
    redundant: str = ""
    upgrade: bool | None = None
    healthfailed: bool | None = None
    stuck: bool = False
    removed: str = RemovedFilter.HIDE
    status: str = ""
    category: str = ""
    sort: str = DEFAULT_SORT


@dataclass(frozen=True)
class RegionSyncChip:
    """How fresh one region's inventory is, as the summary band shows it."""

    name: str
    status: str
    finished: datetime | None
    last_success: datetime | None
    error: str
    warning: str
    is_stale: bool

    @property
    def failed(self) -> bool:
        return self.status == SyncStatus.FAILED

    @property
    def never_synced(self) -> bool:
        return self.status == SyncStatus.NEVER


@dataclass
class FleetSummary:
    """The numbers of the summary band; each one maps to a list filter."""

    total: int = 0
    by_state: dict[str, int] = field(default_factory=dict)
    stuck: int = 0
    requires_upgrade: int = 0
    health_failed: int = 0
    split_brain_pairs: int = 0
    no_primary_pairs: int = 0
    removed: int = 0
    regions: list[RegionSyncChip] = field(default_factory=list)
    by_status: dict[str, int] = field(default_factory=dict)
    # (category, routers with an open finding of it), most routers first.
    by_category: list[tuple[str, int]] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return self.by_state.get(RouterState.ERROR, 0)

    def state_counts(self) -> list[tuple[str, int]]:
        """States with at least one router, Error first, then by how many routers are in them."""
        return sorted(self.by_state.items(), key=lambda item: (item[0] != RouterState.ERROR, -item[1], item[0]))


def stuck_q(now: datetime | None = None) -> Q:
    """Routers in a transitional state for longer than STUCK_TRANSITION_MINUTES (Router.is_stuck in SQL)."""
    now = now or timezone.now()
    limit = now - timedelta(minutes=settings.STUCK_TRANSITION_MINUTES)
    return Q(state__in=TRANSITIONAL_STATES, state_since__lt=limit)


def redundant_groups() -> QuerySet:
    """One row per redundant network or VPC of present routers: how many members and PRIMARYs.

    A VPC's routers share the VPC; an isolated network's routers share the network. The key
    is tagged with its kind because VPC and network ids come from different tables.
    """
    return (
        Router.objects.present()
        .filter(is_redundant=True)
        .filter(Q(vpc__isnull=False) | Q(network__isnull=False))
        .annotate(
            group_kind=Case(
                When(vpc__isnull=False, then=Value("vpc")), default=Value("network"), output_field=CharField()
            ),
            group_id=Coalesce("vpc_id", "network_id"),
        )
        .values("group_kind", "group_id")
        .annotate(
            members=Count("id"),
            primaries=Count("id", filter=Q(redundant_state=RedundantState.PRIMARY)),
            running=Count("id", filter=Q(state=RouterState.RUNNING)),
        )
        .order_by()
    )


def split_brain_groups() -> QuerySet:
    """Redundant groups where two or more routers claim PRIMARY."""
    return redundant_groups().filter(primaries__gte=2)


def no_primary_groups() -> QuerySet:
    """Redundant groups with a running router but no PRIMARY at all.

    A group whose routers are all stopped has no PRIMARY by design; it shows up in the state
    counts instead, so it is not counted here twice.
    """
    return redundant_groups().filter(primaries=0, running__gte=1)


def _in_groups_q(groups: QuerySet) -> Q:
    vpc_ids = groups.filter(group_kind="vpc").values("group_id")
    network_ids = groups.filter(group_kind="network").values("group_id")
    return Q(is_redundant=True) & (Q(vpc_id__in=vpc_ids) | Q(vpc__isnull=True, network_id__in=network_ids))


def _region_chip(region: Region) -> RegionSyncChip:
    return RegionSyncChip(
        name=region.name,
        status=region.last_sync_status,
        finished=region.last_sync_finished,
        last_success=region.last_success,
        error=region.last_sync_error,
        warning=region.last_sync_warning,
        is_stale=region.sync_is_stale,
    )


def category_counts() -> list[tuple[str, int]]:
    """How many present routers have an open finding taking each category down, most affected first.

    A finding counts under each of its categories (dnsmasq down: dhcp and dns), a router once
    per category. On PostgreSQL, one grouped pass over the open findings' categories unnested:
    a distinct count per category as FILTER clauses cost Django 13 ms a request to build and
    compile (eighty-five lookups), more than the query itself.
    """
    open_findings = Finding.objects.open().of_present_routers()
    if connection.vendor != "postgresql":
        counts = open_findings.aggregate(
            **{
                f"category_{index}": Count("router", distinct=True, filter=in_category(name))
                for index, name in enumerate(CATEGORIES)
            }
        )
        rows = [(name, counts[f"category_{index}"] or 0) for index, name in enumerate(CATEGORIES)]
    else:
        inner, params = open_findings.values("router_id", "category", "categories").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT name, COUNT(DISTINCT f.router_id) FROM (" + inner + ") AS f"
                " CROSS JOIN LATERAL unnest(array_append(string_to_array(f.categories, ','), f.category)) AS name"
                " WHERE name = ANY(%s) GROUP BY name",
                [*params, list(CATEGORIES)],
            )
            rows = cursor.fetchall()
    return sorted(((name, n) for name, n in rows if n), key=lambda row: (-row[1], row[0]))


def status_q(status: str, now: datetime | None = None) -> Q:
    """Routers showing this status: never evaluated, or evaluated too long ago (stale), is unknown."""
    horizon = stale_before(now)
    if status == RouterStatus.UNKNOWN:
        return Q(health__isnull=True) | Q(health__status=RouterStatus.UNKNOWN) | Q(health__evaluated_at__lt=horizon)
    return Q(health__status=status, health__evaluated_at__gte=horizon)


def _status_rank(ranks: dict[str, int], unknown: int, now: datetime) -> Case:
    """A rank per shown status (stale and never evaluated are unknown), for ordering in SQL."""
    return Case(
        When(health__isnull=True, then=Value(unknown)),
        When(health__evaluated_at__lt=stale_before(now), then=Value(unknown)),
        *[When(health__status=status, then=Value(rank)) for status, rank in ranks.items()],
        default=Value(unknown),
        output_field=IntegerField(),
    )


def _state_order(now: datetime) -> Case:
    """Lower is worse: Error, stuck, in transition, unknown, stopped, Running."""
    return Case(
        When(state=RouterState.ERROR, then=Value(0)),
        When(stuck_q(now), then=Value(1)),
        When(state__in=TRANSITIONAL_STATES, then=Value(2)),
        When(state__in=["", RouterState.UNKNOWN], then=Value(3)),
        When(state=RouterState.RUNNING, then=Value(5)),
        default=Value(4),
        output_field=IntegerField(),
    )


SUMMARY_CACHE_KEY = "vrconsole:fleet-summary:with-time"


def pair_counts() -> dict[str, int]:
    """Split-brain and no-PRIMARY redundant groups, counted in one pass over the groups."""
    return redundant_groups().aggregate(
        split_brain=Count("group_id", filter=Q(primaries__gte=2)),
        no_primary=Count("group_id", filter=Q(primaries=0, running__gte=1)),
    )


def fleet_summary() -> FleetSummary:
    """The summary band in four queries: one pass over the routers, the pairs, categories, regions.

    The router pass groups by state and presence and counts every flag with FILTER clauses,
    so the whole fleet is read once (from the covering router_summary index where the
    planner can), and the per-state rows are added up here.
    """
    now = timezone.now()
    present = Q(removed_at__isnull=True)
    rows = (
        Router.objects.values("state", is_present=ExpressionWrapper(present, output_field=BooleanField()))
        .annotate(
            n=Count("id"),
            stuck=Count("id", filter=stuck_q(now)),
            requires_upgrade=Count("id", filter=Q(requires_upgrade=True)),
            health_failed=Count("id", filter=Q(health_checks_failed=True)),
            **{f"status_{status}": Count("id", filter=status_q(status, now)) for status in RouterStatus.values},
        )
        .order_by()
    )
    summary = FleetSummary(by_status=dict.fromkeys(RouterStatus.values, 0))
    for row in rows:
        if not row["is_present"]:
            summary.removed += row["n"]
            continue
        state = row["state"] or RouterState.UNKNOWN
        summary.by_state[state] = summary.by_state.get(state, 0) + row["n"]
        summary.total += row["n"]
        summary.stuck += row["stuck"]
        summary.requires_upgrade += row["requires_upgrade"]
        summary.health_failed += row["health_failed"]
        for status in RouterStatus.values:
            summary.by_status[status] += row[f"status_{status}"]
    pairs = pair_counts()
    summary.split_brain_pairs = pairs["split_brain"]
    summary.no_primary_pairs = pairs["no_primary"]
    summary.regions = [_region_chip(region) for region in Region.objects.all()]
    summary.by_category = category_counts()
    return summary


def cached_fleet_summary(fresh_within: float | None = None) -> FleetSummary:
    """fleet_summary(), shared for FLEET_SUMMARY_CACHE_SECONDS by every screen of this process.

    `fresh_within` (seconds) asks for one computed at most that long ago: a live page that
    heard of a change must not be shown the numbers from before it.
    """
    ttl = settings.FLEET_SUMMARY_CACHE_SECONDS
    if not ttl:
        return fleet_summary()
    cached = cache.get(SUMMARY_CACHE_KEY)
    now = time.monotonic()
    if cached is not None and (fresh_within is None or now - cached[1] <= fresh_within):
        return cached[0]
    summary = fleet_summary()
    cache.set(SUMMARY_CACHE_KEY, (summary, now), ttl)
    return summary


def _name_or_uuid_q(relation: str, value: str) -> Q:
    return Q(**{f"{relation}__uuid": value}) | Q(**{f"{relation}__name__iexact": value})


def filter_routers(criteria: FleetCriteria, routers: RouterQuerySet | None = None) -> RouterQuerySet:
    """The routers matching every filter of the list, in the requested order."""
    routers = routers if routers is not None else Router.objects.all()
    if criteria.removed == RemovedFilter.HIDE:
        routers = routers.filter(removed_at__isnull=True)
    elif criteria.removed == RemovedFilter.ONLY:
        routers = routers.filter(removed_at__isnull=False)
    if criteria.q:
        routers = routers.search(criteria.q)
    if criteria.region is not None:
        routers = routers.filter(region_id=criteria.region)
    if criteria.zone is not None:
        routers = routers.filter(zone_id=criteria.zone)
    if criteria.state:
        routers = routers.filter(state=criteria.state)
    if criteria.hypervisor:
        routers = routers.filter(hypervisor__iexact=criteria.hypervisor)
    if criteria.account:
        routers = routers.filter(account__iexact=criteria.account)
    if criteria.network:
        routers = routers.filter(_name_or_uuid_q("network", criteria.network))
    if criteria.vpc:
        routers = routers.filter(_name_or_uuid_q("vpc", criteria.vpc))
    if criteria.redundant == PairFilter.YES:
        routers = routers.filter(is_redundant=True)
    elif criteria.redundant == PairFilter.NO:
        routers = routers.filter(is_redundant=False)
    elif criteria.redundant == PairFilter.SPLIT_BRAIN:
        routers = routers.filter(_in_groups_q(split_brain_groups()))
    elif criteria.redundant == PairFilter.NO_PRIMARY:
        routers = routers.filter(_in_groups_q(no_primary_groups()))
    if criteria.upgrade is not None:
        routers = routers.filter(requires_upgrade=criteria.upgrade)
    if criteria.healthfailed is not None:
        routers = routers.filter(health_checks_failed=criteria.healthfailed)
    if criteria.stuck:
        routers = routers.filter(stuck_q())
    if criteria.status:
        routers = routers.filter(status_q(criteria.status))
    if criteria.category:
        # A router matches when any open finding takes the category down, as primary or further one.
        open_of_category = Finding.objects.open().filter(in_category(criteria.category), router=OuterRef("pk"))
        routers = routers.filter(Exists(open_of_category))
    return sort_routers(routers, criteria.sort)


def sort_routers(routers: RouterQuerySet, sort: str) -> RouterQuerySet:
    """Order by a whitelisted column ("name", "-state"...); the primary key keeps pages stable."""
    sort = normalise_sort(sort)
    descending = sort.startswith("-")
    column = sort.removeprefix("-")
    now = timezone.now()
    if column == "network":
        routers = routers.annotate(network_sort_label=Coalesce(F("vpc__name"), F("network__name")))
    elif column == "status":
        ranks: dict[str, int] = {RouterStatus.CRITICAL: 3, RouterStatus.WARNING: 2, RouterStatus.OK: 1}
        routers = routers.annotate(status_sort_rank=_status_rank(ranks, 0, now))
    elif column == "worst":
        order: dict[str, int] = {RouterStatus.CRITICAL: 0, RouterStatus.WARNING: 1, RouterStatus.OK: 3}
        routers = routers.annotate(worst_status_order=_status_rank(order, 2, now), worst_state_order=_state_order(now))
    ordering = [
        F(name).desc(nulls_last=True) if descending else F(name).asc(nulls_last=True) for name in SORT_COLUMNS[column]
    ]
    return routers.order_by(*ordering, "-pk" if descending else "pk")


def normalise_sort(sort: str) -> str:
    """The sort actually applied for a requested one, so the page can mark its column."""
    column = sort.removeprefix("-")
    return sort if column in SORT_COLUMNS else DEFAULT_SORT


def for_list(routers: RouterQuerySet) -> RouterQuerySet:
    """Load only what a list row shows, with its relations, in the same query."""
    return routers.select_related("zone", "network", "vpc", "region", "host", "health", "health__collection").only(
        *LIST_FIELDS
    )


def list_page(routers: RouterQuerySet, per_page: int, number: Any, count_with_ids: bool = False) -> Page:
    """One page of a filtered, sorted router list: the page's ids first, then their rows.

    Sorting needs only the routers' sort columns (and what the filters join); the rows, with
    their zone, network, VPC, host and health, are read for the page's routers alone. Joining
    all that for every router of the fleet before taking a page cost most of the list's time
    at 10,000 routers. A router gone between the two reads is left out of the page.

    `count_with_ids` counts the matches in the same pass as the page's ids (a window count)
    instead of a query of its own: for a search, whose filter is the expensive part, that is
    one evaluation of it instead of two; without one, the count comes from an index and a
    separate query is cheaper than sorting every router for the window.
    """
    paginator = Paginator(routers.values_list("pk", flat=True), per_page)
    known = None
    if count_with_ids:
        paginator.count, known = _count_and_page_ids(routers, per_page, number)
    page = paginator.get_page(number)
    ids = known[1] if known is not None and known[0] == page.number else list(page.object_list)
    rows = {router.pk: router for router in for_list(Router.objects.filter(pk__any=ids))} if ids else {}
    page.object_list = [rows[pk] for pk in ids if pk in rows]  # type: ignore[misc]  # ids, then their rows
    return page


def _count_and_page_ids(
    routers: RouterQuerySet, per_page: int, number: Any
) -> tuple[int, tuple[int, list[int]] | None]:
    """The number of matches and (page number, ids) of the requested page, read in one query.

    A page past the end (or not a number) holds no ids to count with: then the count is a
    query of its own, as Paginator would make it, and the page's ids are read once it has
    chosen the page.
    """
    try:
        wanted = max(int(number), 1)
    except (TypeError, ValueError):
        wanted = 1
    start = (wanted - 1) * per_page
    rows = list(routers.annotate(matches=Window(Count("pk"))).values_list("pk", "matches")[start : start + per_page])
    if not rows:
        return routers.count(), None
    return int(rows[0][1]), (wanted, [pk for pk, _ in rows])


def zone_choices() -> list[tuple[int, str]]:
    """Zones for the filter, from the Zone table (a handful of rows, not a scan of routers)."""
    zones = list(Zone.objects.filter(removed_at__isnull=True).select_related("region").only("name", "region__name"))
    several_regions = len({zone.region_id for zone in zones}) > 1
    return [(zone.pk, f"{zone.name} ({zone.region.name})" if several_regions else zone.name) for zone in zones]


def region_choices() -> list[tuple[int, str]]:
    return list(Region.objects.values_list("pk", "name"))


def hypervisor_choices() -> list[str]:
    """Hypervisor names from the hosts: tens of rows, where a distinct over routers would scan them all."""
    names = Host.objects.exclude(hypervisor="").order_by().values_list("hypervisor", flat=True).distinct()
    return sorted(set(names), key=str.lower)


def region_sync_state() -> dict[str, Any]:
    """The `state` message of the fleet socket: each region's last sync, as JSON-ready values."""
    regions = Region.objects.order_by("name").values(
        "name", "last_sync_status", "last_sync_finished", "last_success", "last_sync_error"
    )
    return {
        "type": "state",
        "regions": [
            {
                "region": region["name"],
                "status": region["last_sync_status"],
                "finished": _iso(region["last_sync_finished"]),
                "last_success": _iso(region["last_success"]),
                "error": region["last_sync_error"],
            }
            for region in regions
        ],
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
