"""The REST surface of a simulated Connect worker: request in, response out, no I/O.

Routing follows Jersey: a path no resource matches is 404 ``HTTP 404 Not Found``; a path that matches with a
method it lacks is 405; a route that a Kafka version does not have (yet, or any more) simply does not exist (404).
Every error body is ``{"error_code": .., "message": ..}`` (ConnectExceptionMapper), compact like Jackson. Real
3.9.2 and 4.3.1 workers send those two routing errors without a Content-Type (no resource method, so no
``@Produces``) and the 405 without an Allow header; errors raised inside a resource are ``application/json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from simulator.connect.state import ConnectRestError, Json, SimCluster

JSON_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class SimResponse:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


def dumps(obj: Json) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(status: int, obj: Json, headers: tuple[tuple[str, str], ...] = ()) -> SimResponse:
    return SimResponse(status, dumps(obj), JSON_TYPE, headers)


def error_response(status: int, message: str | None) -> SimResponse:
    return json_response(status, {"error_code": status, "message": message})


_REASONS = {404: "Not Found", 405: "Method Not Allowed", 415: "Unsupported Media Type"}


def jersey_error(status: int) -> SimResponse:
    """What a ``javax.ws.rs.WebApplicationException`` for ``status`` becomes: ``"HTTP 404 Not Found"``."""
    return error_response(status, f"HTTP {status} {_REASONS.get(status, '')}".rstrip())


def routing_error(status: int) -> SimResponse:
    """404/405 from Jersey's routing itself: the same body, but no Content-Type header (real 3.9.2/4.3.1)."""
    return SimResponse(status, jersey_error(status).body, None)


# Connect's HTTP server (Jetty) refuses a path with an encoded backslash or percent sign before any
# resource sees it, so a connector named "C:\path" or "50% sample" can be created (the name travels in the
# POST body) but never addressed by name (seen on real 3.9 and 4.3 workers).
_AMBIGUOUS = re.compile(r"%(5[Cc]|25)")


def is_ambiguous(raw_path: str) -> bool:
    return _AMBIGUOUS.search(raw_path) is not None


def ambiguous_path() -> SimResponse:
    """Jetty's own 400 page: HTML, not a Connect ErrorMessage."""
    page = "<h1>Bad Message 400</h1><pre>reason: Ambiguous URI encoding</pre>"
    return SimResponse(400, page.encode(), "text/html;charset=iso-8859-1")


_JAVA_INT = re.compile(r"[+-]?\d{1,10}")


def task_id(rq: Request) -> int:
    """The ``{task}`` path parameter as Jersey converts an ``Integer``: anything else is a JSON 404 (the route
    matched, so unlike an unknown route the answer has ``application/json``)."""
    raw = rq.params["t"]
    if _JAVA_INT.fullmatch(raw) is None or not -(2**31) <= int(raw) < 2**31:
        raise ConnectRestError(404, "HTTP 404 Not Found")
    return int(raw)


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    params: dict[str, str]  # decoded path parameters
    query: Sequence[tuple[str, str]]
    body: bytes
    content_type: str | None
    worker: int = 0  # index of the worker that received the request

    def query_all(self, key: str) -> list[str]:
        return [v for k, v in self.query if k == key]

    def query_bool(self, key: str, default: bool) -> bool:
        """JAX-RS ``Boolean`` params: ``Boolean.valueOf`` (only "true", any case, is true)."""
        values = self.query_all(key)
        return values[0].lower() == "true" if values else default

    def json_body(self) -> Any:
        """The entity as Jackson would read it; failures are 500s, since Connect maps no Jackson exception."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            msg = e.msg if isinstance(e, json.JSONDecodeError) else "Invalid UTF-8 start byte"
            line, col = (e.lineno, e.colno) if isinstance(e, json.JSONDecodeError) else (1, 1)
            raise ConnectRestError(
                500,
                f"Unexpected character: {msg}\n at [Source: (org.glassfish.jersey.message.internal."
                f"ReaderInterceptorExecutor$UnCloseableInputStream); line: {line}, column: {col}]",
            ) from None


Handler = Callable[[SimCluster, Request], SimResponse]


def _string_map(obj: Any, allow_null: bool = False) -> dict[str, Any]:
    """Jackson reading ``Map<String, String>``: scalars become strings, objects and arrays fail."""
    if obj is None:
        raise ConnectRestError(500, None)  # a null entity ends in a NullPointerException
    if not isinstance(obj, dict):
        raise ConnectRestError(
            500,
            "Cannot deserialize value of type `java.util.LinkedHashMap<java.lang.String,java.lang.String>` "
            "from Array value (token `JsonToken.START_ARRAY`)",
        )
    out: dict[str, Any] = {}
    for k, v in obj.items():
        if isinstance(v, dict | list):
            raise ConnectRestError(
                500,
                "Cannot deserialize value of type `java.lang.String` from "
                f"{'Object' if isinstance(v, dict) else 'Array'} value",
            )
        if v is None:
            if allow_null:
                out[k] = None
            continue
        out[k] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return out


def _location(name: str) -> tuple[tuple[str, str], ...]:
    return (("Location", "/connectors/" + quote(name, safe="")),)


# -- handlers ---------------------------------------------------------------------------------------------------


def _root(cl: SimCluster, rq: Request) -> SimResponse:
    return json_response(200, cl.server_info())


def _health(cl: SimCluster, rq: Request) -> SimResponse:
    status, body = cl.health(rq.worker)
    return json_response(status, body)


def _list(cl: SimCluster, rq: Request) -> SimResponse:
    # containsKey("expand"): any expand param switches to the map form, even with only unknown values.
    if cl.supports("2.3.0") and any(k == "expand" for k, _ in rq.query):
        return json_response(200, cl.expand(rq.query_all("expand")))
    return json_response(200, cl.list_connectors())


def _create(cl: SimCluster, rq: Request) -> SimResponse:
    body = rq.json_body()
    if not isinstance(body, dict):
        raise ConnectRestError(500, None)
    raw_name = body.get("name")
    name = raw_name.strip() if isinstance(raw_name, str) else ""
    config = _string_map(body.get("config"))
    included = config.get("name")
    if included is not None and included != name:
        raise ConnectRestError(
            400, f"Connector name configuration ({included}) doesn't match connector name in the URL ({name})"
        )
    config["name"] = name
    initial = body.get("initial_state")
    if initial is not None and cl.supports("3.7.0"):
        if not isinstance(initial, str) or initial.upper() not in ("RUNNING", "PAUSED", "STOPPED"):
            raise ConnectRestError(
                500,
                f"Cannot construct instance of `CreateConnectorRequest`, problem: No enum constant "
                f"org.apache.kafka.connect.runtime.rest.entities.CreateConnectorRequest.InitialState.{initial}",
            )
        initial = {"RUNNING": "STARTED"}.get(initial.upper(), initial.upper())
    else:
        initial = None
    info = cl.create_connector(name, config, initial)
    return json_response(201, info, _location(name))


def _info(cl: SimCluster, rq: Request) -> SimResponse:
    return json_response(200, cl.connector_info(rq.params["c"]))


def _delete(cl: SimCluster, rq: Request) -> SimResponse:
    cl.delete_connector(rq.params["c"])
    return SimResponse(204)


def _get_config(cl: SimCluster, rq: Request) -> SimResponse:
    return json_response(200, cl.connector_config(rq.params["c"]))


def _put_config(cl: SimCluster, rq: Request) -> SimResponse:
    name = rq.params["c"]
    config = _string_map(rq.json_body())
    included = config.get("name")
    if included is not None and included != name:
        raise ConnectRestError(
            400, f"Connector name configuration ({included}) doesn't match connector name in the URL ({name})"
        )
    config["name"] = name
    created, info = cl.put_connector_config(name, config)
    if created:
        return json_response(201, info, _location(name))
    return json_response(200, info)


def _patch_config(cl: SimCluster, rq: Request) -> SimResponse:
    return json_response(200, cl.patch_connector_config(rq.params["c"], _string_map(rq.json_body(), True)))


def _status(cl: SimCluster, rq: Request) -> SimResponse:
    return json_response(200, cl.connector_status(rq.params["c"]))


def _tasks(cl: SimCluster, rq: Request) -> SimResponse:
    return json_response(200, cl.task_configs(rq.params["c"]))


def _tasks_config(cl: SimCluster, rq: Request) -> SimResponse:
    return json_response(200, cl.tasks_config(rq.params["c"]))


def _task_status(cl: SimCluster, rq: Request) -> SimResponse:
    return json_response(200, cl.task_status(rq.params["c"], task_id(rq)))


def _task_restart(cl: SimCluster, rq: Request) -> SimResponse:
    cl.restart_task(rq.params["c"], task_id(rq))
    return SimResponse(204)


def _topics(cl: SimCluster, rq: Request) -> SimResponse:
    return json_response(200, cl.active_topics(rq.params["c"]))


def _topics_reset(cl: SimCluster, rq: Request) -> SimResponse:
    cl.reset_topics(rq.params["c"])
    return SimResponse(202)


def _pause(cl: SimCluster, rq: Request) -> SimResponse:
    cl.rest_pause(rq.params["c"])
    return SimResponse(202)


def _resume(cl: SimCluster, rq: Request) -> SimResponse:
    cl.rest_resume(rq.params["c"])
    return SimResponse(202)


def _stop(cl: SimCluster, rq: Request) -> SimResponse:
    cl.rest_stop(rq.params["c"])
    return SimResponse(204)


def _restart(cl: SimCluster, rq: Request) -> SimResponse:
    name = rq.params["c"]
    if cl.supports("3.0.0"):
        include_tasks = rq.query_bool("includeTasks", False)
        only_failed = rq.query_bool("onlyFailed", False)
        if include_tasks or only_failed:
            return json_response(202, cl.restart_connector_and_tasks(name, include_tasks, only_failed))
    cl.restart_connector(name)  # before 3.0 the params do not exist and are ignored
    return SimResponse(204)


def _offsets(cl: SimCluster, rq: Request) -> SimResponse:
    return json_response(200, cl.offsets(rq.params["c"]))


def _plugins(cl: SimCluster, rq: Request) -> SimResponse:
    return json_response(200, cl.connector_plugins(rq.query_bool("connectorsOnly", True)))


# -- routing ----------------------------------------------------------------------------------------------------

_C = r"(?P<c>[^/]+)"
_T = r"(?P<t>[^/]+)"  # converted by task_id(): a non-integer matches the route, then 404s as JSON


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    since: str = "0.10.0"
    until: str | None = None  # first version without the route

    def exists_in(self, cluster: SimCluster) -> bool:
        return cluster.supports(self.since) and (self.until is None or not cluster.supports(self.until))


def _r(method: str, path: str, handler: Handler, since: str = "0.10.0", until: str | None = None) -> Route:
    return Route(method, re.compile(path + "/?"), handler, since, until)


ROUTES: tuple[Route, ...] = (
    _r("GET", "", _root),
    _r("GET", "/health", _health, "3.9.0"),
    _r("GET", "/connectors", _list),
    _r("POST", "/connectors", _create),
    _r("GET", f"/connectors/{_C}", _info),
    _r("DELETE", f"/connectors/{_C}", _delete),
    _r("GET", f"/connectors/{_C}/config", _get_config),
    _r("PUT", f"/connectors/{_C}/config", _put_config),
    _r("PATCH", f"/connectors/{_C}/config", _patch_config, "3.8.0"),
    _r("GET", f"/connectors/{_C}/status", _status),
    _r("GET", f"/connectors/{_C}/tasks", _tasks),
    _r("GET", f"/connectors/{_C}/tasks-config", _tasks_config, "2.8.0", "4.0.0"),  # KIP-970 removal: Jersey 404
    _r("GET", f"/connectors/{_C}/tasks/{_T}/status", _task_status),
    _r("POST", f"/connectors/{_C}/tasks/{_T}/restart", _task_restart),
    _r("GET", f"/connectors/{_C}/topics", _topics, "2.5.0"),
    _r("PUT", f"/connectors/{_C}/topics/reset", _topics_reset, "2.5.0"),
    _r("PUT", f"/connectors/{_C}/pause", _pause),
    _r("PUT", f"/connectors/{_C}/resume", _resume),
    _r("PUT", f"/connectors/{_C}/stop", _stop, "3.5.0"),
    _r("POST", f"/connectors/{_C}/restart", _restart),
    _r("GET", f"/connectors/{_C}/offsets", _offsets, "3.5.0"),
    _r("GET", "/connector-plugins", _plugins),
)

# ConnectorsResource and ConnectorPluginsResource are @Consumes(application/json).
_CONSUMES_JSON = ("/connectors", "/connector-plugins")


def match(cluster: SimCluster, method: str, raw_path: str) -> tuple[Route | None, dict[str, str], list[str]]:
    """(route, decoded params, methods allowed on the path). ``raw_path`` is still percent-encoded."""
    allowed: list[str] = []
    found: tuple[Route, dict[str, str]] | None = None
    for route in ROUTES:
        if not route.exists_in(cluster):
            continue
        m = route.pattern.fullmatch(raw_path)
        if m is None:
            continue
        allowed.append(route.method)
        if route.method == method or (method == "HEAD" and route.method == "GET"):
            found = (route, {k: unquote(v) for k, v in m.groupdict().items()})
    if found is None:
        return None, {}, allowed
    return found[0], found[1], allowed


def handle(
    cluster: SimCluster,
    method: str,
    raw_path: str,
    *,
    query: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
    worker: int = 0,
) -> SimResponse:
    """Answer one request as distributed-mode worker ``worker`` of ``cluster`` would."""
    if is_ambiguous(raw_path):
        return ambiguous_path()
    route, params, allowed = match(cluster, method, raw_path)
    if route is None:
        if not allowed:
            return routing_error(404)
        if method == "OPTIONS":  # Jersey answers OPTIONS itself
            return SimResponse(200, headers=(("Allow", ",".join([*sorted(set(allowed)), "OPTIONS"])),))
        return routing_error(405)
    if (
        content_type is not None
        and method in ("POST", "PUT", "PATCH")
        and raw_path.startswith(_CONSUMES_JSON)
        and content_type.split(";", 1)[0].strip().lower() != JSON_TYPE
    ):
        return jersey_error(415)
    try:
        return route.handler(cluster, Request(method, params, query, body, content_type, worker))
    except ConnectRestError as e:
        return error_response(e.status, e.message)
