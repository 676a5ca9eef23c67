"""The HTTP transport every source shares: one bounded read, one failure vocabulary, one error-body reader.

Each source keeps only what is its own: Connect its per-cluster client and paths (``connect/client.py``),
Confluent Cloud its request budget, 429 waits and retries (``cloud/http.py``), the healer the meaning of a
restart's answer (``healer/client.py``). Every failure here is a ``RequestFailed`` carrying a ``PollError``
whose reason is ``timeout``, ``connect``, ``http_status`` or ``bad_response`` (``model.ErrorReason``).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from exporter import __version__, json_decode
from exporter.cpu_worker import off_loop
from exporter.model import ErrorReason, PollError

USER_AGENT = f"kafka-connect-exporter/{__version__}"

# Body limits, one per kind of answer, so a broken or hostile endpoint cannot exhaust memory. Connect status
# bodies have their own, configurable one: ``clusters[].max_response_size`` (10,000 connectors ~25 MB).
CLOUD_ANSWER_MAX_BYTES = 64 * 1024 * 1024  # a Cloud API answer: 1,000 connectors x 6 h of minutes is ~25 MB
SMALL_ANSWER_MAX_BYTES = 64 * 1024  # a restart's answer (a plan or an error): only its head is kept
# Bodies above this are decoded in the worker thread (10,000 connectors' expand is ~25 MB).
DECODE_IN_THREAD_BYTES = 256 * 1024
# The longest stretch a body read may keep the event loop before letting other work run.
YIELD_EVERY_SECONDS = 0.005
# The head of an error body read for its message, and the longest message kept.
ERROR_BODY_WINDOW = 4096
MESSAGE_MAX_CHARS = 300

Params = Mapping[str, str] | list[tuple[str, str | int | float | bool | None]] | None

_MIB = 1024 * 1024
_TAG = re.compile(r"<[^>]*>")


class RequestFailed(Exception):
    """A request that brought no usable answer. ``delivered`` is False when the request never reached the
    server (no connection), so sending it to another server cannot do it twice."""

    def __init__(self, error: PollError, *, delivered: bool = True) -> None:
        super().__init__(error.message)
        self.error = error
        self.delivered = delivered


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer, whatever its status, with its body read up to the caller's limit."""

    url: str
    status: int
    reason_phrase: str
    headers: httpx.Headers
    body: bytearray

    def failure(self) -> RequestFailed:
        """This answer as an ``http_status`` failure, with the body's message."""
        message = status_message(self.body, self.status, self.reason_phrase)
        return RequestFailed(PollError(ErrorReason.HTTP_STATUS, self.url, message, self.status))


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    max_bytes: int,
    params: Params = None,
    json_body: Any = None,
    request_timeout: httpx.Timeout | None = None,
    head_only: bool = False,
) -> Reply:
    """Send one request and read its body, at most ``max_bytes`` of it.

    A longer body fails as ``bad_response``, or with ``head_only`` (the caller needs only a status and a
    message) is cut there. Timeouts fail as ``timeout``; refused connections, DNS, TLS and resets as
    ``connect``. ``request_timeout`` replaces the client's timeouts for this request.
    """
    per_request = httpx.USE_CLIENT_DEFAULT if request_timeout is None else request_timeout
    try:
        async with client.stream(method, url, params=params, json=json_body, timeout=per_request) as response:
            body = bytearray()
            yielded = time.monotonic()
            async for chunk in response.aiter_bytes():
                body += chunk
                # Buffered data makes this loop run without suspending, and a body of many small chunks is
                # Python work: let scrapes in every few milliseconds.
                if time.monotonic() - yielded > YIELD_EVERY_SECONDS:
                    await asyncio.sleep(0)
                    yielded = time.monotonic()
                if len(body) > max_bytes:
                    if head_only:
                        del body[max_bytes:]
                        break
                    message = f"response larger than {_size(max_bytes)}; read stopped"
                    raise RequestFailed(PollError(ErrorReason.BAD_RESPONSE, url, message, response.status_code))
    except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise _failed(ErrorReason.TIMEOUT, url, f"{type(exc).__name__}: no answer in time", delivered=False) from None
    except httpx.TimeoutException as exc:
        raise _failed(ErrorReason.TIMEOUT, url, f"{type(exc).__name__}: no answer in time", delivered=True) from None
    except httpx.ConnectError as exc:
        raise _failed(ErrorReason.CONNECT, url, _transport_message(exc), delivered=False) from None
    except (httpx.TransportError, OSError) as exc:
        raise _failed(ErrorReason.CONNECT, url, _transport_message(exc), delivered=True) from None
    return Reply(url, response.status_code, response.reason_phrase, response.headers, body)


async def read_json(reply: Reply, then: Callable[[Any], Any] | None = None) -> Any:
    """The reply's JSON body decoded (None when empty), then passed through ``then`` when given.

    ``then`` runs in the same worker-thread step as the decoding, so one body's dicts are freed before the
    next body is decoded (peak memory holds one, not all of them at once). Its exceptions propagate unchanged.
    """
    if not reply.body:
        return None
    ctype = reply.headers.get("content-type", "")
    if "json" not in ctype.lower():
        message = f"expected JSON, got content-type {ctype or 'none'!r}"
        raise RequestFailed(PollError(ErrorReason.BAD_RESPONSE, reply.url, message, reply.status))
    try:
        if len(reply.body) > DECODE_IN_THREAD_BYTES or then is not None:
            # Decoding megabytes takes long enough to stall every scrape; do it beside the event loop, one
            # member at a time so the loop gets the GIL in between (json_decode.py).
            return await off_loop(_decode, reply.body, then)
        return _decode(reply.body, None)
    except _InvalidJson as exc:
        raise RequestFailed(PollError(ErrorReason.BAD_RESPONSE, reply.url, str(exc), reply.status)) from None


async def request_json(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    max_bytes: int,
    params: Params = None,
    expect: tuple[int, ...] = (200,),
    then: Callable[[Any], Any] | None = None,
) -> tuple[int, Any]:
    """Send one request; return (status, decoded JSON or None for an empty body), see ``read_json``.
    Any status outside ``expect`` fails as ``http_status``."""
    reply = await send(client, method, url, max_bytes=max_bytes, params=params)
    if reply.status not in expect:
        raise reply.failure()
    return reply.status, await read_json(reply, then)


def error_message(body: bytes | bytearray, reason_phrase: str = "") -> str:
    """One line from an error body of any shape the references document: Connect's
    ``{"error_code","message"}``, Confluent Cloud's ``{"errors":[{"detail"}]}`` (Metrics API) and
    ``{"error":{"code","message"}}`` (Connect API), a JSON string, plain text (the basic-auth extension's
    401) or a gateway's HTML page. The HTTP reason phrase when the body says nothing."""
    text = bytes(body[:ERROR_BODY_WINDOW]).decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        parsed = None
    if isinstance(parsed, str) or (isinstance(parsed, dict) and parsed.keys() & {"errors", "error", "message"}):
        parts = _json_messages(parsed)
    else:  # not an error shape: the text itself (markup stripped from a page)
        plain = _TAG.sub(" ", text) if text.lstrip().startswith("<") else text
        parts = [_one_line(plain)]
    message = "; ".join(dict.fromkeys(p for p in parts if p))[:MESSAGE_MAX_CHARS]
    return message or reason_phrase[:MESSAGE_MAX_CHARS] or "no details"


def status_message(body: bytes | bytearray, status: int, reason_phrase: str = "") -> str:
    """``HTTP <status>: <the body's message>``."""
    return f"HTTP {status}: {error_message(body, reason_phrase)}"


def _json_messages(parsed: Any) -> list[str]:
    if isinstance(parsed, str):
        return [_one_line(parsed)]
    if not isinstance(parsed, dict):
        return []
    parts: list[str] = []
    errors = parsed.get("errors")
    if isinstance(errors, list):
        for item in errors:
            if isinstance(item, dict):
                detail = item.get("detail") or item.get("title") or item.get("code")
                if detail:
                    parts.append(str(detail))
    error = parsed.get("error")
    if isinstance(error, dict) and error.get("message"):
        parts.append(str(error["message"]))
    elif isinstance(error, str) and error:
        parts.append(error)
    if not parts and isinstance(parsed.get("message"), str):
        parts.append(parsed["message"])
    return [line for line in map(_one_line, parts) if line]


def _one_line(text: str) -> str:
    """The first non-blank line, its whitespace runs made single spaces."""
    for line in text.splitlines():
        if line.strip():
            return " ".join(line.split())
    return ""


class _InvalidJson(Exception):
    """The body is not JSON (kept apart from the ValueErrors ``then`` may raise)."""


def _decode(body: bytearray, then: Callable[[Any], Any] | None) -> Any:
    try:
        data = json_decode.loads(body) if len(body) > DECODE_IN_THREAD_BYTES else json.loads(body)
    except RecursionError:  # "[[[[..." nested deeper than the decoder's stack
        raise _InvalidJson("invalid JSON (nested too deeply)") from None
    except ValueError as exc:
        pos = getattr(exc, "pos", "?")
        raise _InvalidJson(f"invalid JSON ({exc.__class__.__name__} at byte {pos} of {len(body)})") from None
    return data if then is None else then(data)


def _failed(reason: ErrorReason, url: str, message: str, *, delivered: bool) -> RequestFailed:
    return RequestFailed(PollError(reason, url, message), delivered=delivered)


def _transport_message(exc: BaseException) -> str:
    # httpx messages carry no credentials (URLs with user:pass are rejected by the config).
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}"


def _size(n: int) -> str:
    if n % _MIB == 0:
        return f"{n // _MIB} MiB"
    if n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} bytes"
