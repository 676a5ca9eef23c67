"""How a simulated service misbehaves, so tests can prove the exporter survives timeouts, refused
connections, broken bodies and proxies in the way. Each server (``simulator.connect.server``,
``simulator.cloud.server``) answers the kinds it simulates in its API's own shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    """What a misbehaving service does; not every service simulates every kind (the Cloud: STATUS, GATEWAY_PAGE)."""

    REFUSE = "refuse"  # the listener is closed: connection refused (open connections are dropped)
    HANG = "hang"  # accept the request and never answer (until the server stops)
    DELAY = "delay"  # answer normally after ``delay`` seconds
    STATUS = "status"  # answer ``status`` with the API's error body (and ``headers``)
    GATEWAY_PAGE = "gateway_page"  # answer ``status`` with a gateway's HTML page instead of the API's error
    UNAUTHORIZED = "unauthorized"  # 401 with the basic-auth extension's plain-text body
    MALFORMED_JSON = "malformed_json"  # 200, application/json, body is not JSON
    TRUNCATED_JSON = "truncated_json"  # the real body cut in half, with a matching Content-Length
    DISCONNECT = "disconnect"  # Content-Length of the full body, half of it sent, then the connection drops
    WRONG_CONTENT_TYPE = "wrong_content_type"  # 200 text/html (a proxy's login or error page)
    HUGE_BODY = "huge_body"  # a valid JSON array of ``size`` bytes
    FOREIGN_CLUSTER = "foreign_cluster"  # GET / reports ``kafka_cluster_id`` of another cluster


@dataclass(frozen=True, slots=True)
class Fault:
    """How a simulated service misbehaves. Build with the class methods, e.g.
    ``Fault.http_status(503, path="/connectors")``.

    ``delay``: seconds to wait before answering (DELAY then answers normally, other kinds answer their way).
    ``path``: a regex the request path (without query) must fully match; None means every path.
    ``times``: misbehave for this many matching requests, then behave again; None means until cleared.
    """

    kind: FaultKind
    status: int = 500
    message: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    size: int = 50 * 1024 * 1024
    chunked: bool = False
    kafka_cluster_id: str = "T3RoZXJDbHVzdGVyWFlaMQ"
    path: str | None = None
    times: int | None = None

    @classmethod
    def refuse(cls) -> Fault:
        return cls(FaultKind.REFUSE)

    @classmethod
    def hang(cls, path: str | None = None, times: int | None = None) -> Fault:
        return cls(FaultKind.HANG, path=path, times=times)

    @classmethod
    def slow(cls, delay: float, path: str | None = None, times: int | None = None) -> Fault:
        return cls(FaultKind.DELAY, delay=delay, path=path, times=times)

    @classmethod
    def http_status(
        cls, status: int, message: str | None = None, path: str | None = None, times: int | None = None
    ) -> Fault:
        return cls(FaultKind.STATUS, status=status, message=message, path=path, times=times)

    @classmethod
    def unauthorized(cls, path: str | None = None, times: int | None = None) -> Fault:
        return cls(FaultKind.UNAUTHORIZED, status=401, path=path, times=times)

    @classmethod
    def malformed_json(cls, path: str | None = None, times: int | None = None) -> Fault:
        return cls(FaultKind.MALFORMED_JSON, path=path, times=times)

    @classmethod
    def truncated_json(cls, path: str | None = None, times: int | None = None) -> Fault:
        return cls(FaultKind.TRUNCATED_JSON, path=path, times=times)

    @classmethod
    def disconnect(cls, path: str | None = None, times: int | None = None) -> Fault:
        return cls(FaultKind.DISCONNECT, path=path, times=times)

    @classmethod
    def wrong_content_type(cls, path: str | None = None, times: int | None = None) -> Fault:
        return cls(FaultKind.WRONG_CONTENT_TYPE, path=path, times=times)

    @classmethod
    def huge_body(
        cls, size: int = 50 * 1024 * 1024, chunked: bool = False, path: str | None = None, times: int | None = None
    ) -> Fault:
        return cls(FaultKind.HUGE_BODY, size=size, chunked=chunked, path=path, times=times)

    @classmethod
    def foreign_cluster(cls, kafka_cluster_id: str = "T3RoZXJDbHVzdGVyWFlaMQ") -> Fault:
        return cls(FaultKind.FOREIGN_CLUSTER, kafka_cluster_id=kafka_cluster_id, path="/?")
