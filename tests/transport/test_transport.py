"""The shared HTTP transport against a raw HTTP/1.1 server on loopback: bounded reads, bodies that are not
JSON, error bodies of every documented shape, and the one failure reason set."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter.cloud.clock import SystemClock
from exporter.cloud.config import CloudConfig
from exporter.cloud.http import REASONS as CLOUD_API_REASONS
from exporter.cloud.http import CloudHttp
from exporter.config import ClusterConfig
from exporter.connect.client import build_http_client
from exporter.model import ERROR_REASONS, ErrorReason
from exporter.transport import (
    CLOUD_ANSWER_MAX_BYTES,
    SMALL_ANSWER_MAX_BYTES,
    USER_AGENT,
    RequestFailed,
    error_message,
    read_json,
    request_json,
    send,
    status_message,
)

ROOT = Path(__file__).resolve().parents[2]
Handler = Callable[[asyncio.StreamWriter], Awaitable[None]]


def answer(status: int, body: bytes, ctype: str | None = "application/json", *, length: int | None = None) -> bytes:
    head = [f"HTTP/1.1 {status} {httpx.codes.get_reason_phrase(status) or 'Whatever'}"]
    if ctype is not None:
        head.append(f"Content-Type: {ctype}")
    head.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def replying(raw: bytes) -> Handler:
    async def write(writer: asyncio.StreamWriter) -> None:
        writer.write(raw)
        await writer.drain()

    return write


def chunked(total: int, chunk: int = 16 * 1024) -> Handler:
    """A 200 JSON answer of ``total`` bytes in chunks, without a Content-Length."""

    async def write(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        sent = 0
        while sent < total:
            n = min(chunk, total - sent)
            writer.write(f"{n:x}\r\n".encode() + b" " * n + b"\r\n")
            await writer.drain()
            sent += n
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    return write


async def never_answers(writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(3600)


@asynccontextmanager
async def serve(routes: dict[str, Handler]) -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A one-request-per-connection HTTP server on 127.0.0.1; yields its base URL and the request headers."""
    seen: list[dict[str, str]] = []
    handlers: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *lines = head.strip().split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
            seen.append(headers)
            length = int(headers.get("content-length", "0"))
            if length:
                await reader.readexactly(length)
            await routes[request_line.split()[1].split("?")[0]](writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client stopped reading (a cut body): nothing more to send
        finally:
            writer.close()
            handlers.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        with suppress(asyncio.CancelledError):
            await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as c:
        yield c


# --- bounded read ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sized", [True, False], ids=["content-length", "chunked"])
async def test_a_body_over_the_limit_is_cut_with_a_clear_error(client: httpx.AsyncClient, sized: bool) -> None:
    body = chunked(2 * 1024 * 1024) if not sized else replying(answer(200, b" " * (2 * 1024 * 1024)))
    async with serve({"/big": body}) as (base, _):
        with pytest.raises(RequestFailed) as err:
            await send(client, "GET", base + "/big", max_bytes=1024 * 1024)
        assert err.value.error.reason is ErrorReason.BAD_RESPONSE and err.value.error.status == 200
        assert err.value.error.message == "response larger than 1 MiB; read stopped"
        assert err.value.error.url == base + "/big"
        with pytest.raises(RequestFailed, match=r"^response larger than 64 KiB; read stopped$"):
            await send(client, "GET", base + "/big", max_bytes=SMALL_ANSWER_MAX_BYTES)


async def test_head_only_keeps_exactly_the_limit_and_the_status(client: httpx.AsyncClient) -> None:
    async with serve({"/big": chunked(1024 * 1024, chunk=1000)}) as (base, _):
        reply = await send(client, "POST", base + "/big", max_bytes=SMALL_ANSWER_MAX_BYTES, head_only=True)
    assert reply.status == 200 and len(reply.body) == SMALL_ANSWER_MAX_BYTES


async def test_a_body_at_the_limit_is_read_whole(client: httpx.AsyncClient) -> None:
    body = b'{"a": "' + b"x" * (300 * 1024) + b'"}'  # above the in-thread decode threshold too
    async with serve({"/ok": replying(answer(200, body))}) as (base, _):
        status, data = await request_json(client, "GET", base + "/ok", max_bytes=len(body))
    assert status == 200 and data == {"a": "x" * (300 * 1024)}


# --- bodies that are not JSON -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            answer(200, b"<html><body>Login</body></html>", "text/html; charset=utf-8"),
            "expected JSON, got content-type 'text/html; charset=utf-8'",
        ),
        (answer(200, b'{"a": 1}', None), "expected JSON, got content-type 'none'"),
        (answer(200, b"{not json"), "invalid JSON (JSONDecodeError at byte 1 of 9)"),
        (answer(200, b'{"connectors": ["a", "b"'), "invalid JSON (JSONDecodeError at byte 24 of 24)"),
        (answer(200, b"[" * 100_000), "invalid JSON (nested too deeply)"),
    ],
    ids=["html", "no content-type", "malformed", "truncated JSON", "nested too deeply"],
)
async def test_bodies_that_are_not_the_documented_json_are_bad_responses(
    client: httpx.AsyncClient, raw: bytes, message: str
) -> None:
    async with serve({"/x": replying(raw)}) as (base, _):
        with pytest.raises(RequestFailed) as err:
            await request_json(client, "GET", base + "/x", max_bytes=1024 * 1024)
    assert (err.value.error.reason, err.value.error.message, err.value.error.status) == (
        ErrorReason.BAD_RESPONSE,
        message,
        200,
    )


async def test_a_connection_that_drops_mid_body_is_a_connect_failure(client: httpx.AsyncClient) -> None:
    async with serve({"/x": replying(answer(200, b'{"a": 1', length=1000))}) as (base, _):
        with pytest.raises(RequestFailed) as err:
            await send(client, "GET", base + "/x", max_bytes=1024 * 1024)
    assert err.value.error.reason is ErrorReason.CONNECT and err.value.delivered
    assert err.value.error.message.startswith("RemoteProtocolError: ")


async def test_refused_and_silent_servers_say_whether_the_request_was_delivered(client: httpx.AsyncClient) -> None:
    async with serve({"/hang": never_answers}) as (base, _):
        with pytest.raises(RequestFailed) as silent:
            await send(client, "POST", base + "/hang", max_bytes=1024, request_timeout=httpx.Timeout(0.2))
    assert silent.value.error.reason is ErrorReason.TIMEOUT and silent.value.delivered
    assert silent.value.error.message == "ReadTimeout: no answer in time"
    with pytest.raises(RequestFailed) as refused:
        await send(client, "POST", base + "/hang", max_bytes=1024)  # the server is gone: nothing listens
    assert refused.value.error.reason is ErrorReason.CONNECT and not refused.value.delivered
    assert refused.value.error.message.startswith("ConnectError: ")


async def test_then_runs_on_the_decoded_body_and_its_errors_propagate(client: httpx.AsyncClient) -> None:
    def refuse(data: Any) -> Any:
        raise ValueError(f"no thanks: {data}")

    async with serve({"/x": replying(answer(200, b"[1, 2]"))}) as (base, _):
        assert await request_json(client, "GET", base + "/x", max_bytes=1024, then=len) == (200, 2)
        with pytest.raises(ValueError, match=r"^no thanks: \[1, 2\]$"):
            await request_json(client, "GET", base + "/x", max_bytes=1024, then=refuse)


async def test_an_empty_body_is_none(client: httpx.AsyncClient) -> None:
    async with serve({"/x": replying(answer(204, b"", None))}) as (base, _):
        reply = await send(client, "POST", base + "/x", max_bytes=1024)
        assert reply.status == 204 and await read_json(reply) is None


# --- error bodies -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # Connect (every JAX-RS error), the Connect REST reference
        (b'{"error_code":404,"message":"Connector foo not found"}', "Connector foo not found"),
        (b'{"error_code":404,"message":"HTTP 404 Not Found"}', "HTTP 404 Not Found"),
        # Confluent Cloud Metrics API and Connect API, the Cloud API reference
        (
            b'{"errors":[{"status":"400","detail":"fieldA must not be null"},{"detail":"and B"}]}',
            "fieldA must not be null; and B",
        ),
        (b'{"errors":[{"status":"429","title":"Too many"}]}', "Too many"),
        (b'{"error":{"code":404,"message":"resource not found"}}', "resource not found"),
        (b'{"error":"plainly wrong"}', "plainly wrong"),
        # others: a JSON string, the basic-auth extension's plain text, gateway pages
        (b'"User cannot access the resource."', "User cannot access the resource."),
        (b"User cannot access the resource.\nmore detail", "User cannot access the resource."),
        (
            b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
            b"</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
            "502 Bad Gateway",
        ),
        (b'{"error_code":500,"message":"first line\\n\\tat Some.trace(Line:1)"}', "first line"),
        (b'{"error_code":500,"message":"a    spaced\\tmessage"}', "a spaced message"),
        (b'{"error_code":500,"message":"' + b"x" * 5000 + b'"}', '{"error_code":500,"message":"' + "x" * 271),
        (b"", "Reason"),
        (b'{"error_code":500,"message":""}', "Reason"),
        (b'{"unknown": "shape"}', '{"unknown": "shape"}'),
        (b"\xff\xfe not utf-8", "\ufffd\ufffd not utf-8"),
    ],
)
def test_error_bodies_of_every_documented_shape_become_one_line(body: bytes, expected: str) -> None:
    assert error_message(body, "Reason") == expected


def test_status_message_names_the_status() -> None:
    assert status_message(b"", 503, "Service Unavailable") == "HTTP 503: Service Unavailable"
    assert status_message(b"", 599) == "HTTP 599: no details"


async def test_a_refused_status_fails_as_http_status_with_the_body_message(client: httpx.AsyncClient) -> None:
    body = b'{"error_code":409,"message":"Cannot complete request because of a conflicting operation"}'
    async with serve({"/x": replying(answer(409, body))}) as (base, _):
        with pytest.raises(RequestFailed) as err:
            await request_json(client, "GET", base + "/x", max_bytes=1024)
        status, _ = await request_json(client, "GET", base + "/x", max_bytes=1024, expect=(200, 409))
    assert err.value.error.reason is ErrorReason.HTTP_STATUS and err.value.error.status == 409
    assert err.value.error.message == "HTTP 409: Cannot complete request because of a conflicting operation"
    assert status == 409


# --- one reason set ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (400, ErrorReason.CLIENT_ERROR),
        (401, ErrorReason.UNAUTHORIZED),
        (403, ErrorReason.FORBIDDEN),
        (404, ErrorReason.CLIENT_ERROR),
        (429, ErrorReason.RATE_LIMITED),
        (500, ErrorReason.SERVER_ERROR),
        (503, ErrorReason.SERVER_ERROR),
    ],
)
def test_a_status_has_one_specific_reason_counted_as_http_status_by_pollers(status: int, reason: ErrorReason) -> None:
    assert ErrorReason.for_status(status) is reason
    assert reason.coarse is ErrorReason.HTTP_STATUS


def test_transport_reasons_are_their_own_coarse_reason() -> None:
    for reason in (ErrorReason.TIMEOUT, ErrorReason.CONNECT, ErrorReason.HTTP_STATUS, ErrorReason.BAD_RESPONSE):
        assert reason.coarse is reason


def _documented_reasons(family: str) -> list[str]:
    row = next(line for line in (ROOT / "docs/metrics.md").read_text().splitlines() if line.startswith(f"| `{family}`"))
    described = row.split("|")[4]
    return re.findall(r"`([a-z_]+)`", described.split("by `reason`:", 1)[1])


def test_reason_label_values_are_exactly_the_documented_ones() -> None:
    assert list(ERROR_REASONS) == _documented_reasons("kafka_connect_exporter_poll_errors_total")
    assert list(CLOUD_API_REASONS) == _documented_reasons("kafka_connect_cloud_api_errors_total")
    assert set(ERROR_REASONS) | set(CLOUD_API_REASONS) == {r.value for r in ErrorReason}


def test_the_body_limits_are_the_documented_ones() -> None:
    security = " ".join((ROOT / "docs/security.md").read_text().split())
    assert f"Confluent Cloud answers are bounded the same way at {CLOUD_ANSWER_MAX_BYTES // 2**20} MiB" in security
    assert f"a restart's answer is read up to {SMALL_ANSWER_MAX_BYTES // 1024} KiB" in security


# --- one user agent ---------------------------------------------------------------------------------------------


async def test_connect_and_cloud_clients_send_the_one_user_agent() -> None:
    async with serve({"/": replying(answer(200, b"{}"))}) as (base, seen):
        connect = build_http_client(ClusterConfig(name="c", urls=[base]))
        cloud = CloudHttp(
            CloudConfig.model_validate(
                {
                    "api_key": "K",
                    "api_secret": "S",
                    "api_url": base,
                    "metrics_url": base,
                    "environments": [{"id": "env-1", "clusters": [{"id": "lkc-1"}]}],
                }
            ),
            SystemClock(),
        )
        try:
            await connect.get(base + "/")
            await cloud.client.get(base + "/")
        finally:
            await connect.aclose()
            await cloud.aclose()
    assert [h["user-agent"] for h in seen] == [USER_AGENT, USER_AGENT]
    assert re.fullmatch(r"kafka-connect-exporter/\S+", USER_AGENT)
