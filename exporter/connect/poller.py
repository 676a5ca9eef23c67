"""One poll cycle of one self-managed Connect cluster → one ``ClusterSnapshot``.

Per cycle: ``GET /`` on every configured worker (per-worker up and info), one
``GET /connectors?expand=status&expand=info`` on the first worker that answers (preferring the one that
answered last time), one probe of every worker the statuses name (``exporter.connect.workers``), and
``GET /connector-plugins`` on its slower cadence. A worker older than 2.3
ignores ``expand`` and returns a list of names; then the poller falls back to per-connector requests
with bounded concurrency. The whole cycle runs under a deadline, so a hung cluster ends its own cycle
and never delays anything else.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog

from exporter.connect.client import connector_path
from exporter.connect.config import ConnectClusterConfig
from exporter.connect.parse import (
    BadResponse,
    parse_connector,
    parse_connector_names,
    parse_expanded,
    parse_plugins,
    parse_server_info,
)
from exporter.connect.workers import ProbeResult, WorkerTracker, probe_all, probe_base, work_by_worker
from exporter.deadline import within
from exporter.model import (
    ClusterSnapshot,
    Connector,
    ErrorReason,
    NamedWorker,
    Plugin,
    PollError,
    PollStats,
    SourceKind,
    Worker,
    WorkerState,
    hold_last_known,
)
from exporter.repeats import RepeatLimiter
from exporter.transport import RequestFailed, request_json

log = structlog.get_logger("exporter.connect")

EXPAND_PARAMS: list[tuple[str, str | int | float | bool | None]] = [
    ("expand", "status"),
    ("expand", "info"),
]  # repeated, never "status,info" (KIP-465 quirk)


def _read_status(data: Any) -> Any:
    """The expanded statuses parsed, or a pre-2.3 worker's list of names as it is."""
    return data if isinstance(data, list) else parse_expanded(data)


@dataclass
class _Found:
    """What a cycle has read so far, kept when the deadline cuts the rest."""

    connectors: tuple[Connector, ...] | None = None
    status_url: str | None = None
    named_workers: tuple[NamedWorker, ...] = ()


class ConnectPoller:
    def __init__(
        self,
        cluster: ConnectClusterConfig,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
        last: ClusterSnapshot | None = None,
        warnings: RepeatLimiter | None = None,
    ) -> None:
        """``last``: the cluster's newest published snapshot, when a reload replaces the poller (its last known
        state is held across the swap)."""
        self.cluster = cluster
        self.client = client
        self.clock = clock
        # A worker that never answers fails every cycle: logged once, then summarised (and always counted).
        self.warnings = warnings if warnings is not None else RepeatLimiter()
        self._preferred = 0  # index of the worker that answered the status request last time
        self._plugins: tuple[Plugin, ...] = ()
        self._plugins_at: float | None = None
        self._errors: Counter[str] = Counter()
        self._ok = 0
        self._failed = 0
        self._last_success: float | None = None
        self._kafka_cluster_id = cluster.kafka_cluster_id  # configured, or the last one a majority reported
        self._foreign: dict[str, Worker] = {}
        self._tracker = WorkerTracker()
        self._unknown_logged: set[str] = set()  # worker ids already reported as never answering
        self._last = last  # the previous cycle's snapshot, for the last known state of a failed cycle

    async def poll(self) -> ClusterSnapshot:
        started = time.monotonic()
        try:
            return await self._cycle(started)
        except Exception as exc:
            # A bug, or an input no parser foresaw, must not leave the previous snapshot exported as current.
            log.exception("poll_crashed", cluster=self.cluster.name, error_type=type(exc).__name__)
            error = PollError(
                ErrorReason.BAD_RESPONSE,
                self.cluster.urls[0],
                f"unexpected {type(exc).__name__} while polling (see the poll_crashed log event)",
            )
            return self._snapshot(started, [error], {}, None, None)

    async def _cycle(self, started: float) -> ClusterSnapshot:
        errors: list[PollError] = []
        found = _Found()
        self._foreign = {}  # this cycle's workers that report another Kafka cluster
        probes = [asyncio.ensure_future(self._probe(url, errors)) for url in self.cluster.urls]
        try:
            await within(self.cluster.deadline, self._requests(probes, errors, found))
        except TimeoutError as exc:
            errors.append(
                PollError(
                    ErrorReason.TIMEOUT,
                    self.cluster.urls[0],
                    f"poll cycle cut at its deadline: {exc}",
                )
            )
        finally:
            for probe in probes:
                probe.cancel()
        # Probes that finished count even when the deadline cut the cycle; a status read that finished
        # before the deadline hit the plugin refresh is kept too.
        workers = {w.url: w for p in probes if p.done() and not p.cancelled() for w in [p.result()]}
        workers.update(self._foreign)
        named = found.named_workers
        return self._snapshot(started, errors, workers, found.connectors, found.status_url, named_workers=named)

    async def _requests(self, probes: list[asyncio.Task[Worker]], errors: list[PollError], found: _Found) -> None:
        connectors, status_url = await self._status(errors)
        await asyncio.wait(probes)
        foreign = self._foreign_workers([p.result() for p in probes if not p.cancelled()], errors)
        if status_url in foreign:  # the statuses came from another cluster: read them elsewhere
            connectors, status_url = await self._status(errors, exclude=foreign)
        found.connectors, found.status_url = connectors, status_url
        if connectors is not None and self.cluster.worker_probes.enabled:
            configured = {p.result().url: p.result() for p in probes if not p.cancelled()}
            found.named_workers = await self._probe_named(connectors, configured)
        if connectors is not None and self._plugins_due():
            await self._refresh_plugins(status_url, errors)

    async def _probe_named(
        self, connectors: tuple[Connector, ...], configured: dict[str, Worker]
    ) -> tuple[NamedWorker, ...]:
        """Probe every worker the statuses name (docs/metrics.md, "Workers named by the statuses").

        A named worker that is also a configured URL reuses this cycle's ``GET /`` of it: one probe per
        worker per cycle. Probe failures are the workers' state, not poll errors of the cluster.
        """
        work = work_by_worker(connectors)
        scheme = self.cluster.urls[0].split("://", 1)[0]
        bases = {wid: base for wid in work if (base := probe_base(wid, scheme)) is not None}
        known = {
            wid: ProbeResult(w.reachable, w.version, w.kafka_cluster_id, error=w.error)
            for wid, base in bases.items()
            if (w := configured.get(base)) is not None
        }
        probes = self.cluster.worker_probes
        results = await probe_all(
            self.client, bases, per_request=probes.timeout, concurrency=probes.concurrency, known=known
        )
        named = self._tracker.step(work, results, self._kafka_cluster_id)
        self._note_unknown(named)
        return named

    def _note_unknown(self, named: tuple[NamedWorker, ...]) -> None:
        """Say once per worker id that it never answered from here (maybe no route to worker addresses)."""
        for w in named:
            if w.state is WorkerState.UNKNOWN and w.worker_id not in self._unknown_logged:
                self._unknown_logged.add(w.worker_id)
                log.warning(
                    "worker_unknown",
                    cluster=self.cluster.name,
                    worker_id=w.worker_id,
                    error=w.error.message if w.error is not None else "not a host:port",
                    hint="the exporter may have no route to the workers' advertised addresses; not alerted on",
                )

    # -- requests --------------------------------------------------------------------------------------

    async def _get(self, base: str, path: str, errors: list[PollError], **kw: Any) -> Any:
        try:
            _, data = await request_json(
                self.client, "GET", base + path, max_bytes=self.cluster.max_response_size, **kw
            )
            return data
        except RequestFailed as exc:
            self._record(exc.error, errors)
            raise

    def _record(self, error: PollError, errors: list[PollError]) -> None:
        errors.append(error)
        self.warnings.warn(
            log,
            "poll_failed",
            (self.cluster.name, urlsplit(error.url).netloc, error.reason),  # per worker, whatever the path
            cluster=self.cluster.name,
            url=error.url,
            reason=error.reason.value,
            status=error.status,
            error=error.message,
        )

    async def _probe(self, url: str, errors: list[PollError]) -> Worker:
        try:
            data = await self._get(url, "/", errors)
            version, commit, cluster_id = parse_server_info(data)
        except RequestFailed as exc:
            return Worker(url=url, reachable=False, error=exc.error)
        except BadResponse as exc:
            err = PollError(ErrorReason.BAD_RESPONSE, url + "/", str(exc))
            self._record(err, errors)
            return Worker(url=url, reachable=False, error=err)
        return Worker(url=url, reachable=True, version=version, commit=commit, kafka_cluster_id=cluster_id)

    def _foreign_workers(self, workers: list[Worker], errors: list[PollError]) -> set[str]:
        """URLs of workers that report another Kafka cluster than the rest (or than configured).

        A load balancer or DNS entry pointing at another Connect cluster would otherwise mix two clusters'
        connectors into one. The expected id is the configured one or, unset, the majority's (ties go to the
        id accepted before, then to URL order); such a worker counts as down with a bad_response error.
        """
        ids = [w.kafka_cluster_id for w in workers if w.reachable and w.kafka_cluster_id]
        if not ids:
            return set()
        expected = self.cluster.kafka_cluster_id
        if expected is None:
            counts = Counter(ids)
            top = max(counts.values())
            leaders = [i for i in dict.fromkeys(ids) if counts[i] == top]
            expected = self._kafka_cluster_id if self._kafka_cluster_id in leaders else leaders[0]
            if self._kafka_cluster_id is not None and expected != self._kafka_cluster_id:
                log.warning(
                    "kafka_cluster_id_changed",
                    cluster=self.cluster.name,
                    previous=self._kafka_cluster_id,
                    current=expected,
                )
            self._kafka_cluster_id = expected
        foreign: set[str] = set()
        for w in workers:
            if w.reachable and w.kafka_cluster_id and w.kafka_cluster_id != expected:
                err = PollError(
                    ErrorReason.BAD_RESPONSE,
                    w.url + "/",
                    f"worker reports Kafka cluster {w.kafka_cluster_id!r} but cluster {self.cluster.name!r} is "
                    f"{expected!r}: is a load balancer or DNS entry pointing at another Connect cluster?",
                )
                self._record(err, errors)
                self._foreign[w.url] = Worker(
                    url=w.url, reachable=False, kafka_cluster_id=w.kafka_cluster_id, error=err
                )
                foreign.add(w.url)
        return foreign

    async def _status(
        self,
        errors: list[PollError],
        exclude: Collection[str] = (),
    ) -> tuple[tuple[Connector, ...] | None, str | None]:
        """Any worker answers for the whole cluster; on connection errors or timeouts try the next."""
        urls = self.cluster.urls
        order = [u for i in range(len(urls)) if (u := urls[(self._preferred + i) % len(urls)]) not in exclude]
        for url in order:
            try:
                # Thousands of connectors take tens of ms to parse: off the loop, so scrapes keep flowing.
                data = await self._get(url, "/connectors", errors, params=EXPAND_PARAMS, then=_read_status)
                if isinstance(data, list):  # a pre-2.3 worker: expand is unknown to it
                    connectors = await self._fallback(url, data, errors)
                else:
                    connectors, problems = data
                    for problem in problems:
                        self._record(PollError(ErrorReason.BAD_RESPONSE, url + "/connectors", problem), errors)
            except RequestFailed as exc:
                if exc.error.reason in (ErrorReason.CONNECT, ErrorReason.TIMEOUT) or (
                    exc.error.status is not None and exc.error.status >= 500
                ):
                    continue
                return None, None  # 401/403/404...: every worker of the cluster would say the same
            except BadResponse as exc:
                self._record(PollError(ErrorReason.BAD_RESPONSE, url + "/connectors", str(exc)), errors)
                continue
            self._preferred = urls.index(url)
            return connectors, url
        return None, None

    async def _fallback(self, url: str, names: list[Any], errors: list[PollError]) -> tuple[Connector, ...]:
        """Kafka < 2.3: 2 requests per connector, at most ``fallback_concurrency`` at a time."""
        names = [n for n in parse_connector_names(names) if self.cluster.watches(n)]
        limit = asyncio.Semaphore(self.cluster.fallback_concurrency)

        async def one(name: str) -> Connector | None:
            async with limit:
                try:
                    status, info = await asyncio.gather(
                        self._get_optional(url, connector_path(name, "status"), errors),
                        self._get_optional(url, connector_path(name), errors),
                    )
                except RequestFailed:
                    return None
                if status is None:  # deleted since the list was read, or no status written yet
                    return None
                try:
                    return parse_connector(name, status, info)
                except BadResponse as exc:
                    self._record(PollError(ErrorReason.BAD_RESPONSE, url + connector_path(name), str(exc)), errors)
                    return None

        results = await asyncio.gather(*(one(n) for n in names))
        failed = [e for e in errors if e.url.startswith(url + "/connectors/") and e.reason != ErrorReason.BAD_RESPONSE]
        if failed:
            # A partial list would make healthy connectors vanish from the scrape; fail the cycle instead.
            raise RequestFailed(failed[0])
        return tuple(sorted((c for c in results if c is not None), key=lambda c: c.name))

    async def _get_optional(self, base: str, path: str, errors: list[PollError]) -> Any:
        try:
            _, data = await request_json(
                self.client, "GET", base + path, expect=(200,), max_bytes=self.cluster.max_response_size
            )
            return data
        except RequestFailed as exc:
            if exc.error.status == 404:
                return None
            self._record(exc.error, errors)
            raise

    def _plugins_due(self) -> bool:
        return self._plugins_at is None or self.clock() - self._plugins_at >= self.cluster.plugins_interval

    async def _refresh_plugins(self, url: str | None, errors: list[PollError]) -> None:
        if url is None:
            return
        try:
            data = await self._get(url, "/connector-plugins", errors)
            self._plugins = parse_plugins(data)
            self._plugins_at = self.clock()
        except RequestFailed:
            pass  # keep the previous list; the failure is counted and logged
        except BadResponse as exc:
            self._record(PollError(ErrorReason.BAD_RESPONSE, url + "/connector-plugins", str(exc)), errors)

    # -- snapshot --------------------------------------------------------------------------------------

    def _watched(self, connectors: tuple[Connector, ...]) -> tuple[Connector, ...]:
        """The include/exclude filters, applied where the snapshot is built: metrics, the status page and the
        healer all read the snapshot, so a filtered connector is neither exported, shown nor healed."""
        if not self.cluster.include and not self.cluster.exclude:
            return connectors
        return tuple(c for c in connectors if self.cluster.watches(c.name))

    def _snapshot(
        self,
        started: float,
        errors: list[PollError],
        workers: dict[str, Worker],
        connectors: tuple[Connector, ...] | None,
        status_url: str | None,
        *,
        named_workers: tuple[NamedWorker, ...] = (),
    ) -> ClusterSnapshot:
        now = self.clock()
        up = connectors is not None
        if up:
            self._ok += 1
            self._last_success = now
        else:
            self._failed += 1
        for e in errors:
            self._errors[e.reason.value] += 1
        # Workers whose probe was cut off by the deadline are unreachable for this cycle.
        cut = PollError(ErrorReason.TIMEOUT, "", "no answer before the cycle deadline")
        ordered = tuple(workers.get(u) or Worker(url=u, reachable=False, error=cut) for u in self.cluster.urls)
        snapshot = ClusterSnapshot(
            cluster=self.cluster.name,
            kind=SourceKind.CONNECT,
            taken_at=now,
            duration=time.monotonic() - started,
            up=up,
            poll_interval=self.cluster.poll_interval,
            workers=ordered,
            connectors=self._watched(connectors or ()),
            plugins=self._plugins if up else (),
            errors=tuple(errors),
            stats=PollStats(self._ok, self._failed, MappingProxyType(dict(self._errors))),
            last_success=self._last_success,
            status_url=status_url,
            named_workers=named_workers if up else (),
        )
        self._last = hold_last_known(snapshot, self._last, self.cluster.stale_after)
        return self._last
