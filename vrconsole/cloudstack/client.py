"""The console's CloudStack API client: the `cs` library plus the real API's traps.

`cs` signs requests, pages with `fetch_list` and polls async jobs; this module adds what a
fleet inventory needs on top of it: root-admin listing of every account's routers
(`listall=true`) and of project routers (`projectid=-1`, which a plain listall omits), health
check results (`fetchhealthcheckresults=true`), and one error type, `ApiFailure`, whose
message an operator can act on and which never carries a key, secret or signature.
"""

from __future__ import annotations

import gc
import json
import queue
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
import requests
from cs import CloudStack, CloudStackApiException, CloudStackException

from vrconsole.cloudstack.mapping import digest_text
from vrconsole.cloudstack.regions import RegionConfig
from vrconsole.fields import dumps

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


class _Peek(msgspec.Struct):
    """The few fields of a list item read without building it (ListedItem)."""

    id: Any = None
    state: Any = None
    type: Any = None
    linklocalip: msgspec.Raw = msgspec.Raw(b"")  # empty when absent
    nic: msgspec.Raw = msgspec.Raw(b"")


_PEEK = msgspec.json.Decoder(_Peek)


class ListedItem:
    """One item of a list answer, kept as the JSON text the API wrote, parsed only when needed.

    A re-sync reads every item of every page but writes the few that changed: an unchanged
    item is recognised by the fingerprint of its text (`digest`, taken on the reader's
    thread) and never built. `text` is a slice of the page's bytes, not a copy. `id`, `state`,
    `type` and `addressed` are read out of the text without building the item (or taken from
    the parsed item once there is one). An item that came parsed (an answer only the lenient
    parser took) keeps its dict, and its text is that dict written back as JSON.
    """

    __slots__ = ("_item", "_peek", "digest", "text")

    def __init__(self, text: Any, item: dict[str, Any] | None = None) -> None:
        self.text = text
        self.digest = digest_text(text)
        self._item = item
        self._peek: _Peek | None = None

    @classmethod
    def of(cls, item: dict[str, Any]) -> ListedItem:
        """An already parsed item; its text is the console's JSON of it (as mapping.digest writes it)."""
        return cls(dumps(item).encode(), item)

    def parsed(self) -> dict[str, Any]:
        """The item as a dict (parsed on first use)."""
        if self._item is None:
            try:
                item = orjson.loads(memoryview(self.text))
            except orjson.JSONDecodeError:
                # The page's splitter checks the structure, not the encoding: bytes that are
                # not UTF-8 are replaced, as requests' lenient parse would.
                item = json.loads(bytes(self.text).decode("utf-8", errors="replace"))
            self._item = item
        return self._item

    def _peeked(self) -> _Peek:
        if self._peek is None:
            if self._item is not None:
                item = self._item
                present = msgspec.Raw(b"null")  # what matters is that the key is there
                self._peek = _Peek(
                    item.get("id"),
                    item.get("state"),
                    item.get("type"),
                    present if "linklocalip" in item else msgspec.Raw(b""),
                    present if "nic" in item else msgspec.Raw(b""),
                )
            else:
                self._peek = _PEEK.decode(self.text)
        return self._peek

    @property
    def id(self) -> Any:
        return self._peeked().id

    @property
    def state(self) -> Any:
        return self._peeked().state

    @property
    def type(self) -> Any:
        return self._peeked().type

    @property
    def addressed(self) -> bool:
        """Whether the item carries `linklocalip` or `nic` (a root admin's view of a router)."""
        peek = self._peeked()
        return bool(len(memoryview(peek.linklocalip)) or len(memoryview(peek.nic)))


_ENVELOPE = msgspec.json.Decoder(dict[str, dict[str, msgspec.Raw]])
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])


def _listed(items: list[Any]) -> list[ListedItem]:
    """The object items of a list answer as ListedItems (other values dropped, as a parsed read drops them)."""
    listed = []
    for item in items:
        if isinstance(item, msgspec.Raw):
            if memoryview(item)[:1] == b"{":
                listed.append(ListedItem(item))
        elif isinstance(item, dict):
            listed.append(ListedItem.of(item))
    return listed


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
# The kinds a raw inventory read gives as ListedItems: the many, of which a re-sync writes few.
# Zones and system templates stay parsed (a handful, and zones are written with their templates).
RAW_INVENTORY_KINDS = frozenset({"hosts", "vpcs", "networks", "routers"})
_END = object()


def _id_of(item: Any) -> Any:
    """An item's `id` as the API gave it, parsed or listed."""
    return item.id if isinstance(item, ListedItem) else item.get("id")


def _same_item_key(item: Any) -> Any:
    """What tells a project pass's item from the account pass's: the id, or for a listed item its text."""
    return item.digest if isinstance(item, ListedItem) else item.get("id")


class InventoryPages:
    """A region's inventory pages, (Inventory field, items), read ahead by a thread started at once.

    While the consumer works on one page (the sync digests and writes it), the next is already
    on its way: the management server's time building pages and ours handling them overlap
    instead of adding up. An API failure is raised in the consumer; close() stops the reader
    at its next page. Pages wait in memory, which costs nothing extra: a consumer keeps the
    whole inventory anyway.
    """

    def __init__(self, client: CloudStackClient, raw: bool = False) -> None:
        self._pages: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._done = False
        reader = threading.Thread(
            target=self._read, args=(client, raw), name=f"inventory-{client.region.name}", daemon=True
        )
        reader.start()

    def _read(self, client: CloudStackClient, raw: bool) -> None:
        try:
            for page in client.inventory_pages_in_order(self._stop, raw):
                self._pages.put(page)
            self._pages.put(_END)
        except BaseException as exc:  # handed to the consumer, which raises it
            self._pages.put(exc)

    def __iter__(self) -> Iterator[tuple[str, list[Any]]]:
        return self

    def __next__(self) -> tuple[str, list[Any]]:
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
    except RecursionError:
        # What every parser says of nesting beyond its limit (json's, msgspec's): no ValueError.
        raise ApiFailure(f"malformed response from CloudStack on {command}: nested too deeply to parse") from None


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


def _parsed_with_raw_items(response: requests.Response) -> Any:
    """A `json` method for a list answer: the envelope parsed, its lists' items left as JSON text.

    `{"listroutersresponse": {"count": 2, "router": [{...}, {...}]}}` gives the same two dicts
    but with each list a list of msgspec.Raw, slices of the body that msgspec checks for
    structure without building them. An answer of another shape (an error, a bare list) or one
    the splitter refuses is parsed whole, as _parsed_by_orjson does.
    """
    parse_whole = _parsed_by_orjson(response)

    def json(**kwargs: Any) -> Any:
        if response.status_code == 200:
            try:
                envelope = _ENVELOPE.decode(response.content)
                return {
                    name: {
                        key: _RAW_LIST.decode(value)
                        if memoryview(value)[:1] == b"["
                        else orjson.loads(memoryview(value))
                        for key, value in body.items()
                    }
                    for name, body in envelope.items()
                }
            except (msgspec.DecodeError, orjson.JSONDecodeError, RecursionError):
                pass  # RecursionError: msgspec stops at a shallower nesting than orjson
        return parse_whole(**kwargs)

    return json


class _CloudStack(CloudStack):
    """cs's client with its answers read in large pieces and parsed by orjson.

    A sync parses tens of megabytes of listRouters pages (5 KB per router): orjson does it
    faster than the standard library, on the same thread that reads the next page. A call made
    under raw_items() leaves the items of its lists as JSON text (_parsed_with_raw_items).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session.hooks["response"].append(_read_body_in_large_chunks)
        self._raw = threading.local()

    @contextmanager
    def raw_items(self, raw: bool = True) -> Iterator[None]:
        """The calls made by this thread within the block leave list items as text (when `raw`)."""
        before = getattr(self._raw, "on", False)
        self._raw.on = raw
        try:
            yield
        finally:
            self._raw.on = before

    def _send(self, kind: str, params: dict[str, Any], headers: dict[str, str], timeout: Any) -> requests.Response:
        response = super()._send(kind, params, headers, timeout)
        if getattr(self._raw, "on", False):
            response.json = _parsed_with_raw_items(response)
        else:
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
        return self._list_all(command, False, params)

    def _list_all(self, command: str, raw: bool, params: dict[str, Any]) -> list[Any]:
        """list_all's items, as ListedItems when `raw`."""
        with _translated_errors(command, self.region.endpoint, self.region.timeout), self._api.raw_items(raw):
            items = getattr(self._api, command)(fetch_list=True, pagesize=self.page_size, **params)
        if not isinstance(items, list):
            raise ApiFailure(f"malformed response from CloudStack on {command}: expected a list")
        if raw:
            with _translated_errors(command, self.region.endpoint, self.region.timeout):
                return _listed(items)  # a parsed item's text is written: it may be nested too deeply
        return [item for item in items if isinstance(item, dict)]

    def call(self, command: str, **params: Any) -> dict[str, Any]:
        """One non-list command; the unwrapped response object."""
        with _translated_errors(command, self.region.endpoint, self.region.timeout):
            data = getattr(self._api, command)(**params)
        if not isinstance(data, dict):
            raise ApiFailure(f"malformed response from CloudStack on {command}: expected an object")
        return data

    def _accounts_and_projects(self, command: str, raw: bool = False, **params: Any) -> list[Any]:
        """Items of every account (listall) and of every project (projectid=-1), de-duplicated."""
        items = self._list_all(command, raw, {"listall": True, **params})
        seen = {_id_of(item) for item in items}
        for item in self._list_all(command, raw, {"listall": True, "projectid": -1, **params}):
            key = _id_of(item)
            if key not in seen:
                seen.add(key)
                items.append(item)
        return items

    def pages(self, command: str, raw: bool = False, **params: Any) -> Iterator[list[Any]]:
        """The items of a list command, one page at a time (page/pagesize, CLOUDSTACK.md §1.4).

        Stops at an empty page (`{}`), once `count` items were read, or, when the answer has
        no count, at a page shorter than the page size. With `raw` the items are ListedItems
        (their text, parsed only when asked), otherwise dicts.
        """
        page, read = 1, 0
        while True:
            with _translated_errors(command, self.region.endpoint, self.region.timeout), self._api.raw_items(raw):
                data = getattr(self._api, command)(page=page, pagesize=self.page_size, **params)
            if not isinstance(data, dict):
                raise ApiFailure(f"malformed response from CloudStack on {command}: expected an object")
            keys = [key for key in data if key != "count"]
            if not keys:
                return
            items = data[keys[0]]
            if len(keys) != 1 or not isinstance(items, list):
                raise ApiFailure(f"malformed response from CloudStack on {command}: expected one list")
            if raw:
                with _translated_errors(command, self.region.endpoint, self.region.timeout):
                    listed = _listed(items)  # a parsed item's text is written: it may be nested too deeply
                yield listed
            else:
                yield [item for item in items if isinstance(item, dict)]
            read += len(items)
            count = data.get("count")
            if not items or (read >= count if type(count) is int else len(items) < self.page_size):
                return
            page += 1

    def inventory_pages_in_order(self, stop: threading.Event, raw: bool = False) -> Iterator[tuple[str, list[Any]]]:
        """Every page of the inventory as (Inventory field, items), in INVENTORY_READS order, until `stop`.

        With `raw`, the items of the kinds in RAW_INVENTORY_KINDS are ListedItems.
        """
        for kind, command, params, with_projects in INVENTORY_READS:
            seen: set[Any] = set()
            for extra in ({}, {"projectid": -1}) if with_projects else ({},):
                for items in self.pages(command, raw and kind in RAW_INVENTORY_KINDS, **params, **extra):
                    if stop.is_set():
                        return
                    if extra:  # the project pass: drop what the account pass already gave
                        items = [item for item in items if _same_item_key(item) not in seen]
                    elif with_projects:
                        seen.update(_same_item_key(item) for item in items)
                    yield kind, items

    def inventory_pages(self, raw: bool = False) -> InventoryPages:
        """The region's inventory pages, read ahead in a thread from now on (see InventoryPages).

        With `raw`, hosts, VPCs, networks and routers come as ListedItems: what a sync reads.
        """
        return InventoryPages(self, raw)

    def fetch_inventory(self) -> Inventory:
        """Zones, hosts, VPCs, networks, routers and system templates of the whole region."""
        return Inventory.from_pages(self.inventory_pages())

    def fetch_router(self, uuid: str) -> dict[str, Any] | None:
        """One router by id, whichever account or project owns it; None when the API has none."""
        return self.fetch_owned("listRouters", id=uuid, fetchhealthcheckresults=True)

    def listed_router(self, uuid: str) -> ListedItem | None:
        """fetch_router's item as a ListedItem (as a sync reads it)."""
        return self._owned("listRouters", True, {"id": uuid, "fetchhealthcheckresults": True})

    def fetch_owned(self, command: str, **params: Any) -> dict[str, Any] | None:
        """The first item of an account-owned list (routers, networks, VPCs), whichever account or project owns it."""
        return self._owned(command, False, params)

    def _owned(self, command: str, raw: bool, params: dict[str, Any]) -> Any:
        for extra in ({}, {"projectid": -1}):
            items = self._list_all(command, raw, {"listall": True, **params, **extra})
            if items:
                return items[0]
        return None

    def routers_of(self, *, networkid: str = "", vpcid: str = "") -> list[dict[str, Any]]:
        """Every router of a network or of a VPC (all accounts and projects), health checks included."""
        params: dict[str, Any] = {"networkid": networkid} if networkid else {"vpcid": vpcid}
        return self._accounts_and_projects("listRouters", fetchhealthcheckresults=True, **params)

    def listed_routers_of(self, *, networkid: str = "", vpcid: str = "") -> list[ListedItem]:
        """routers_of's items as ListedItems (as a sync reads them)."""
        params: dict[str, Any] = {"networkid": networkid} if networkid else {"vpcid": vpcid}
        return self._accounts_and_projects("listRouters", True, fetchhealthcheckresults=True, **params)

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
