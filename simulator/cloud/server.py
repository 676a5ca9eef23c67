"""A simulated Confluent Cloud over HTTP: the Connect API v1 and the Metrics API v2 on one loopback port.

Answers as the Confluent Cloud API reference (ccloud-api.md) documents: Basic auth with the Cloud API
key, ``{"error":{"code","message"}}`` errors on the Connect API and ``{"errors":[{"status","detail"}]}``
on the Metrics API, 429 with ``rateLimit-*`` headers (two scopes, as repeated headers) on the Metrics API
and ``X-RateLimit-*`` plus ``Retry-After`` on the Connect API. Used by the tests and by ``demo``. The
Authorization header is never logged or echoed.

    state = CloudState(clock=clock.time)
    async with CloudSimulator(state) as sim:      # or: with cloud_in_thread(state) as sim:
        ... sim.url ...
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any

from aiohttp import web

from simulator.background import run_in_thread
from simulator.cloud.query import QueryError, error_body, list_descriptors, list_resources, run_query
from simulator.cloud.state import CloudState, LoggedRequest
from simulator.connector import SimConnector
from simulator.faults import Fault, FaultKind

CONNECT_PREFIX = "/connect/v1/environments/"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_REASON = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 429: "Too Many Requests"}


def _api_of(path: str) -> str:
    return "connect" if path.startswith("/connect/") else "metrics"


def _json(status: int, obj: Any, headers: list[tuple[str, str]] | None = None) -> web.Response:
    resp = web.Response(status=status, body=json.dumps(obj).encode(), content_type="application/json")
    for k, v in headers or []:
        resp.headers.add(k, v)
    return resp


def _error(api: str, status: int, message: str, headers: list[tuple[str, str]] | None = None) -> web.Response:
    if api == "connect":
        return _json(status, {"error": {"code": status, "message": message}}, headers)
    return _json(status, error_body(status, message), headers)


async def _body(request: web.Request) -> Any:
    raw = await request.read()  # cached by aiohttp after the middleware's read
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")


def _default_message(api: str, status: int) -> str:
    if status == 500 and api == "connect":
        return "Oops, something went wrong"
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class CloudSimulator:
    def __init__(self, state: CloudState, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- lifecycle ---------------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        env = CONNECT_PREFIX + "{env}/clusters/{cluster}/connectors"
        app.router.add_get(env, self._list)
        app.router.add_get(env + "/{name}", self._info)
        app.router.add_get(env + "/{name}/status", self._status)
        app.router.add_put(env + "/{name}/pause", self._pause)
        app.router.add_put(env + "/{name}/resume", self._resume)
        app.router.add_post(env + "/{name}/restart", self._restart)
        app.router.add_post("/v2/metrics/{dataset}/query", self._query)
        app.router.add_get("/v2/metrics/{dataset}/descriptors/metrics", self._descriptors)
        app.router.add_get("/v2/metrics/{dataset}/descriptors/resources", self._resources)
        return app

    async def start(self) -> str:
        runner = web.AppRunner(self.app(), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.url = f"http://{self.host}:{runner.addresses[0][1]}"  # the real port when 0 was asked for
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> CloudSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- cross-cutting: faults, rate limit, auth, request log -------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        api = _api_of(request.path)
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
        response = await self._answer(api, request, handler, body)
        self.state.log(
            LoggedRequest(
                api=api,
                method=request.method,
                path=request.path,
                query=tuple(request.query.items()),
                body=body,
                status=response.status,
                at=self.state.clock(),
            )
        )
        return response

    async def _answer(self, api: str, request: web.Request, handler: Handler, body: Any) -> web.StreamResponse:
        fault = self.state.take_fault(api)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            return self._fault(api, fault)
        allowed, limit, _remaining, reset = self.state.rate_check(api)
        if not allowed:
            return self._too_many(api, limit, reset)
        if not self._authorized(request):
            return _error(api, 401, "Unauthorized")
        if api in self.state.forbidden:
            detail = "Forbidden" if api == "connect" else "The principal is not authorized for the requested resources"
            return _error(api, 403, detail)
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return _error(api, 404, "Not Found")
        except web.HTTPMethodNotAllowed:
            return _error(api, 405, "Method Not Allowed")

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user, self.state.api_key) and hmac.compare_digest(password, self.state.api_secret)

    def _fault(self, api: str, fault: Fault) -> web.Response:
        headers = list(fault.headers)
        if fault.kind is FaultKind.GATEWAY_PAGE:
            resp = web.Response(
                status=fault.status,
                text=f"<html><body><h1>{fault.status} {_REASON.get(fault.status, 'Bad Gateway')}</h1></body></html>",
                content_type="text/html",
            )
            for k, v in headers:
                resp.headers.add(k, v)
            return resp
        if fault.status == 429 and api == "metrics":
            # The spec documents no body for 429 on /query and /descriptors.
            resp = web.Response(status=429)
            for k, v in headers:
                resp.headers.add(k, v)
            return resp
        return _error(api, fault.status, _default_message(api, fault.status), headers)

    def _too_many(self, api: str, limit: int, reset: int) -> web.Response:
        if api == "metrics":
            resp = web.Response(status=429)
            # Two scopes, two sets of the same headers (ccloud-api.md A.0): the per-IP minute and a wider one.
            for lim, rst in ((limit, reset), (limit * 60, reset)):
                resp.headers.add("rateLimit-limit", str(lim))
                resp.headers.add("rateLimit-remaining", "0")
                resp.headers.add("rateLimit-reset", str(rst))
            return resp
        return _json(
            429,
            {"error": {"code": 429, "message": "Too Many Requests"}},
            [
                ("X-Request-Id", "sim-request"),
                ("X-RateLimit-Limit", str(limit)),
                ("X-RateLimit-Remaining", "0"),
                ("X-RateLimit-Reset", str(reset)),
                ("Retry-After", str(reset)),
            ],
        )

    # -- Connect API v1 ------------------------------------------------------------------------------------

    def _cluster(self, request: web.Request) -> tuple[str, str] | web.Response:
        env, cluster = request.match_info["env"], request.match_info["cluster"]
        with self.state.lock:
            if cluster not in self.state.environments.get(env, set()):
                return _error("connect", 404, "account not found")
        return env, cluster

    def _connector(self, request: web.Request, missing: str = "account not found") -> SimConnector | web.Response:
        where = self._cluster(request)
        if isinstance(where, web.Response):
            return where
        with self.state.lock:
            c = self.state.connectors.get((*where, request.match_info["name"]))
        if c is None:
            return _error("connect", 404, missing)
        return c

    @staticmethod
    def _status_obj(c: SimConnector) -> dict[str, Any]:
        return {
            "name": c.name,
            "connector": {"state": c.state, "worker_id": c.name, "trace": c.trace},
            "tasks": [{"id": t.id, "msg": t.trace, "state": t.state, "worker_id": c.name} for t in c.tasks],
            "type": c.type,
        }

    async def _list(self, request: web.Request) -> web.Response:
        self.state.settle()
        where = self._cluster(request)
        if isinstance(where, web.Response):
            return where
        expand = {part.strip() for v in request.query.getall("expand", []) for part in v.split(",") if part.strip()}
        unknown = expand - {"id", "info", "status"}
        if unknown:
            return _error("connect", 400, "Bad Request")
        with self.state.lock:
            conns = sorted((c for k, c in self.state.connectors.items() if k[:2] == where), key=lambda c: c.name)
            if not expand:
                return _json(200, [c.name for c in conns])
            out: dict[str, Any] = {}
            for c in conns:
                entry: dict[str, Any] = {}
                if "id" in expand:
                    entry["id"] = {"id": c.id, "id_type": "ID"}
                if "info" in expand:
                    entry["info"] = {"name": c.name, "config": dict(c.config)}
                if "status" in expand:
                    entry["status"] = self._status_obj(c)
                out[c.name] = entry
        return _json(200, out)

    async def _info(self, request: web.Request) -> web.Response:
        c = self._connector(request)
        if isinstance(c, web.Response):
            return c
        with self.state.lock:
            return _json(
                200,
                {
                    "name": c.name,
                    "config": dict(c.config),
                    "tasks": [{"connector": c.name, "task": t.id} for t in c.tasks],
                    "type": c.type,
                },
            )

    async def _status(self, request: web.Request) -> web.Response:
        self.state.settle()
        c = self._connector(request)
        if isinstance(c, web.Response):
            return c
        with self.state.lock:
            return _json(200, self._status_obj(c))

    async def _pause(self, request: web.Request) -> web.Response:
        c = self._connector(request, "resource not found")
        if isinstance(c, web.Response):
            return c
        with self.state.lock:
            c.state = "PAUSED"
            for t in c.tasks:
                t.state = "STOPPED"
        return web.Response(status=202)

    async def _resume(self, request: web.Request) -> web.Response:
        c = self._connector(request, "resource not found")
        if isinstance(c, web.Response):
            return c
        with self.state.lock:
            if c.state == "PAUSED":  # "do nothing if the connector is not paused"
                c.state = "RUNNING"
                for t in c.tasks:
                    t.state = "RUNNING"
        return web.Response(status=202)

    async def _restart(self, request: web.Request) -> web.Response:
        unsupported = self.state.restart_status
        if unsupported is not None:  # an account or region without the Preview endpoint (assumed shape)
            return _error("connect", unsupported, _default_message("connect", unsupported))
        c = self._connector(request, "resource not found")
        if isinstance(c, web.Response):
            return c
        self.state.restart(c.env, c.cluster, c.name)
        return web.Response(status=202)

    # -- Metrics API v2 ------------------------------------------------------------------------------------

    async def _query(self, request: web.Request) -> web.Response:
        try:
            result = run_query(
                self.state, request.match_info["dataset"], await _body(request), request.query.get("page_token")
            )
        except QueryError as exc:
            return _json(exc.status, error_body(exc.status, exc.detail))
        return _json(200, result)

    async def _descriptors(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            result = list_descriptors(
                self.state,
                request.match_info["dataset"],
                q.get("resource_type"),
                q.get("page_size"),
                q.get("page_token"),
            )
        except QueryError as exc:
            return _json(exc.status, error_body(exc.status, exc.detail))
        return _json(200, result)

    async def _resources(self, request: web.Request) -> web.Response:
        return _json(200, list_resources())


@contextmanager
def cloud_in_thread(state: CloudState, host: str = "127.0.0.1", port: int = 0) -> Iterator[CloudSimulator]:
    """Serve ``state`` from a background thread with its own event loop (for sync callers and ``demo``)."""
    sim = CloudSimulator(state, host, port)
    with run_in_thread(sim, "ccloud-simulator"):
        yield sim
