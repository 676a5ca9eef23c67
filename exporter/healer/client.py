"""Sends the restarts the policy asked for, and says what became of each (the healer's only network I/O).

Connect >= 3.0: one ``POST /connectors/{c}/restart?includeTasks=true&onlyFailed=true`` (202 + plan).
Older workers: ``POST /connectors/{c}/restart`` (204) for a FAILED connector, then
``POST /connectors/{c}/tasks/{t}/restart`` (204) per FAILED task. connect-rest.md §0, §2 and §3 give the
statuses and messages classified here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from exporter.connect.client import connector_path
from exporter.healer.config import AutohealCluster
from exporter.healer.policy import Outcome, RestartGroup, Result, TargetKey
from exporter.transport import SMALL_ANSWER_MAX_BYTES, RequestFailed, error_message, send

# 404 messages (distributed and standalone herders, connect-rest.md §3).
_TASK_GONE = re.compile(r"^(Unknown task: |Task \S.* not found$)")
_CONNECTOR_GONE = re.compile(
    r"^(Unknown connector:? |Connector \S.* not found$"
    r"|Status for connector \S.* not found$|No status found for connector )"
)
# 500s that mean "not now", not "no": a rebalance, or the worker's own 90 s request timeout.
_REBALANCE = re.compile(r"rebalance", re.IGNORECASE)
_TIMED_OUT = re.compile(r"^Request (timed out|interrupted)|^IO Error trying to forward REST request")


@dataclass(frozen=True, slots=True)
class Answer:
    """One request's fate: an HTTP status and message, or why no status came back."""

    url: str
    status: int | None
    message: str
    delivered: bool  # False: the connection failed, so the worker never saw the request

    def describe(self) -> str:
        return f"HTTP {self.status}: {self.message}" if self.status is not None else self.message


@dataclass(frozen=True, slots=True)
class Sent:
    result: Result
    answer: Answer


def classify(key: TargetKey, answer: Answer) -> Result:
    status = answer.status
    if status in (200, 202, 204):
        return Result(key, Outcome.ACCEPTED, spent=True)
    if status == 404:
        return _not_found(key, answer.message)
    unspent = _not_acted_on(key, status, answer.message)
    if unspent is not None:
        return Result(key, unspent, spent=False)
    # 400/401/403/other 500s: the worker saw and refused it. Spend the attempt so backoff applies.
    return Result(key, Outcome.ERROR, spent=True)


def _not_found(key: TargetKey, message: str) -> Result:
    if _TASK_GONE.match(message):
        return Result(key, Outcome.NOT_FOUND, spent=False)
    if _CONNECTOR_GONE.match(message):
        return Result(key, Outcome.NOT_FOUND, spent=False, forget_connector=True)
    # "HTTP 404 Not Found": the route is unknown (a proxy path, say). An error, and it backs off.
    return Result(key, Outcome.ERROR, spent=True)


def _not_acted_on(key: TargetKey, status: int | None, message: str) -> Outcome | None:
    """The outcome of an answer that says the worker did not act on the request (no attempt spent), or None."""
    if status is None:
        return Outcome.ERROR  # connection failures and timeouts: retried next cycle
    if status == 409 or (status == 500 and _REBALANCE.search(message)):
        return Outcome.CONFLICT
    if (status == 500 and _TIMED_OUT.match(message)) or status in (502, 503, 504):
        return Outcome.ERROR  # the request timed out inside Connect, or a proxy in front of the workers failed
    if status == 400 and ("\\" in key.connector or "%" in key.connector):
        # Jetty's answer to %5C/%25 in any path: this name can never be restarted over REST.
        return Outcome.NOT_ADDRESSABLE
    return None


class RestartClient:
    """Restart requests to one cluster, through the cluster's own client (its pool, auth, TLS and headers),
    which the caller owns and closes."""

    stopped: str | None = None  # every Connect worker has the restart endpoints

    def __init__(self, cluster: AutohealCluster, client: httpx.AsyncClient) -> None:
        self._client = client
        self._urls = tuple(cluster.urls)
        self._timeout = httpx.Timeout(cluster.autoheal.request_timeout)

    def resume(self) -> None:
        """Nothing to resume: a Connect worker's restarts never stop for good."""

    def _order(self, preferred: str | None) -> list[str]:
        """The worker that answered the last status read first: it was alive a moment ago."""
        urls = list(self._urls)
        if preferred in urls:
            urls.remove(preferred)
            urls.insert(0, preferred)
        return urls

    async def post(self, path: str, params: dict[str, str] | None, preferred: str | None) -> Answer:
        last: Answer | None = None
        for base in self._order(preferred):
            url = base + path
            try:
                reply = await send(
                    self._client,
                    "POST",
                    url,
                    max_bytes=SMALL_ANSWER_MAX_BYTES,
                    params=params,
                    request_timeout=self._timeout,
                    head_only=True,  # never buffer a huge or hostile body: its head holds the message
                )
            except RequestFailed as exc:
                answer = Answer(url, None, exc.error.message, exc.delivered)
                if exc.delivered:
                    return answer  # it may have arrived: do not send it again elsewhere in this cycle
                last = answer  # never reached the worker: safe to try the next one
                continue
            return Answer(url, reply.status, error_message(reply.body, reply.reason_phrase), True)
        assert last is not None  # the config requires at least one URL
        return last

    async def restart(self, group: RestartGroup, preferred: str | None) -> tuple[list[Sent], list[TargetKey]]:
        """Send the group's restarts; return what was sent and what was not (after a 409, say)."""
        sent: list[Sent] = []
        pending: list[TargetKey] = list(group.targets)
        if group.combined:
            answer = await self.post(
                connector_path(group.connector, "restart"), {"includeTasks": "true", "onlyFailed": "true"}, preferred
            )
            if answer.status == 202:
                return [Sent(Result(k, Outcome.ACCEPTED, True), answer) for k in pending], []
            if answer.status == 204:
                # The worker ignored the parameters (it is older than it said): only the connector
                # instance was restarted. Restart the tasks one by one below.
                done = [k for k in pending if k.task is None]
                sent.extend(Sent(Result(k, Outcome.ACCEPTED, True), answer) for k in done)
                pending = [k for k in pending if k.task is not None]
            else:
                results = [classify(k, answer) for k in pending]
                return [Sent(r, answer) for r in results], []
        return await self._one_by_one(group.connector, pending, preferred, sent)

    async def _one_by_one(
        self, connector: str, keys: Sequence[TargetKey], preferred: str | None, sent: list[Sent]
    ) -> tuple[list[Sent], list[TargetKey]]:
        keys = sorted(keys, key=TargetKey.sort_key)  # the connector instance before its tasks
        for i, key in enumerate(keys):
            if key.task is None:
                path = connector_path(connector, "restart")
            else:
                path = connector_path(connector, "tasks", str(key.task), "restart")
            answer = await self.post(path, None, preferred)
            result = classify(key, answer)
            sent.append(Sent(result, answer))
            if result.outcome is Outcome.NOT_ADDRESSABLE:
                # The name is the problem: every other part of the connector would get the same 400.
                rest = [Sent(Result(k, Outcome.NOT_ADDRESSABLE, spent=False), answer) for k in keys[i + 1 :]]
                return [*sent, *rest], []
            if result.outcome is Outcome.NOT_FOUND and result.forget_connector:
                return sent, []  # the whole connector is gone; nothing left to restart
            if result.outcome is Outcome.CONFLICT or (result.outcome is Outcome.ERROR and not result.spent):
                return sent, list(keys[i + 1 :])  # a rebalance or an unreachable cluster: next cycle
        return sent, []
