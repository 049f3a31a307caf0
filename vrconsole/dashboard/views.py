"""Fleet dashboard views: the summary band with the router list, its live rows, one router's detail
page, the fleet trends page, and the Prometheus endpoint.

Views read the query string through the filter form, ask vrconsole.dashboard.queries for the rows and
numbers, and render. The wall screen changes in place: on a fleet event its script asks `fleet_rows`
for the rows that changed (rendered from the database by the same partial as the page) and the
summary band, never for the whole page. Login is enforced for all of them by LoginRequiredMiddleware.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.paginator import Page
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone

from diagnostics.sweep import latest_sweep_progress
from vrconsole.dashboard import queries, trends
from vrconsole.dashboard.forms import FleetFilterForm
from vrconsole.dashboard.prometheus import render_metrics
from vrconsole.dashboard.routing import fleet_socket_path
from vrconsole.models import Router, RouterNic, RouterStateChange
from vrconsole.roles import Capability, requires

# listRouters fields shown first on the detail page, in this order; the rest follow sorted.
KNOWN_API_FIELDS = (
    "id",
    "name",
    "state",
    "redundantstate",
    "isredundantrouter",
    "role",
    "zonename",
    "podname",
    "hostname",
    "hypervisor",
    "account",
    "domain",
    "project",
    "publicip",
    "guestipaddress",
    "linklocalip",
    "gateway",
    "guestnetworkname",
    "vpcname",
    "networkdomain",
    "dns1",
    "dns2",
    "templatename",
    "version",
    "scriptsversion",
    "softwareversion",
    "requiresupgrade",
    "serviceofferingname",
    "healthchecksfailed",
    "created",
)
# Arrays with a table of their own on the page; they stay in the raw JSON only.
TABLED_API_FIELDS = frozenset({"nic", "healthcheckresults"})

HISTORY_ROWS = 200
logger = logging.getLogger(__name__)

# The diagnostics app extends the router page by providing the first template: it extends
# vrconsole/router_detail.html and fills its router_actions, router_findings,
# router_collections and router_charts blocks (with its own template tags for the data).
ROUTER_DETAIL_TEMPLATES = ["diagnostics/router_detail.html", "vrconsole/router_detail.html"]


# Parameters of the live rows request that are not list filters.
LIVE_PARAMETERS = ("changed", "shown", "all", "fresh")
# A live request names at most this many routers; more is a refresh of the whole page.
MAX_LIVE_IDS = 1000


def _list_context(query: QueryDict, summary_fresh_within: float | None = None) -> dict[str, Any]:
    """What the fleet page and its live rows render from: filters, one page of rows, the summary."""
    query = query.copy()
    for name in LIVE_PARAMETERS:
        query.pop(name, None)
    form = FleetFilterForm(query)
    criteria = form.criteria()
    page = queries.list_page(
        queries.filter_routers(criteria), form.rows_per_page(), query.get("page"), count_with_ids=bool(criteria.q)
    )
    query_without_page = query.copy()
    query_without_page.pop("page", None)
    query_without_sort = query_without_page.copy()
    query_without_sort.pop("sort", None)
    return {
        "form": form,
        "criteria": criteria,
        "summary": queries.cached_fleet_summary(fresh_within=summary_fresh_within),
        # Never cached: a sweep moves every second, and this is two small queries.
        "sweep": latest_sweep_progress(),
        "stuck_minutes": settings.STUCK_TRANSITION_MINUTES,
        "page": page,
        "page_range": page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
        "query_without_page": query_without_page.urlencode(),
        "query_without_sort": query_without_sort.urlencode(),
        "is_filtered": any(key not in {"page", "per_page", "sort"} and value for key, value in query.items()),
    }


@requires(Capability.VIEW)
def fleet_page(request: HttpRequest) -> HttpResponse:
    """The wall screen: summary band, filters, and one page of the router list."""
    context = _list_context(request.GET)
    context["socket_path"] = fleet_socket_path()
    return render(request, "vrconsole/fleet.html", context)


def _ids(text: str) -> set[int]:
    """Router ids from a comma-separated parameter; anything not a number is ignored."""
    return {int(part) for part in text.split(",")[:MAX_LIVE_IDS] if part.isdigit() and len(part) < 19}


@requires(Capability.VIEW)
def fleet_rows(request: HttpRequest) -> JsonResponse:
    """The live wall's update: the page's rows in order, the HTML of those that changed, the summary band.

    `changed` names routers an event was about, `shown` those the page has; rows entering the
    page are rendered too. `all=1` re-renders every row (the fallback refresh), `fresh=1`
    takes a summary at most a second old (an event says it changed).
    """
    context = _list_context(request.GET, summary_fresh_within=1.0 if request.GET.get("fresh") else None)
    page: Page = context["page"]
    changed, shown = _ids(request.GET.get("changed", "")), _ids(request.GET.get("shown", ""))
    everything = request.GET.get("all") == "1"
    rows = {
        str(router.pk): render_to_string("vrconsole/_fleet_row.html", {**context, "router": router}, request)
        for router in page.object_list
        if everything or router.pk in changed or router.pk not in shown
    }
    return JsonResponse(
        {
            "order": [router.pk for router in page.object_list],
            "rows": rows,
            "empty": "" if page.object_list else render_to_string("vrconsole/_fleet_empty.html", context, request),
            "count": render_to_string("vrconsole/_fleet_count.html", context, request),
            "summary": render_to_string("vrconsole/_summary.html", context, request),
            "updated": timezone.now().isoformat(),
        }
    )


def _api_rows(api_data: dict) -> list[tuple[str, str]]:
    """api_data as (key, text) rows: the known fields first, then the rest alphabetically."""
    keys = [key for key in KNOWN_API_FIELDS if key in api_data]
    keys += sorted(key for key in api_data if key not in KNOWN_API_FIELDS and key not in TABLED_API_FIELDS)
    rows = []
    for key in keys:
        value = api_data[key]
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        rows.append((key, text))
    return rows


def _health_rows(router: Router) -> list[dict]:
    """Health-check results with the failed ones first, then by name."""
    checks = [check for check in router.health_checks if isinstance(check, dict)]
    return sorted(checks, key=lambda check: (check.get("success") is not False, str(check.get("checkname", ""))))


@requires(Capability.VIEW)
def router_detail(request: HttpRequest, uuid: str) -> HttpResponse:
    """Everything known about one router, addressed by its CloudStack uuid."""
    router = (
        Router.objects.with_uuid(uuid)
        .select_related("region", "zone", "host", "network", "vpc")
        .prefetch_related(Prefetch("nics", queryset=RouterNic.objects.order_by("position", "pk")))
        .first()
    )
    if router is None:
        raise Http404("No router with this uuid")
    peers = router.redundant_peers().only(
        "uuid", "name", "state", "state_since", "redundant_state", "host_name", "public_ip", "health_checks_failed"
    )
    context = {
        "router": router,
        "peers": list(peers),
        "nics": list(router.nics.all()),
        "history": list(RouterStateChange.objects.filter(router=router)[:HISTORY_ROWS]),
        "history_limit": HISTORY_ROWS,
        "health_rows": _health_rows(router),
        "api_rows": _api_rows(router.api_data if isinstance(router.api_data, dict) else {}),
        "api_json": json.dumps(router.api_data, indent=2, sort_keys=True, ensure_ascii=False),
        "ssh_command": router.ssh_command(),
        "stuck_minutes": settings.STUCK_TRANSITION_MINUTES,
    }
    return render(request, ROUTER_DETAIL_TEMPLATES, context)


@requires(Capability.VIEW)
def fleet_trends(request: HttpRequest) -> HttpResponse:
    """Where the fleet is getting worse: top-N routers per series, status and findings over time."""
    range_name = request.GET.get("range", trends.DEFAULT_RANGE)
    rank = request.GET.get("rank", trends.DEFAULT_RANK)
    if range_name not in trends.RANGES:
        range_name = trends.DEFAULT_RANGE
    if rank not in trends.RANKS:
        rank = trends.DEFAULT_RANK
    context = {
        "trends": trends.fleet_trends(range_name, rank),
        "range_name": range_name,
        "rank": rank,
        "ranges": list(trends.RANGES),
        "ranks": trends.RANKS,
        "history_interval": settings.HISTORY_INTERVAL_SECONDS,
    }
    return render(request, "vrconsole/trends.html", context)


@requires(Capability.PUBLIC)
@login_not_required
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus scrape endpoint: `Authorization: Bearer <METRICS_TOKEN>`, no session.

    Without METRICS_TOKEN the endpoint does not exist (404): there is nothing to authorise,
    and a scanner learns nothing. A missing or wrong token is 401 with a Bearer challenge;
    the comparison takes the same time whatever the token.
    """
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("METRICS_TOKEN is not set")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        logger.warning(
            "/metrics refused a request from %s: missing or wrong bearer token", request.META.get("REMOTE_ADDR")
        )
        response = HttpResponse("a valid bearer token is required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="vrconsole-metrics"'
        return response
    return HttpResponse(render_metrics(), content_type="text/plain; version=0.0.4; charset=utf-8")
