"""Workers as the statuses name them: discover, probe, and tell reachable from lost from unknown.

Connect's statuses name each connector's and task's worker (``worker_id``, the worker's advertised REST
``host:port``). After a ``kill -9`` those statuses stay RUNNING under the dead worker's id until the
rebalance delay (``scheduled.rebalance.max.delay.ms``, 5 minutes by default) moves the work, so asking the
named workers themselves is the only way to see the gap. Each cycle every named worker gets one probe:
``GET /`` and, on Kafka >= 3.9, ``GET /health`` (KIP-1017), with the cluster's own client (scheme, TLS,
auth, headers), a short timeout per request and bounded concurrency.

``WorkerTracker`` is the pure part (no I/O, no clock): reachable when it answered this cycle, lost when it
answered before and not now, unknown when it never answered from here; a worker id no status names any
more is forgotten.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from exporter.connect.parse import BadResponse, parse_server_info
from exporter.deadline import within
from exporter.model import UNHEALTHY, WORKER_HEALTH_STATES, Connector, ErrorReason, NamedWorker, PollError, WorkerState
from exporter.transport import RequestFailed, request_json
from exporter.versions import HEALTH_ENDPOINT, at_least

# GET / and GET /health answer a few hundred bytes; anything far larger is not a Connect worker.
PROBE_MAX_BYTES = 64 * 1024

# A worker id is host:port; the host may be an IPv6 literal in brackets (URI.getHost() keeps them).
_WORKER_ID = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(?P<port>\d{1,5})$")


@dataclass(frozen=True, slots=True)
class Work:
    tasks: int = 0
    connectors: int = 0


def work_by_worker(connectors: Iterable[Connector]) -> dict[str, Work]:
    """Every worker id the statuses name, with the connectors and tasks assigned to it (sorted by id)."""
    tasks: Counter[str] = Counter()
    owned: Counter[str] = Counter()
    for c in connectors:
        if c.worker_id:
            owned[c.worker_id] += 1
        for t in c.tasks:
            if t.worker_id:
                tasks[t.worker_id] += 1
    return {w: Work(tasks[w], owned[w]) for w in sorted(set(tasks) | set(owned))}


def probe_base(worker_id: str, scheme: str) -> str | None:
    """The base URL to probe a worker id at, or None when the id is no ``host:port`` (never probed)."""
    m = _WORKER_ID.match(worker_id)
    if m is None or not 0 < int(m.group("port")) < 65536:
        return None
    return f"{scheme}://{m.group('host')}:{m.group('port')}"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    answered: bool  # GET / answered 2xx with a server info
    version: str | None = None
    kafka_cluster_id: str | None = None
    health: str | None = None
    error: PollError | None = None


def health_of(status: int, data: Any) -> str:
    """The worker status ``GET /health`` reports: its ``status`` field, else what the HTTP status means
    (200 healthy, 503 starting, any other answer unhealthy, e.g. the 500 of a worker shutting down)."""
    if isinstance(data, dict) and data.get("status") in WORKER_HEALTH_STATES:
        return str(data["status"])
    return {200: "healthy", 503: "starting"}.get(status, UNHEALTHY)


async def probe_one(
    client: httpx.AsyncClient, base: str, per_request: float, known: ProbeResult | None = None
) -> ProbeResult:
    """``GET /`` then, on >= 3.9, ``GET /health``; each cut after ``per_request`` seconds.

    ``known``: this cycle's ``GET /`` answer of a configured URL that is this worker (not asked twice).
    """
    if known is not None:
        if not known.answered:
            return known
        version, cluster_id = known.version, known.kafka_cluster_id
        return await _with_health(client, base, per_request, (version, cluster_id))
    try:
        _, data = await within(per_request, request_json(client, "GET", base + "/", max_bytes=PROBE_MAX_BYTES))
        version, _, cluster_id = parse_server_info(data)
    except RequestFailed as exc:
        return ProbeResult(False, error=exc.error)
    except TimeoutError:
        cut = PollError(ErrorReason.TIMEOUT, base + "/", f"no answer within {per_request:g}s")
        return ProbeResult(False, error=cut)
    except BadResponse as exc:
        return ProbeResult(False, error=PollError(ErrorReason.BAD_RESPONSE, base + "/", str(exc)))
    return await _with_health(client, base, per_request, (version, cluster_id))


async def _with_health(
    client: httpx.AsyncClient, base: str, per_request: float, info: tuple[str | None, str | None]
) -> ProbeResult:
    version, cluster_id = info
    if not at_least(version, HEALTH_ENDPOINT):
        return ProbeResult(True, version, cluster_id)
    try:
        status, body = await within(
            per_request,
            request_json(client, "GET", base + "/health", expect=(200, 500, 503), max_bytes=PROBE_MAX_BYTES),
        )
        health = health_of(status, body)
    except TimeoutError:
        # The worker answered / but its herder did not run a no-op in time: what Connect itself calls
        # unhealthy (after 10 s, longer than a probe waits).
        health = UNHEALTHY
    except RequestFailed as exc:
        # Another status, or a body that is not JSON: say nothing rather than guess.
        return ProbeResult(True, version, cluster_id, error=exc.error)
    return ProbeResult(True, version, cluster_id, health)


async def probe_all(
    client: httpx.AsyncClient,
    bases: Mapping[str, str],
    *,
    per_request: float,
    concurrency: int,
    known: Mapping[str, ProbeResult] | None = None,
) -> dict[str, ProbeResult]:
    """Probe each worker id once (``bases``: worker id -> base URL), at most ``concurrency`` at a time.

    ``known``: GET / answers of this cycle by worker id (configured URLs that are named workers).
    """
    limit = asyncio.Semaphore(concurrency)
    answers = known or {}

    async def one(wid: str) -> ProbeResult:
        async with limit:
            return await probe_one(client, bases[wid], per_request, answers.get(wid))

    ids = list(bases)
    results = await asyncio.gather(*(one(i) for i in ids))
    return dict(zip(ids, results, strict=True))


class WorkerTracker:
    """Which named workers answered before: the memory that tells lost from unknown. Pure."""

    def __init__(self) -> None:
        self._answered: set[str] = set()  # answered at some cycle and named ever since

    def step(
        self,
        work: Mapping[str, Work],
        results: Mapping[str, ProbeResult],
        expected_cluster_id: str | None,
    ) -> tuple[NamedWorker, ...]:
        """One cycle: ``work`` is every worker id the statuses name now, ``results`` this cycle's probes.

        A worker that reports another Kafka cluster than expected did not answer as this cluster's worker.
        A worker id missing from ``work`` is forgotten: if it comes back, it is unknown until it answers.
        """
        out: list[NamedWorker] = []
        answered: set[str] = set()
        for wid, w in work.items():
            r = results.get(wid)
            error = r.error if r is not None else None
            ok = r is not None and r.answered
            if ok and r is not None and expected_cluster_id and r.kafka_cluster_id not in (None, expected_cluster_id):
                ok = False
                error = PollError(
                    ErrorReason.BAD_RESPONSE,
                    wid,
                    f"worker reports Kafka cluster {r.kafka_cluster_id!r}, not {expected_cluster_id!r}",
                )
            if ok and r is not None:
                answered.add(wid)
                out.append(NamedWorker(wid, WorkerState.REACHABLE, w.tasks, w.connectors, r.version, r.health, error))
            elif wid in self._answered:
                answered.add(wid)  # stays lost until it answers again or no status names it
                out.append(NamedWorker(wid, WorkerState.LOST, w.tasks, w.connectors, error=error))
            else:
                out.append(NamedWorker(wid, WorkerState.UNKNOWN, w.tasks, w.connectors, error=error))
        self._answered = answered
        return tuple(out)
