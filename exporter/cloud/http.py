"""Requests to Confluent Cloud: one request budget, retries with capped jittered backoff, typed errors.

Every failed attempt is counted by API and reason. Conditions (401, 403, an outage) are logged when
they start and when they end, not on every cycle. The API secret is never logged; as a last line of
defence every message that leaves this module is scrubbed of it.
"""

from __future__ import annotations

import email.utils
import random
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx
import structlog

from exporter.cloud.clock import Clock
from exporter.cloud.config import CloudConfig
from exporter.model import ErrorReason
from exporter.transport import (
    CLOUD_ANSWER_MAX_BYTES,
    USER_AGENT,
    RequestFailed,
    read_json,
    send,
    status_message,
)

log = structlog.get_logger("exporter.cloud")

BACKOFF_BASE = 1.0
BACKOFF_CAP = 30.0
RATE_LIMIT_FALLBACK = 10.0  # wait after a 429 that names no reset time
MAX_RATE_LIMIT_WAIT = 300.0  # a reset header larger than this is treated as bogus


class Api(StrEnum):
    METRICS = "metrics"
    CONNECT = "connect"


# The ``reason`` values of ``kafka_connect_cloud_api_errors_total``, in the documented order: a non-success
# status is told apart by its status (``ErrorReason.for_status``).
REASONS: tuple[str, ...] = tuple(
    r.value
    for r in (
        ErrorReason.UNAUTHORIZED,
        ErrorReason.FORBIDDEN,
        ErrorReason.RATE_LIMITED,
        ErrorReason.SERVER_ERROR,
        ErrorReason.TIMEOUT,
        ErrorReason.CONNECT,
        ErrorReason.BAD_RESPONSE,
        ErrorReason.CLIENT_ERROR,
    )
)
RETRYABLE = frozenset({ErrorReason.RATE_LIMITED, ErrorReason.SERVER_ERROR, ErrorReason.TIMEOUT, ErrorReason.CONNECT})


class CloudRequestError(Exception):
    def __init__(
        self,
        api: Api,
        reason: ErrorReason,
        url: str,
        message: str,
        status: int | None = None,
        *,
        wait: float | None = None,
    ) -> None:
        super().__init__(message)
        self.wait = wait  # seconds before a retry, when the error itself says so
        self.api = api
        self.reason = reason
        self.url = url
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: httpx.Headers
    data: Any


def _numbers(values: list[str]) -> list[float]:
    out: list[float] = []
    for value in values:
        for part in value.split(","):
            try:
                out.append(float(part.strip()))
            except ValueError:
                continue
    return out


def rate_limit_wait(headers: httpx.Headers, now: float) -> float | None:
    """Seconds to wait after a 429: ``rateLimit-reset`` (relative seconds; two scopes may send two
    values, as repeated headers or a list: the longest wins) or ``Retry-After`` (seconds or a date)."""
    waits = [w for w in _numbers(headers.get_list("ratelimit-reset")) if w >= 0]
    waits += [w for w in _numbers(headers.get_list("x-ratelimit-reset")) if w >= 0]
    for value in headers.get_list("retry-after"):
        try:
            waits.append(max(0.0, float(value)))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                continue
            waits.append(max(0.0, when.timestamp() - now))
    if not waits:
        return None
    return min(max(waits), MAX_RATE_LIMIT_WAIT)


class RequestBudget:
    """At most ``per_minute`` requests in any 60 s, and nothing at all while a 429 reset is pending."""

    def __init__(self, per_minute: int, clock: Clock) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._sent: deque[float] = deque()
        self._blocked_until = 0.0

    def block_until(self, when: float) -> None:
        self._blocked_until = max(self._blocked_until, when)

    async def acquire(self) -> None:
        while True:
            now = self.clock.time()
            if now < self._blocked_until:
                await self.clock.sleep(self._blocked_until - now)
                continue
            while self._sent and self._sent[0] <= now - 60.0:
                self._sent.popleft()
            if len(self._sent) < self.per_minute:
                self._sent.append(now)
                return
            await self.clock.sleep(self._sent[0] + 60.0 - now)


class Health:
    """Up/down per API and scope, failure counts, and log lines only when a condition changes."""

    def __init__(self) -> None:
        self.errors: Counter[tuple[str, str]] = Counter()
        self._scopes: dict[tuple[Api, str], tuple[str, int | None] | None] = {}

    def count(self, api: Api, reason: ErrorReason) -> None:
        self.errors[(api.value, reason.value)] += 1

    def ok(self, api: Api, scope: str = "") -> None:
        previous = self._scopes.get((api, scope), "unset")
        self._scopes[(api, scope)] = None
        if previous not in ("unset", None):
            log.info("ccloud_api_recovered", api=api.value, scope=scope or None)

    def failed(self, api: Api, error: CloudRequestError, scope: str = "") -> None:
        condition = (error.reason.value, error.status)
        previous = self._scopes.get((api, scope))
        self._scopes[(api, scope)] = condition
        if previous != condition:
            hint = {
                ErrorReason.UNAUTHORIZED: "check the Cloud API key and secret (a Kafka cluster API key does not work)",
                ErrorReason.FORBIDDEN: "grant the key's principal MetricsViewer"
                if api == Api.METRICS
                else "grant the key's principal a role that can read the cluster's connectors",
                ErrorReason.CLIENT_ERROR: "check the environment and cluster ids" if api == Api.CONNECT else None,
            }.get(error.reason)
            log.warning(
                "ccloud_api_failing",
                api=api.value,
                scope=scope or None,
                reason=error.reason.value,
                status=error.status,
                url=error.url,
                error=error.message,
                hint=hint,
            )
        else:
            log.debug("ccloud_api_still_failing", api=api.value, scope=scope or None, reason=error.reason.value)

    def up(self) -> dict[str, bool]:
        out: dict[str, bool] = {}
        for (api, _), condition in self._scopes.items():
            out[api.value] = out.get(api.value, True) and condition is None
        return out

    def reason(self, api: Api) -> str | None:
        for (a, _), condition in self._scopes.items():
            if a == api and condition is not None:
                return condition[0]
        return None


class CloudHttp:
    """One keep-alive client for both APIs, with Cloud API key auth."""

    def __init__(self, config: CloudConfig, clock: Clock, *, rng: random.Random | None = None) -> None:
        self.config = config
        self.clock = clock
        self.budget = RequestBudget(config.max_requests_per_minute, clock)
        self.health = Health()
        self.rng = rng or random.Random()  # noqa: S311 (jitter, not cryptography)
        self._secret = config.secret().get_secret_value()
        self.client = httpx.AsyncClient(
            auth=httpx.BasicAuth(config.key().get_secret_value(), self._secret),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            timeout=httpx.Timeout(config.request_timeout),
            follow_redirects=True,  # the API asks clients to follow 301/307
            trust_env=False,
            proxy=config.proxy,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    def scrub(self, text: str) -> str:
        return text.replace(self._secret, "********") if self._secret else text

    def _backoff(self, attempt: int) -> float:
        # Full jitter: spreads the retries of many exporters behind one NAT.
        return self.rng.uniform(0.0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))

    async def request(
        self,
        api: Api,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        retry_on: frozenset[ErrorReason] = RETRYABLE,
    ) -> Response:
        """``retry_on``: the failures retried here (a restart retries only 429s, which were not processed)."""
        attempt = 0
        while True:
            await self.budget.acquire()
            try:
                return await self._once(api, method, url, params, json_body)
            except CloudRequestError as exc:
                self.health.count(api, exc.reason)
                exc.message = self.scrub(exc.message)
                if exc.reason not in retry_on or attempt >= self.config.max_retries:
                    raise
                wait = exc.wait if exc.wait is not None else self._backoff(attempt)
                log.debug("ccloud_retry", api=api.value, url=url, reason=exc.reason.value, status=exc.status, wait=wait)
                attempt += 1
                await self.clock.sleep(wait)

    async def _once(
        self, api: Api, method: str, url: str, params: Mapping[str, str] | None, json_body: Any
    ) -> Response:
        try:
            reply = await send(
                self.client, method, url, max_bytes=CLOUD_ANSWER_MAX_BYTES, params=params, json_body=json_body
            )
            if 200 <= reply.status < 300:
                return Response(reply.status, reply.headers, await read_json(reply))
        except RequestFailed as exc:
            error = exc.error
            raise CloudRequestError(api, error.reason, url, error.message, error.status) from None

        status = reply.status
        message = status_message(reply.body, status, reply.reason_phrase)
        reason = ErrorReason.for_status(status)
        if reason is ErrorReason.RATE_LIMITED:
            wait = rate_limit_wait(reply.headers, self.clock.time())
            wait = RATE_LIMIT_FALLBACK if wait is None else wait
            # Jitter on top of the reset, so exporters sharing an IP do not all return at once.
            wait += self.rng.uniform(0.0, min(5.0, 0.1 * wait + 1.0))
            self.budget.block_until(self.clock.time() + wait)
            # wait=0: the budget already holds every request back until the reset.
            raise CloudRequestError(api, reason, url, f"{message} (retry in {wait:.0f}s)", status, wait=0.0)
        raise CloudRequestError(api, reason, url, message, status)
