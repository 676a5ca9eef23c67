"""HTTP listeners for a simulated Connect cluster: one aiohttp server per worker, all sharing one SimCluster.

Besides answering like a real worker (``simulator.connect.rest``), each worker can be told to misbehave
(``Fault``) so that tests can prove the exporter survives timeouts, refused connections, broken bodies and
proxies in the way. ``connect_in_thread`` runs everything on its own event loop for synchronous tests and for
tests that run the exporter as a subprocess.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Self

from aiohttp import web

from simulator.background import LoopThread, run_in_thread
from simulator.connect import rest
from simulator.connect.state import MSG_STALE_CONFIG, SimCluster
from simulator.faults import Fault, FaultKind

# JaasBasicAuthFilter's 401: the bare text (not JSON, not an ErrorMessage) labelled application/json, and no
# WWW-Authenticate header. Same on real 3.9.2 and 4.3.1 workers.
UNAUTHORIZED_BODY = "User cannot access the resource."


def _unauthorized() -> web.Response:
    return web.Response(status=401, body=UNAUTHORIZED_BODY.encode(), headers={"Content-Type": rest.JSON_TYPE})


# What a worker says with a status fault when the test names no message.
_DEFAULT_MESSAGES = {
    409: MSG_STALE_CONFIG,
    500: "Request timed out",
    502: "HTTP 502 Bad Gateway",
    503: "HTTP 503 Service Unavailable",
}


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    worker: int
    method: str
    path: str  # raw (percent-encoded) path
    query: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]


@dataclass(slots=True)
class _Listener:
    index: int
    port: int = 0
    runner: web.AppRunner | None = None
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    fault: Fault | None = None
    remaining: int | None = None


class SimConnectServer:
    """One HTTP listener per worker of ``cluster``, on ``host`` with free ports (or ``ports``).

    ``credentials``: user -> password for basic auth like BasicAuthSecurityRestExtension (an empty mapping
    permits everyone, like an empty credentials file); None disables auth. ``latency`` delays every answer.
    All methods must run on the server's event loop; from another thread use ``connect_in_thread``.
    """

    def __init__(
        self,
        cluster: SimCluster,
        host: str = "127.0.0.1",
        *,
        ports: Sequence[int] | None = None,
        credentials: Mapping[str, str] | None = None,
        latency: float = 0.0,
    ) -> None:
        self.cluster = cluster
        self.host = host
        self.credentials = dict(credentials) if credentials is not None else None
        self.latency = latency
        n = len(cluster.workers)
        if ports is not None and len(ports) != n:
            raise ValueError(f"{n} workers need {n} ports")
        self._listeners = [_Listener(i, ports[i] if ports else 0) for i in range(n)]
        self.requests: list[RecordedRequest] = []
        self._started = False

    # -- lifecycle ------------------------------------------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        return [f"http://{self.host}:{li.port}" for li in self._listeners]

    def url(self, worker: int) -> str:
        return self.urls[worker]

    async def start(self) -> list[str]:
        for li in self._listeners:
            await self._open(li)
        self._started = True
        return self.urls

    async def stop(self) -> None:
        await asyncio.gather(*(self._close(li) for li in self._listeners))
        self._started = False

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _open(self, li: _Listener) -> None:
        if li.runner is not None:
            return
        app = web.Application(client_max_size=16 * 1024 * 1024)

        async def handler(request: web.Request) -> web.StreamResponse:
            return await self._handle(li, request)

        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, li.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        li.port = int(runner.addresses[0][1])  # the real port when 0 was asked for
        li.closing = asyncio.Event()
        li.runner = runner
        self.cluster.set_worker_id(li.index, f"{self.host}:{li.port}")

    async def _close(self, li: _Listener) -> None:
        if li.runner is None:
            return
        li.closing.set()  # releases HANG handlers so shutdown is quick
        runner, li.runner = li.runner, None
        await runner.cleanup()

    # -- workers and faults ---------------------------------------------------------------------------------------

    async def set_fault(self, worker: int, fault: Fault | None) -> None:
        """Make ``worker`` misbehave (None: behave). REFUSE closes its listener; clearing it reopens the port."""
        li = self._listeners[worker]
        li.fault, li.remaining = fault, (fault.times if fault is not None else None)
        if fault is not None and fault.kind is FaultKind.REFUSE:
            await self._close(li)
        elif self._started and self.cluster.workers[worker].alive:
            await self._open(li)

    async def clear_faults(self) -> None:
        for li in self._listeners:
            await self.set_fault(li.index, None)

    def fault(self, worker: int) -> Fault | None:
        return self._listeners[worker].fault

    async def stop_worker(self, worker: int) -> None:
        """Graceful shutdown: statuses go UNASSIGNED now, the next ``cluster.tick()`` reassigns them."""
        self.cluster.stop_worker(worker)
        await self._close(self._listeners[worker])

    async def kill_worker(self, worker: int) -> None:
        """Crash: the port refuses connections, statuses go stale until the next ``cluster.tick()``."""
        self.cluster.kill_worker(worker)
        await self._close(self._listeners[worker])

    async def start_worker(self, worker: int) -> None:
        """Bring a stopped or killed worker back on its old port."""
        li = self._listeners[worker]
        self.cluster.start_worker(worker)
        if li.fault is None or li.fault.kind is not FaultKind.REFUSE:
            await self._open(li)

    def clear_requests(self) -> None:
        self.requests.clear()

    # -- request handling -----------------------------------------------------------------------------------------

    def _active_fault(self, li: _Listener, path: str) -> Fault | None:
        f = li.fault
        if f is None or (f.path is not None and re.fullmatch(f.path, path) is None):
            return None
        if li.remaining is not None:
            if li.remaining <= 0:
                return None
            li.remaining -= 1
        return f

    def _authorized(self, request: web.Request) -> bool:
        if not self.credentials:  # auth off, or an empty credentials file: everyone is let in
            return True
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return bool(sep) and self.credentials.get(user) == password

    async def _handle(self, li: _Listener, request: web.Request) -> web.StreamResponse:
        raw_path = request.rel_url.raw_path
        query = tuple(request.rel_url.query.items())
        self.requests.append(RecordedRequest(li.index, request.method, raw_path, query, dict(request.headers)))
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        fault = self._active_fault(li, raw_path)
        if fault is not None:
            early = await self._early_fault(li, fault, request)
            if early is not None:
                return early
        body = await request.read()
        with self.cluster.lock:
            route, _, _ = rest.match(self.cluster, request.method, raw_path)
            if route is not None and not self._authorized(request) and not rest.is_ambiguous(raw_path):
                # JaasBasicAuthFilter runs after resource matching, so unknown routes stay 404.
                return _unauthorized()
            if fault is not None and fault.kind is FaultKind.FOREIGN_CLUSTER and request.method == "GET":
                info = self.cluster.server_info()
                if "kafka_cluster_id" in info:
                    info["kafka_cluster_id"] = fault.kafka_cluster_id
                res = rest.json_response(200, info)
            else:
                res = rest.handle(
                    self.cluster,
                    request.method,
                    raw_path,
                    query=query,
                    body=body,
                    content_type=request.headers.get("Content-Type"),
                    worker=li.index,
                )
        # Jersey's Location (201) is absolute, built from the request's base URI.
        res = replace(
            res,
            headers=tuple(
                (k, f"{request.scheme}://{request.host}{v}" if k == "Location" and v.startswith("/") else v)
                for k, v in res.headers
            ),
        )
        if fault is not None:
            return await self._late_fault(fault, request, res)
        return _to_aiohttp(res, request.method)

    async def _early_fault(self, li: _Listener, fault: Fault, request: web.Request) -> web.StreamResponse | None:
        """Faults that replace the answer; None lets the request go on (maybe to be spoiled later)."""
        kind = fault.kind
        if kind is FaultKind.HANG:
            await li.closing.wait()  # set only when this listener closes
            return web.Response(status=503)
        if fault.delay > 0:
            await asyncio.sleep(fault.delay)
        if kind is FaultKind.DELAY:
            return None
        if kind is FaultKind.STATUS:
            msg = fault.message if fault.message is not None else _DEFAULT_MESSAGES.get(fault.status)
            return _to_aiohttp(rest.error_response(fault.status, msg), request.method)
        if kind is FaultKind.UNAUTHORIZED:
            return _unauthorized()
        if kind is FaultKind.MALFORMED_JSON:
            return web.Response(
                status=200, body=b"{'version': 3.9.0, commit: undefined,", content_type="application/json"
            )
        if kind is FaultKind.WRONG_CONTENT_TYPE:
            page = "<!DOCTYPE html><html><head><title>Sign in</title></head><body><form>...</form></body></html>"
            return web.Response(status=200, text=page, content_type="text/html")
        if kind is FaultKind.HUGE_BODY:
            return await _huge(request, fault)
        return None

    async def _late_fault(self, fault: Fault, request: web.Request, res: rest.SimResponse) -> web.StreamResponse:
        """Faults that spoil the real answer."""
        if fault.kind is FaultKind.TRUNCATED_JSON and len(res.body) > 1:
            return _to_aiohttp(replace(res, body=res.body[: len(res.body) // 2]), request.method)
        if fault.kind is FaultKind.DISCONNECT and len(res.body) > 1:
            resp = web.StreamResponse(status=res.status)
            resp.content_type = res.content_type or rest.JSON_TYPE
            resp.content_length = len(res.body)
            await resp.prepare(request)
            await resp.write(res.body[: len(res.body) // 2])
            if request.transport is not None:
                request.transport.abort()
            return resp
        return _to_aiohttp(res, request.method)


class _NoContentTypeResponse(web.Response):
    """A body without Content-Type, as Jersey's routing 404/405 are sent; aiohttp would add
    application/octet-stream while preparing the headers, so it is taken out again afterwards."""

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        self.headers.pop("Content-Type", None)


def _to_aiohttp(res: rest.SimResponse, method: str) -> web.Response:
    body = None if method == "HEAD" else (res.body or None)
    cls = _NoContentTypeResponse if res.content_type is None and res.body else web.Response
    resp = cls(status=res.status, body=body)
    if res.content_type is not None:
        resp.headers["Content-Type"] = res.content_type  # exact, without aiohttp's "; charset=utf-8"
    for k, v in res.headers:
        resp.headers[k] = v
    return resp


async def _huge(request: web.Request, fault: Fault) -> web.StreamResponse:
    chunk = b'"' + b"x" * (1024 * 1024 - 3) + b'",'
    n = max(1, fault.size // len(chunk))
    resp = web.StreamResponse(status=200)
    resp.content_type = rest.JSON_TYPE
    if fault.chunked:
        resp.enable_chunked_encoding()
    else:
        resp.content_length = 1 + n * len(chunk) + 3
    await resp.prepare(request)
    try:
        await resp.write(b"[")
        for _ in range(n):
            await resp.write(chunk)
        await resp.write(b'""]')
        await resp.write_eof()
    except (ConnectionError, RuntimeError):
        pass  # the client gave up, as a careful client should
    return resp


# ---------------------------------------------------------------------------------------------------------------


class SimThread(LoopThread):
    """A SimConnectServer running on its own event loop in a background thread (``connect_in_thread``).

    ``cluster`` methods are thread-safe and may be called directly; server methods go through this handle.
    """

    def __init__(self, server: SimConnectServer, thread: LoopThread) -> None:
        super().__init__(thread.loop)
        self.server = server
        self.cluster = server.cluster

    @property
    def urls(self) -> list[str]:
        return self.server.urls

    def set_fault(self, worker: int, fault: Fault | None) -> None:
        self.call(self.server.set_fault(worker, fault))

    def clear_faults(self) -> None:
        self.call(self.server.clear_faults())

    def stop_worker(self, worker: int) -> None:
        self.call(self.server.stop_worker(worker))

    def kill_worker(self, worker: int) -> None:
        self.call(self.server.kill_worker(worker))

    def start_worker(self, worker: int) -> None:
        self.call(self.server.start_worker(worker))

    def set_latency(self, seconds: float) -> None:
        async def apply() -> None:
            self.server.latency = seconds

        self.call(apply())

    def requests(self) -> list[RecordedRequest]:
        async def snap() -> list[RecordedRequest]:
            return list(self.server.requests)

        return self.call(snap())

    def clear_requests(self) -> None:
        async def apply() -> None:
            self.server.clear_requests()

        self.call(apply())


@contextlib.contextmanager
def connect_in_thread(
    cluster: SimCluster,
    host: str = "127.0.0.1",
    *,
    ports: Sequence[int] | None = None,
    credentials: Mapping[str, str] | None = None,
    latency: float = 0.0,
) -> Iterator[SimThread]:
    """Serve ``cluster`` from a background thread; yields a handle whose ``urls`` are the workers' base URLs."""
    server = SimConnectServer(cluster, host, ports=ports, credentials=credentials, latency=latency)
    with run_in_thread(server, "sim-connect") as thread:
        yield SimThread(server, thread)
