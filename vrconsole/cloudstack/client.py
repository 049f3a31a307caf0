"""The console's CloudStack API client: the `cs` library plus the real API's traps.

`cs` signs requests, pages with `fetch_list` and polls async jobs; this module adds what a
fleet inventory needs on top of it: root-admin listing of every account's routers
(`listall=true`) and of project routers (`projectid=-1`, which a plain listall omits), health
check results (`fetchhealthcheckresults=true`), and one error type, `ApiFailure`, whose
message an operator can act on and which never carries a key, secret or signature.
"""

from __future__ import annotations

import gc
import queue
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import requests
from cs import CloudStack, CloudStackApiException, CloudStackException

from vrconsole.cloudstack.regions import RegionConfig

# listEvents and its resourceid/resourcetype filter exist from 4.17.0 (ListEventsCmd, since="4.17.0");
# an older server ignores unknown parameters, so it must be asked by keyword instead.
EVENTS_BY_RESOURCE_SINCE = (4, 17)
# queryAsyncJobResult's jobstatus: the ordinal of JobInfo.Status (CLOUDSTACK.md §1.5).
JOB_PENDING, JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELLED = 0, 1, 2, 3

# Query strings carry apiKey and signature: never let them into an error text.
_QUERY = re.compile(r"\?[^\s'\")]*")


def _scrub(text: str) -> str:
    return _QUERY.sub("?…", text)


class ApiFailure(Exception):
    """A CloudStack call failed in a way the operator needs to see (not a bug of ours)."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass
class Inventory:
    """Everything one sync reads from a region, as the API returned it."""

    zones: list[dict[str, Any]]
    hosts: list[dict[str, Any]]
    vpcs: list[dict[str, Any]]
    networks: list[dict[str, Any]]
    routers: list[dict[str, Any]]
    templates: list[dict[str, Any]]

    @classmethod
    def from_pages(cls, pages: Iterator[tuple[str, list[dict[str, Any]]]]) -> Inventory:
        """The inventory made of (kind, items) pages as CloudStackClient.inventory_pages gives them."""
        inventory = cls(zones=[], hosts=[], vpcs=[], networks=[], routers=[], templates=[])
        for kind, items in pages:
            getattr(inventory, kind).extend(items)
        return inventory


class _CollectorPause:
    """Counts the holders of collector_paused(): the first pauses the collector, the last resumes it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.holders = 0
        self.was_enabled = False

    def enter(self) -> None:
        with self.lock:
            if self.holders == 0:
                self.was_enabled = gc.isenabled()
                gc.disable()
            self.holders += 1

    def leave(self) -> None:
        with self.lock:
            self.holders -= 1
            if self.holders == 0 and self.was_enabled:
                gc.enable()


_collector_pause = _CollectorPause()


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a region's whole inventory is held.

    A 10,000-router read is millions of parsed JSON objects, none of them in a reference
    cycle (reference counting frees them all), yet each full collection walks every one of
    them: a third of a second each, several times per read. The collector runs again once
    the last concurrent holder (regions sync in threads) leaves; drop the inventory inside
    the block, or the first collection after it pays for it.
    """
    _collector_pause.enter()
    try:
        yield
    finally:
        _collector_pause.leave()


# The list commands of an inventory read, in order: (Inventory field, command, parameters,
# also every project's items). Project-owned items need projectid=-1, which a plain listall omits.
# Each comes after what it refers to (zones carry their system templates), so a consumer can
# write a kind as soon as it is complete.
INVENTORY_READS: tuple[tuple[str, str, dict[str, Any], bool], ...] = (
    ("templates", "listTemplates", {"templatefilter": "system"}, False),
    ("zones", "listZones", {}, False),
    ("hosts", "listHosts", {"type": "Routing"}, False),
    ("vpcs", "listVPCs", {"listall": True}, True),
    ("networks", "listNetworks", {"listall": True}, True),
    ("routers", "listRouters", {"listall": True, "fetchhealthcheckresults": True}, True),
)
_END = object()


class InventoryPages:
    """A region's inventory pages, (Inventory field, items), read ahead by a thread started at once.

    While the consumer works on one page (the sync digests and writes it), the next is already
    on its way: the management server's time building pages and ours handling them overlap
    instead of adding up. An API failure is raised in the consumer; close() stops the reader
    at its next page. Pages wait in memory, which costs nothing extra: a consumer keeps the
    whole inventory anyway.
    """

    def __init__(self, client: CloudStackClient) -> None:
        self._pages: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._done = False
        reader = threading.Thread(
            target=self._read, args=(client,), name=f"inventory-{client.region.name}", daemon=True
        )
        reader.start()

    def _read(self, client: CloudStackClient) -> None:
        try:
            for page in client.inventory_pages_in_order(self._stop):
                self._pages.put(page)
            self._pages.put(_END)
        except BaseException as exc:  # handed to the consumer, which raises it
            self._pages.put(exc)

    def __iter__(self) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        return self

    def __next__(self) -> tuple[str, list[dict[str, Any]]]:
        if self._done:
            raise StopIteration
        page = self._pages.get()
        if page is _END:
            self._done = True
            raise StopIteration
        if isinstance(page, BaseException):
            self._done = True
            raise page
        return page

    def close(self) -> None:
        self._stop.set()
        self._done = True


def version_tuple(version: str) -> tuple[int, ...]:
    """'4.20.1.0' -> (4, 20, 1, 0); anything non-numeric ends the tuple (an unknown version is ())."""
    parts: list[int] = []
    for piece in str(version).strip().split("."):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


def event_date(moment: datetime) -> str:
    """A listEvents startdate/enddate: "yyyy-MM-dd HH:mm:ss" (ListEventsCmd), in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def job_date(moment: datetime) -> str:
    """A listAsyncJobs startdate: "yyyy-MM-dd'T'HH:mm:ss+0000" (ListAsyncJobsCmd), in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def api_date(text: Any) -> datetime | None:
    """A date the API wrote (yyyy-MM-dd'T'HH:mm:ssZ, §1.2); None for anything else."""
    if not isinstance(text, str):
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            return datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
    return None


def _describe_api_error(exc: CloudStackApiException, command: str) -> ApiFailure:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    error = exc.error if isinstance(exc.error, dict) else {}
    text = str(error.get("errortext") or "").strip()[:500]
    code = error.get("errorcode") or status
    if code == 401 or status == 401:
        return ApiFailure(
            f"authentication refused (HTTP 401) on {command}: {text or 'unable to verify user credentials'} — "
            "check the API key and secret key of this region and that the user is enabled",
            401,
        )
    if code == 431 or status == 431:
        return ApiFailure(f"CloudStack rejected a parameter (HTTP 431) on {command}: {text}", 431)
    if isinstance(code, int) and code >= 530 or (status or 0) >= 500:
        return ApiFailure(f"CloudStack internal error (HTTP {code}) on {command}: {text or 'no error text'}", status)
    return ApiFailure(f"CloudStack error (HTTP {code}) on {command}: {text or 'no error text'}", status)


@contextmanager
def _translated_errors(command: str, endpoint: str, timeout: int) -> Iterator[None]:
    try:
        yield
    except CloudStackApiException as exc:
        raise _describe_api_error(exc, command) from None
    except CloudStackException as exc:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        detail = _scrub(" ".join(str(a) for a in exc.args))[:500]
        if "Malformed JSON" in detail or "single top-level key" in detail:
            raise ApiFailure(f"malformed response from CloudStack on {command}: {detail}", status) from None
        raise ApiFailure(f"unexpected response from CloudStack on {command}: {detail}", status) from None
    except requests.Timeout:
        raise ApiFailure(f"timed out after {timeout} s waiting for {endpoint} ({command})") from None
    except requests.ConnectionError as exc:
        raise ApiFailure(f"cannot connect to {endpoint} ({command}): {_scrub(str(exc))[:300]}") from None
    except requests.RequestException as exc:
        raise ApiFailure(f"HTTP request to {endpoint} failed ({command}): {_scrub(str(exc))[:300]}") from None
    except ValueError as exc:
        raise ApiFailure(f"malformed response from CloudStack on {command}: {_scrub(str(exc))[:300]}") from None


def _parsed_by_orjson(response: requests.Response) -> Any:
    """A `json` method for the response: orjson's parse, requests' (stdlib json) for what orjson refuses.

    One difference is left: orjson reads an integer beyond 64 bits as the nearest float where
    json keeps it exact. The API's ids are strings and its counters 64-bit, so only a broken
    answer has such a number, and the item is still stored and shown.
    """
    parse_as_requests_does = response.json

    def json(**kwargs: Any) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            # Not UTF-8, NaN or Infinity, or not JSON at all: requests' parser accepts the
            # first two and raises the error cs reports for the last.
            return parse_as_requests_does(**kwargs)

    return json


# requests reads a body in 10 KiB pieces, taking the interpreter lock back for each: a 2.5 MB
# listRouters page is 250 of them, each one waiting its turn while the sync works on the
# previous page. Read in pieces of a mebibyte, a page comes in a handful (a sync 10% faster).
BODY_CHUNK_BYTES = 1 << 20


def _read_body_in_large_chunks(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
    """A response hook: read the whole body now, in BODY_CHUNK_BYTES pieces (what `content` would do in 10 KiB)."""
    if response._content is False and response.raw is not None and response.status_code != 0:
        response._content = b"".join(response.iter_content(BODY_CHUNK_BYTES)) or b""
        response._content_consumed = True
    return response


class _CloudStack(CloudStack):
    """cs's client with its answers read in large pieces and parsed by orjson.

    A sync parses tens of megabytes of listRouters pages (5 KB per router): orjson does it
    faster than the standard library, on the same thread that reads the next page.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session.hooks["response"].append(_read_body_in_large_chunks)

    def _send(self, kind: str, params: dict[str, Any], headers: dict[str, str], timeout: Any) -> requests.Response:
        response = super()._send(kind, params, headers, timeout)
        response.json = _parsed_by_orjson(response)
        return response


class CloudStackClient:
    """A root-admin view of one region."""

    def __init__(self, region: RegionConfig, page_size: int = 500) -> None:
        self.region = region
        self.page_size = page_size
        self._api = _CloudStack(
            endpoint=region.endpoint,
            key=region.key,
            secret=region.secret,
            timeout=region.timeout,
            # POST: the apiKey and signature travel in the body, never in a URL that the
            # management server's and any proxy's access logs keep.
            method="post",
            verify=region.verify_tls,
            dangerous_no_tls_verify=not region.verify_tls,
            name=region.name,
        )

    def list_all(self, command: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a list command, all pages; `{}` (the empty list) gives []."""
        with _translated_errors(command, self.region.endpoint, self.region.timeout):
            items = getattr(self._api, command)(fetch_list=True, pagesize=self.page_size, **params)
        if not isinstance(items, list):
            raise ApiFailure(f"malformed response from CloudStack on {command}: expected a list")
        return [item for item in items if isinstance(item, dict)]

    def call(self, command: str, **params: Any) -> dict[str, Any]:
        """One non-list command; the unwrapped response object."""
        with _translated_errors(command, self.region.endpoint, self.region.timeout):
            data = getattr(self._api, command)(**params)
        if not isinstance(data, dict):
            raise ApiFailure(f"malformed response from CloudStack on {command}: expected an object")
        return data

    def _accounts_and_projects(self, command: str, **params: Any) -> list[dict[str, Any]]:
        """Items of every account (listall) and of every project (projectid=-1), de-duplicated."""
        items = self.list_all(command, listall=True, **params)
        seen = {item.get("id") for item in items}
        for item in self.list_all(command, listall=True, projectid=-1, **params):
            if item.get("id") not in seen:
                seen.add(item.get("id"))
                items.append(item)
        return items

    def pages(self, command: str, **params: Any) -> Iterator[list[dict[str, Any]]]:
        """The items of a list command, one page at a time (page/pagesize, CLOUDSTACK.md §1.4).

        Stops at an empty page (`{}`), once `count` items were read, or, when the answer has
        no count, at a page shorter than the page size.
        """
        page, read = 1, 0
        while True:
            with _translated_errors(command, self.region.endpoint, self.region.timeout):
                data = getattr(self._api, command)(page=page, pagesize=self.page_size, **params)
            if not isinstance(data, dict):
                raise ApiFailure(f"malformed response from CloudStack on {command}: expected an object")
            keys = [key for key in data if key != "count"]
            if not keys:
                return
            items = data[keys[0]]
            if len(keys) != 1 or not isinstance(items, list):
                raise ApiFailure(f"malformed response from CloudStack on {command}: expected one list")
            yield [item for item in items if isinstance(item, dict)]
            read += len(items)
            count = data.get("count")
            if not items or (read >= count if type(count) is int else len(items) < self.page_size):
                return
            page += 1

    def inventory_pages_in_order(self, stop: threading.Event) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """Every page of the inventory as (Inventory field, items), in INVENTORY_READS order, until `stop`."""
        for kind, command, params, with_projects in INVENTORY_READS:
            seen: set[Any] = set()
            for extra in ({}, {"projectid": -1}) if with_projects else ({},):
                for items in self.pages(command, **params, **extra):
                    if stop.is_set():
                        return
                    if extra:  # the project pass: drop what the account pass already gave
                        items = [item for item in items if item.get("id") not in seen]
                    elif with_projects:
                        seen.update(item.get("id") for item in items)
                    yield kind, items

    def inventory_pages(self) -> InventoryPages:
        """The region's inventory pages, read ahead in a thread from now on (see InventoryPages)."""
        return InventoryPages(self)

    def fetch_inventory(self) -> Inventory:
        """Zones, hosts, VPCs, networks, routers and system templates of the whole region."""
        return Inventory.from_pages(self.inventory_pages())

    def fetch_router(self, uuid: str) -> dict[str, Any] | None:
        """One router by id, whichever account or project owns it; None when the API has none."""
        return self.fetch_owned("listRouters", id=uuid, fetchhealthcheckresults=True)

    def fetch_owned(self, command: str, **params: Any) -> dict[str, Any] | None:
        """The first item of an account-owned list (routers, networks, VPCs), whichever account or project owns it."""
        for extra in ({}, {"projectid": -1}):
            items = self.list_all(command, listall=True, **params, **extra)
            if items:
                return items[0]
        return None

    def routers_of(self, *, networkid: str = "", vpcid: str = "") -> list[dict[str, Any]]:
        """Every router of a network or of a VPC (all accounts and projects), health checks included."""
        params: dict[str, Any] = {"networkid": networkid} if networkid else {"vpcid": vpcid}
        return self._accounts_and_projects("listRouters", fetchhealthcheckresults=True, **params)

    def cloudstack_version(self) -> str:
        """The management server's version (listCapabilities cloudstackversion), "" when it does not say."""
        data = self.call("listCapabilities")
        capability = data.get("capability")
        version = capability.get("cloudstackversion") if isinstance(capability, dict) else None
        return str(version) if isinstance(version, str) else ""

    def router_events(self, uuid: str, name: str, since: datetime, version: str) -> list[dict[str, Any]]:
        """The router's events since a moment: by resource id from 4.17, by keyword (its name) before."""
        params: dict[str, Any] = {"listall": True, "startdate": event_date(since)}
        if version_tuple(version) >= EVENTS_BY_RESOURCE_SINCE:
            params.update(resourceid=uuid, resourcetype="DomainRouter")
        else:
            params["keyword"] = name
        return self.list_all("listEvents", **params)

    def async_jobs_since(self, since: datetime) -> list[dict[str, Any]]:
        """Every account's async jobs created since a moment (listAsyncJobs has no per-resource filter)."""
        return self.list_all("listAsyncJobs", listall=True, startdate=job_date(since))

    def query_job(self, jobid: str) -> dict[str, Any]:
        """One async job's status (queryAsyncJobResult): jobstatus 0 pending, 1 succeeded, 2 failed."""
        return self.call("queryAsyncJobResult", jobid=jobid)

    def submit(self, command: str, **params: Any) -> str:
        """Start an async command; the job id CloudStack answered with."""
        data = self.call(command, **params)
        jobid = data.get("jobid")
        if not isinstance(jobid, str) or not jobid:
            raise ApiFailure(f"malformed response from CloudStack on {command}: no job id in the answer")
        return jobid
