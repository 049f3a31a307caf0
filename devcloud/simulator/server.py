"""A CloudStack API simulator: a real HTTP server the console, the demo, tests and benches talk to.

It serves `/client/api` (GET, or POST with a form body) like a management server: it verifies
request signatures the way `ApiServer.verifyRequest` does (CLOUDSTACK.md §1.1), answers in the
real JSON envelopes with the real error codes, and runs router jobs asynchronously. It can also
misbehave on request (5xx, proxy error pages, truncated JSON, hangs, 401, 431) and change its
fleet, through the `RunningSimulator` methods or a token-protected `/sim/control` endpoint,
so tests and benchmarks can see how the console copes with a sick API. Nothing here contacts
any address: hosts and routers exist only as API data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from devcloud.simulator.api_commands import (
    PARAM_ERROR,
    Caller,
    SimulatedCloud,
    error_body,
)
from devcloud.simulator.synthetic import ADMIN_OWNER, DOMAIN_ADMIN_OWNER, ApiObject

# The demo's root-admin key pair (also what tests and benches use). Not a secret: it only
# opens this simulator.
DEMO_API_KEY = "vrconsole-demo-root-admin-api-key-0000000000000000000000000000000000000000000000"
DEMO_SECRET_KEY = "vrconsole-demo-root-admin-secret-key-000000000000000000000000000000000000000000000"
# A domain admin of ROOT/Customers: listRouters answers it without host, link-local and NIC fields.
DEMO_DOMAIN_ADMIN_API_KEY = "vrconsole-demo-domain-admin-api-key-00000000000000000000000000000000000000000000"
DEMO_DOMAIN_ADMIN_SECRET_KEY = "vrconsole-demo-domain-admin-secret-key-000000000000000000000000000000000000000000"

CREDENTIALS_ERROR = "unable to verify user credentials and/or request signature"
CONTROL_TOKEN_HEADER = "X-Sim-Control-Token"
MAX_HANG_SECONDS = 120.0
# API parameters are short; a bigger body is a mistake or abuse.
MAX_BODY_BYTES = 1 << 20
FAULT_KINDS = ("error530", "bad_gateway", "unavailable", "malformed", "hang", "unauthorized", "param_error")

_PROXY_PAGES = {
    502: "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
    503: "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
    "<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
}


def java_url_encode(value: str) -> str:
    """`URLEncoder.encode(value, "UTF-8").replace("+", "%20")`: unlike Python's quote, `~` is escaped."""
    return quote(value, safe="*-._").replace("~", "%7E")


def request_signature(params: dict[str, str], secret_key: str) -> str:
    """The signature the server expects for these parameters (`signature` itself excluded)."""
    # Java Collections.sort on names: case-sensitive UTF-16 order, which Python's matches for these names.
    names = sorted(name for name in params if name != "signature")
    unsigned = "&".join(f"{name}={java_url_encode(params[name])}" for name in names)
    digest = hmac.new(secret_key.encode(), unsigned.lower().encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _parse_expires(text: str) -> datetime | None:
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def _param(params: dict[str, str], name: str) -> str | None:
    """A parameter by case-insensitive name (the servlet reads apiKey/signature that way)."""
    lowered = name.lower()
    for key, value in params.items():
        if key.lower() == lowered:
            return value
    return None


def authenticate(params: dict[str, str], callers: dict[str, Caller], now: datetime | None = None) -> Caller | None:
    """The caller when the key is known, the signature matches and the request has not expired."""
    api_key = _param(params, "apiKey")
    signature = _param(params, "signature")
    caller = callers.get(api_key or "")
    if caller is None or not signature:
        return None
    if _param(params, "signatureVersion") == "3":
        expires_text = _param(params, "expires")
        expires = _parse_expires(expires_text) if expires_text else None
        if expires is None or expires < (now or datetime.now(UTC)):
            return None
    expected = request_signature(params, caller.secret_key)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return None
    return caller


@dataclass
class Fault:
    """One requested misbehaviour: what to do, for how many more requests, and for which command."""

    kind: str
    remaining: int | None = None
    command: str | None = None
    seconds: float = 5.0

    def describe(self) -> ApiObject:
        return {"kind": self.kind, "remaining": self.remaining, "command": self.command, "seconds": self.seconds}


def default_callers() -> dict[str, Caller]:
    """The demo root admin and the demo domain admin."""
    return {
        DEMO_API_KEY: Caller(
            DEMO_API_KEY,
            DEMO_SECRET_KEY,
            ADMIN_OWNER,
            is_root_admin=True,
            userid="5a7f1b8e-0000-4000-8000-000000000002",
            accountid="5a7f1b8e-0000-4000-8000-000000000001",
        ),
        DEMO_DOMAIN_ADMIN_API_KEY: Caller(
            DEMO_DOMAIN_ADMIN_API_KEY,
            DEMO_DOMAIN_ADMIN_SECRET_KEY,
            DOMAIN_ADMIN_OWNER,
            is_root_admin=False,
            userid="5a7f1b8e-0000-4000-8000-000000000012",
            accountid="5a7f1b8e-0000-4000-8000-000000000011",
        ),
    }


class SimulatorServer(ThreadingHTTPServer):
    """The HTTP server, holding the simulated cloud, the keys, the faults and the counters."""

    daemon_threads = True
    block_on_close = False
    # Benches open many keep-alive connections at once.
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], cloud: SimulatedCloud, control_token: str | None, quiet: bool = True
    ) -> None:
        super().__init__(address, _Handler)
        self.cloud = cloud
        self.callers = default_callers()
        self.control_token = control_token
        self.quiet = quiet
        self.faults: list[Fault] = []
        self.stats: Counter[str] = Counter()
        self.fault_lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (its timeout during a simulated hang) is expected, not a server fault.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def take_fault(self, command: str) -> Fault | None:
        """The first fault that applies to this command, counted down."""
        with self.fault_lock:
            for fault in self.faults:
                if fault.command and fault.command.lower() != command.lower():
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.faults.remove(fault)
                self.stats["faults_served"] += 1
                return fault
        return None

    def add_fault(self, kind: str, count: int | None = None, command: str | None = None, seconds: float = 5.0) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {', '.join(FAULT_KINDS)}")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1 (or omitted: until cleared)")
        with self.fault_lock:
            self.faults.append(Fault(kind, count, command, min(max(float(seconds), 0.0), MAX_HANG_SECONDS)))

    def clear_faults(self) -> None:
        with self.fault_lock:
            self.faults.clear()

    def snapshot(self) -> ApiObject:
        with self.fault_lock:
            return {
                "requests": dict(self.stats),
                "faults": [f.describe() for f in self.faults],
                "routers": len(self.cloud.fleet.routers),
                "version": self.cloud.version,
            }


class _Handler(BaseHTTPRequestHandler):
    server: SimulatorServer
    protocol_version = "HTTP/1.1"
    server_version = "Apache-Coyote/1.1"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's signature
        if not self.server.quiet:
            super().log_message(format, *args)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch(b"")

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True
            self._send(413, "text/plain; charset=UTF-8", "request body missing a sane Content-Length\n")
            return
        self._dispatch(self.rfile.read(length) if length else b"")

    def _dispatch(self, body: bytes) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/client/api":
            self._api(parts.query, body)
        elif parts.path == "/sim/control":
            self._control(body)
        else:
            self._send(404, "text/plain; charset=UTF-8", "not found\n")

    def _send(self, status: int, content_type: str, text: str, truncate: bool = False) -> None:
        payload = text.encode()
        if truncate:
            payload = payload[: max(1, len(payload) * 3 // 5)]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _json(self, status: int, text: str, truncate: bool = False) -> None:
        self._send(status, "application/json; charset=UTF-8", text, truncate)

    def _api(self, query: str, body: bytes) -> None:
        params: dict[str, str] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            params.setdefault(key, value)
        if body and "x-www-form-urlencoded" in (self.headers.get("Content-Type") or "x-www-form-urlencoded"):
            for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
                params.setdefault(key, value)
        command = _param(params, "command") or ""
        server = self.server
        with server.fault_lock:
            server.stats[command or "(none)"] += 1
            server.stats["total"] += 1
            # Which HTTP method carried the call: keys and signatures in a GET's query string
            # end up in access logs, so the console must use POST.
            server.stats[f"http-{self.command}"] += 1
        if (_param(params, "response") or "").lower() != "json":
            self._json(
                PARAM_ERROR,
                error_body(
                    command, PARAM_ERROR, "Only response=json is simulated; add response=json to the request", 4350
                ),
            )
            return
        fault = server.take_fault(command)
        if fault is not None:
            if fault.kind == "hang":
                time.sleep(fault.seconds)
            elif self._misbehave(fault, command, params):
                return
        caller = authenticate(params, server.callers)
        if caller is None:
            self._json(401, error_body(command, 401, CREDENTIALS_ERROR, 9999))
            return
        if not command:
            self._json(
                PARAM_ERROR,
                error_body("", PARAM_ERROR, "Unable to execute API command due to missing parameter command", 4350),
            )
            return
        status, text = server.cloud.handle(command, params, caller)
        self._json(status, text)

    def _misbehave(self, fault: Fault, command: str, params: dict[str, str]) -> bool:
        """Answer as the fault says; False when the request should then proceed normally."""
        if fault.kind == "error530":
            self._json(
                530,
                error_body(
                    command, 530, "Internal error executing command, please contact your system administrator", 4250
                ),
            )
        elif fault.kind in ("bad_gateway", "unavailable"):
            status = 502 if fault.kind == "bad_gateway" else 503
            self._send(status, "text/html", _PROXY_PAGES[status])
        elif fault.kind == "unauthorized":
            self._json(401, error_body(command, 401, CREDENTIALS_ERROR, 9999))
        elif fault.kind == "param_error":
            self._json(
                PARAM_ERROR,
                error_body(
                    command, PARAM_ERROR, "Simulated parameter error (431) requested through /sim/control", 4350
                ),
            )
        elif fault.kind == "malformed":
            caller = authenticate(params, self.server.callers)
            if caller is None:
                text = error_body(command, 401, CREDENTIALS_ERROR, 9999)
            else:
                text = self.server.cloud.handle(command, params, caller)[1]
            self._json(200, text, truncate=True)
        else:
            return False
        return True

    def _control(self, body: bytes) -> None:
        server = self.server
        token = self.headers.get(CONTROL_TOKEN_HEADER) or ""
        if not server.control_token or not hmac.compare_digest(token.encode(), server.control_token.encode()):
            self._json(403, json.dumps({"error": f"missing or wrong {CONTROL_TOKEN_HEADER} header"}))
            return
        if self.command == "GET":
            self._json(200, json.dumps(server.snapshot()))
            return
        try:
            order = json.loads(body or b"{}")
            if not isinstance(order, dict):
                raise ValueError("the body must be a JSON object")
            answer = control(server, order)
        except (ValueError, KeyError, TypeError) as exc:
            self._json(400, json.dumps({"error": str(exc)}))
            return
        self._json(200, json.dumps(answer))


def control(server: SimulatorServer, order: ApiObject) -> ApiObject:
    """Carry out one /sim/control order (a JSON object) and return the stats, or the router changed.

    Orders: `{"action": "fail", "kind": <one of FAULT_KINDS>, "count": N?, "command": "listRouters"?,
    "seconds": S?}` (no count: until cleared), `{"action": "clear"}`, `{"action": "set_router", "id":
    <id or name>, "state"?, "redundantstate"?, "failing_checks": ["dns_check.py"]?}`, `{"action":
    "remove_router", "id": ...}`, `{"action": "add_router", "router": {...}?, "overrides": {...}?}`,
    `{"action": "break_router", "id": ..., "failure": "insufficient-capacity"?}` (a failed start puts it in
    Error, with its job, events and log lines), `{"action": "inject_failure", "command": "restartNetwork",
    "errortext": "...", "errorcode": 530?, "target": <id>?, "count": 1?, "router_state": "Error"?}`,
    `{"action": "reset"}`.
    """
    action = order.get("action")
    cloud = server.cloud
    if action == "fail":
        count = order.get("count")
        server.add_fault(
            str(order["kind"]),
            int(count) if count is not None else None,
            order.get("command"),
            float(order.get("seconds", 5.0)),
        )
    elif action == "clear":
        server.clear_faults()
    elif action == "set_router":
        router = cloud.set_router(
            str(order["id"]), order.get("state"), order.get("redundantstate"), order.get("failing_checks")
        )
        return {"router": router}
    elif action == "remove_router":
        cloud.remove_router(str(order["id"]))
    elif action == "add_router":
        return {"router": cloud.add_router(order.get("router"), **order.get("overrides", {}))}
    elif action == "break_router":
        return {"router": cloud.break_router(str(order["id"]), str(order.get("failure", "insufficient-capacity")))}
    elif action == "inject_failure":
        cloud.inject_failure(
            str(order["command"]),
            str(order["errortext"]),
            int(order.get("errorcode", 530)),
            str(order["target"]) if order.get("target") else None,
            int(order.get("count", 1)),
            str(order["router_state"]) if order.get("router_state") else None,
        )
    elif action == "reset":
        cloud.reset_fleet()
    else:
        raise ValueError(f"unknown action {action!r}")
    return server.snapshot()


def base_url_of(server: SimulatorServer) -> str:
    """http://host:port of a bound server (the port is the real one when 0 was asked for)."""
    host, port = server.server_address[:2]
    return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"


class RunningSimulator:
    """A simulator serving in a daemon thread; control it directly or through /sim/control."""

    def __init__(self, server: SimulatorServer) -> None:
        self.server = server
        self.cloud = server.cloud
        self.base_url = base_url_of(server)
        self.url = f"{self.base_url}/client/api"
        self.control_url = f"{self.base_url}/sim/control"
        self.api_key = DEMO_API_KEY
        self.secret_key = DEMO_SECRET_KEY
        self.domain_admin_api_key = DEMO_DOMAIN_ADMIN_API_KEY
        self.domain_admin_secret_key = DEMO_DOMAIN_ADMIN_SECRET_KEY
        self.control_token = server.control_token
        # A short poll keeps stop() quick: tests start and stop one simulator each.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="cloudstack-sim", daemon=True
        )
        self._thread.start()

    def fail(self, kind: str, count: int | None = None, command: str | None = None, seconds: float = 5.0) -> None:
        """Misbehave for the next `count` requests (all until cleared when None), maybe for one command."""
        self.server.add_fault(kind, count, command, seconds)

    def clear_faults(self) -> None:
        self.server.clear_faults()

    def set_router(
        self,
        id_or_name: str,
        state: str | None = None,
        redundantstate: str | None = None,
        failing_checks: list[str] | None = None,
    ) -> ApiObject:
        """Force a router's state, redundant state, or which health checks fail (e.g. ["dns_check.py"])."""
        return self.cloud.set_router(id_or_name, state, redundantstate, failing_checks)

    def remove_router(self, id_or_name: str) -> None:
        self.cloud.remove_router(id_or_name)

    def break_router(self, id_or_name: str, failure: str = "insufficient-capacity") -> ApiObject:
        """Put a router in Error by a failed start: a failed job with CloudStack's text, its events, log lines."""
        return self.cloud.break_router(id_or_name, failure)

    def inject_failure(
        self,
        command: str,
        errortext: str,
        errorcode: int = 530,
        target: str | None = None,
        count: int = 1,
        router_state: str | None = None,
    ) -> None:
        """Make the next `count` jobs of a command fail with this text (e.g. restartNetwork)."""
        self.cloud.inject_failure(command, errortext, errorcode, target, count, router_state)

    def add_router(self, router: ApiObject | None = None, **overrides: Any) -> ApiObject:
        return self.cloud.add_router(router, **overrides)

    def reset_fleet(self) -> None:
        self.cloud.reset_fleet()

    def stats(self) -> ApiObject:
        return self.server.snapshot()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def build_server(
    routers: int = 50,
    seed: int = 1,
    *,
    bind: str = "127.0.0.1",
    port: int = 0,
    version: str = "4.20.1.0",
    lab_file: str | Path | None = None,
    control_token: str | None = None,
    job_delay: float = 1.0,
    reproduce_healthchecksfailed_bug: bool = True,
    quiet: bool = True,
    prewarm: bool = True,
    management_log: str | Path | None = None,
) -> SimulatorServer:
    """A bound, not yet serving, simulator server; `management_log` is a file it writes log4j lines to."""
    cloud = SimulatedCloud(
        routers=routers,
        seed=seed,
        version=version,
        lab_file=lab_file,
        job_delay=job_delay,
        reproduce_healthchecksfailed_bug=reproduce_healthchecksfailed_bug,
        management_log=management_log,
    )
    if prewarm:
        cloud.prewarm()
    return SimulatorServer((bind, port), cloud, control_token, quiet=quiet)


def start_simulator(routers: int = 50, seed: int = 1, **options: Any) -> RunningSimulator:
    """Serve a simulator on an ephemeral loopback port in a daemon thread (tests, benches, demo)."""
    options.setdefault("control_token", secrets.token_urlsafe(24))
    options.setdefault("job_delay", 0.3)
    return RunningSimulator(build_server(routers, seed, **options))
