"""Auto-heal of managed connectors: what the shared policy sees of a Cloud snapshot, and the restart request.

The policy (``exporter.healer.policy``) restarts targets whose state is FAILED. A managed connector reports
failure as the connector state FAILED or the task states SYSTEM_ERROR (Confluent's side) and
USER_ACTIONABLE_ERROR (the user's config or data), under a connector that may be DEGRADED ("operational but
not at full capacity"). ``policy_view`` translates: every such target is FAILED, a DEGRADED connector is
RUNNING (its failed tasks are then candidates), and each failed target's first line reads
``<STATE>: <message>``, so skip rules (the default ``user-actionable`` one) can tell the two apart.

Connect API v1 has one restart request, ``POST …/connectors/{name}/restart`` (Preview, 202, asynchronous):
it restarts the connector and all of its tasks; there is no per-task restart. ``CloudRestarter`` sends it
through the source's ``CloudHttp``, so restarts share the request budget with status and metrics queries.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote

import structlog

from exporter.cloud.http import Api, CloudHttp, CloudRequestError
from exporter.healer.client import Answer, Sent
from exporter.healer.policy import Outcome, RestartGroup, Result, TargetKey
from exporter.model import FAILED, RUNNING, ClusterSnapshot, ErrorReason, Task

log = structlog.get_logger("exporter.cloud")

SYSTEM_ERROR = "SYSTEM_ERROR"
USER_ACTIONABLE_ERROR = "USER_ACTIONABLE_ERROR"
TASK_ERROR_STATES = frozenset({FAILED, SYSTEM_ERROR, USER_ACTIONABLE_ERROR})
DEGRADED = "DEGRADED"
# Not received, or not processed: tried again at the next round without spending an attempt.
_NOT_NOW = frozenset({ErrorReason.RATE_LIMITED, ErrorReason.SERVER_ERROR, ErrorReason.TIMEOUT, ErrorReason.CONNECT})


def _line(state: str, message: str | None) -> str:
    return f"{state}: {message}" if message else state


def policy_view(snapshot: ClusterSnapshot) -> ClusterSnapshot:
    """The snapshot as the auto-heal policy reads it (see the module docstring)."""
    connectors = []
    for c in snapshot.connectors:
        tasks = tuple(
            Task(t.id, FAILED, t.worker_id, _line(t.state, t.trace)) if t.state in TASK_ERROR_STATES else t
            for t in c.tasks
        )
        state, trace = c.state, c.trace
        if c.state == FAILED:
            # All tasks in error, or none at all: a restart helps unless every failed task is the user's.
            errors = {t.state for t in c.tasks if t.state in TASK_ERROR_STATES}
            trace = _line(USER_ACTIONABLE_ERROR if errors == {USER_ACTIONABLE_ERROR} else FAILED, c.trace)
        elif c.state == DEGRADED:
            state = RUNNING
        connectors.append(replace(c, state=state, trace=trace, tasks=tasks))
    return replace(snapshot, connectors=tuple(connectors))


class CloudRestarter:
    """Restarts one Kafka cluster's managed connectors (``exporter.healer.runner.Restarter``)."""

    def __init__(self, http: CloudHttp, connectors_url: str, cluster: str) -> None:
        self.http = http
        self.connectors_url = connectors_url  # …/environments/{env}/clusters/{lkc}/connectors
        self.cluster = cluster
        self.stopped: str | None = None

    def resume(self) -> None:
        self.stopped = None

    def _url(self, connector: str, *rest: str) -> str:
        return "/".join((self.connectors_url, quote(connector, safe=""), *rest))

    async def restart(self, group: RestartGroup, preferred: str | None) -> tuple[list[Sent], list[TargetKey]]:
        """One request restarts the connector and its tasks: every target of the group shares its answer."""
        del preferred  # one API endpoint, no workers to choose from
        if self.stopped is not None:
            return [], list(group.targets)
        url = self._url(group.connector, "restart")
        try:
            resp = await self.http.request(Api.CONNECT, "POST", url, retry_on=frozenset({ErrorReason.RATE_LIMITED}))
        except CloudRequestError as exc:
            answer = Answer(url, exc.status, exc.message, exc.status is not None)
            outcome, spent, forget = await self._classify(group.connector, exc)
            return [Sent(Result(k, outcome, spent, forget), answer) for k in group.targets], []
        answer = Answer(url, resp.status, "accepted", True)
        return [Sent(Result(k, Outcome.ACCEPTED, True), answer) for k in group.targets], []

    async def _classify(self, connector: str, exc: CloudRequestError) -> tuple[Outcome, bool, bool]:
        """(outcome, attempt spent, whole connector gone) of a failed restart request."""
        exists = await self._exists(connector) if exc.status == 404 else None
        if exc.status == 404 and exists is None:
            return Outcome.ERROR, False, False  # cannot tell a missing route from a missing connector: next round
        if exc.status == 405 or exists:
            # The connector is there but the endpoint is not: this account or region lacks the (Preview)
            # restart. Say it once and stop trying on this cluster until a retry is requested.
            self.stopped = f"HTTP {exc.status} from the restart endpoint: this account does not offer it"
            log.warning(
                "ccloud_autoheal_unsupported",
                connect_cluster=self.cluster,
                status=exc.status,
                url=exc.url,
                error=exc.message,
                hint="POST …/connectors/{name}/restart is Preview; auto-heal stops on this cluster until "
                "POST /-/autoheal/retry",
            )
            return Outcome.UNSUPPORTED, False, False
        if exc.status == 404:
            return Outcome.NOT_FOUND, False, True  # deleted since the status read
        if exc.status == 409:
            return Outcome.CONFLICT, False, False
        if exc.reason in _NOT_NOW:
            return Outcome.ERROR, False, False
        return Outcome.ERROR, True, False  # 400/401/403/…: refused; spend the attempt so backoff applies

    async def _exists(self, connector: str) -> bool | None:
        """Whether the connector's status reads (a 404 of the restart is then the route's, not the name's);
        None when the status read failed otherwise."""
        try:
            await self.http.request(Api.CONNECT, "GET", self._url(connector, "status"))
        except CloudRequestError as exc:
            return False if exc.status == 404 else None
        return True
