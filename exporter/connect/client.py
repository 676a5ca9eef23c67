"""HTTP access to Connect workers: one keep-alive httpx.AsyncClient per cluster, bounded reads, typed errors.

Every failure becomes a ``RequestFailed`` carrying a ``PollError`` whose reason is one of the four
``ErrorReason`` values, so the poller counts and logs all failures the same way.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx

from exporter import __version__
from exporter.connect import decode
from exporter.connect.config import ClusterConfig
from exporter.cpu_worker import off_loop
from exporter.model import ErrorReason, PollError

# Far above any real response (10,000 connectors with status and info are ~25 MB) but bounded, so a
# broken or hostile endpoint cannot exhaust memory.
MAX_RESPONSE_BYTES = 256 * 1024 * 1024
# Bodies above this are decoded in a worker thread (10,000 connectors' expand is ~25 MB).
DECODE_IN_THREAD_BYTES = 256 * 1024
# The longest stretch a body read may keep the event loop before letting other work run.
YIELD_EVERY_SECONDS = 0.005
USER_AGENT = f"kafka-connect-exporter/{__version__}"


class RequestFailed(Exception):
    def __init__(self, error: PollError) -> None:
        super().__init__(error.message)
        self.error = error


def build_http_client(cluster: ClusterConfig, *, max_connections: int = 16) -> httpx.AsyncClient:
    """A client carrying the cluster's auth, TLS and headers. Timeouts apply to every request."""
    auth: httpx.Auth | None = None
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **cluster.headers}
    if cluster.auth.basic is not None:
        password = cluster.auth.basic.password
        assert password is not None
        auth = httpx.BasicAuth(cluster.auth.basic.username, password.get_secret_value())
    elif cluster.auth.bearer is not None:
        token = cluster.auth.bearer.token
        assert token is not None
        headers["Authorization"] = f"Bearer {token.get_secret_value()}"
    return httpx.AsyncClient(
        auth=auth,
        headers=headers,
        verify=cluster.tls.ssl_context(),
        timeout=httpx.Timeout(cluster.request_timeout),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        follow_redirects=False,
        trust_env=False,  # proxies from the environment would send Connect traffic somewhere unexpected
    )


def connector_path(name: str, *rest: str) -> str:
    """``/connectors/<name>/...`` with the name percent-encoded: names may hold '/', '?', spaces, quotes."""
    return "/".join(["/connectors", quote(name, safe=""), *rest])


def error_message(body: bytes, reason: str) -> str:
    """One line from an error body: Connect's ``{"error_code","message"}``, a JSON string, or plain text (the
    basic-auth extension's 401); ``reason`` (the HTTP reason phrase) when the body says nothing."""
    text = body[:2048].decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        text = parsed["message"]
    elif isinstance(parsed, str):
        text = parsed
    text = text.strip()
    return (text.splitlines()[0] if text else reason)[:300]


async def request_json(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    params: list[tuple[str, str | int | float | bool | None]] | None = None,
    expect: tuple[int, ...] = (200,),
    max_bytes: int = MAX_RESPONSE_BYTES,
    then: Callable[[Any], Any] | None = None,
) -> tuple[int, Any]:
    """Send one request; return (status, decoded JSON or None for an empty body).

    ``then``, given, turns the decoded JSON into the result in the same worker-thread step as the decoding
    (so one body's dicts are freed before the next cluster's body is decoded: peak memory holds one, not all
    of them at once). Its exceptions propagate unchanged.
    """
    try:
        async with client.stream(method, url, params=params) as response:
            body = bytearray()
            yielded = time.monotonic()
            async for chunk in response.aiter_bytes():
                body += chunk
                # Buffered data makes this loop run without suspending, and parsing a body of many small
                # chunks is Python work: let scrapes in every few milliseconds.
                if time.monotonic() - yielded > YIELD_EVERY_SECONDS:
                    await asyncio.sleep(0)
                    yielded = time.monotonic()
                if len(body) > max_bytes:
                    raise RequestFailed(
                        PollError(
                            ErrorReason.BAD_RESPONSE,
                            url,
                            f"response larger than {max_bytes // (1024 * 1024)} MiB; read stopped",
                            response.status_code,
                        )
                    )
    except httpx.TimeoutException as exc:
        raise RequestFailed(PollError(ErrorReason.TIMEOUT, url, f"{type(exc).__name__}: no answer in time")) from None
    except (httpx.TransportError, OSError) as exc:
        raise RequestFailed(PollError(ErrorReason.CONNECT, url, _transport_message(exc))) from None

    status = response.status_code
    if status not in expect:
        raise RequestFailed(
            PollError(
                ErrorReason.HTTP_STATUS,
                url,
                f"HTTP {status}: {error_message(bytes(body), response.reason_phrase)}",
                status,
            )
        )
    if not body:
        return status, None
    ctype = response.headers.get("content-type", "")
    if "json" not in ctype.lower():
        raise RequestFailed(
            PollError(ErrorReason.BAD_RESPONSE, url, f"expected JSON, got content-type {ctype or 'none'!r}", status)
        )
    try:
        if len(body) > DECODE_IN_THREAD_BYTES or then is not None:
            # Decoding megabytes takes long enough to stall every scrape; do it beside the event loop, one
            # connector at a time so the loop gets the GIL in between (decode.py).
            return status, await off_loop(_decode, body, then)
        return status, _decode(body, None)
    except _InvalidJson as exc:
        raise RequestFailed(PollError(ErrorReason.BAD_RESPONSE, url, str(exc), status)) from None


class _InvalidJson(Exception):
    """The body is not JSON (kept apart from the ValueErrors ``then`` may raise)."""


def _decode(body: bytearray, then: Callable[[Any], Any] | None) -> Any:
    try:
        data = decode.loads(body) if len(body) > DECODE_IN_THREAD_BYTES else json.loads(body)
    except RecursionError:  # "[[[[..." nested deeper than the decoder's stack
        raise _InvalidJson("invalid JSON (nested too deeply)") from None
    except ValueError as exc:
        pos = getattr(exc, "pos", "?")
        raise _InvalidJson(f"invalid JSON ({exc.__class__.__name__} at byte {pos} of {len(body)})") from None
    return data if then is None else then(data)


def _transport_message(exc: BaseException) -> str:
    # httpx messages carry no credentials (URLs with user:pass are rejected by the config).
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}"
