"""The Confluent Cloud source: scheduled jobs that read both APIs and return what they read (the daemon publishes).

- one status job per watched Kafka cluster: ``GET /connect/v1/environments/{env}/clusters/{lkc}/
  connectors?expand=id,info,status`` → one ``ClusterSnapshot(kind=CLOUD)`` per cycle;
- one throughput job for all clusters: per metric, ``POST /v2/metrics/cloud/query`` for all watched
  connectors at once (batched into filters of ``connectors_per_query`` ids, paged by token), counted
  exactly once per minute bucket by ``Ledger``.

Request budget per throughput cycle: ``len(metrics) x ceil(connectors / connectors_per_query) x pages``,
normally 5 requests a minute; status adds one request per cluster per ``status_interval``. Whatever the
sizes, ``RequestBudget`` keeps the total under ``max_requests_per_minute`` (≤ 300, the API's limit).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple
from urllib.parse import quote

import structlog

from exporter.cloud.clock import Clock, SystemClock
from exporter.cloud.config import MAX_PT1M_WINDOW, METRIC_PREFIX, CloudClusterConfig, CloudConfig
from exporter.cloud.counters import Ledger, Owner, Window
from exporter.cloud.http import REASONS, Api, CloudHttp, CloudRequestError
from exporter.cloud.query import BadResponse, batches, parse_descriptors, parse_page, query_body
from exporter.cloud.reading import CloudReading
from exporter.cloud.status import parse_expanded
from exporter.deadline import within
from exporter.model import (
    ClusterSnapshot,
    Connector,
    ErrorReason,
    PollError,
    PollStats,
    SourceKind,
    hold_last_known,
)

log = structlog.get_logger("exporter.cloud")

MAX_PAGES = 1000
APIS: tuple[str, ...] = (Api.CONNECT.value, Api.METRICS.value)  # in exposition order
DESCRIPTOR_REFRESH = 6 * 3600.0


class CloudJob(NamedTuple):
    id: str
    interval: float
    run: Callable[[], Awaitable[Sequence[object]]]  # returns the snapshot and readings to publish, in order


class _ClusterState:
    def __init__(self, env: str, config: CloudClusterConfig) -> None:
        self.env = env
        self.config = config
        self.ok = 0
        self.failed = 0
        self.errors: Counter[str] = Counter()
        self.last_success: float | None = None
        self.connectors: tuple[Connector, ...] | None = None  # from the newest successful cycle
        self.last: ClusterSnapshot | None = None  # the newest published snapshot (its last known state)


class CloudSource:
    def __init__(
        self,
        config: CloudConfig,
        clock: Clock | None = None,
        *,
        last: Mapping[str, ClusterSnapshot] | None = None,
    ) -> None:
        """Its clusters (``clusters``) are what the store should expect; ``reading()`` is the first reading.
        ``last``: the newest snapshot of each cluster so far (a reload's new source holds the old one's last known
        state)."""
        last = last or {}
        self.config = config
        self.clock = clock or SystemClock()
        self.http = CloudHttp(config, self.clock)
        self.metrics: tuple[str, ...] = tuple(config.metrics)
        self.ledger = Ledger(
            config.metrics,
            delay=config.metrics_delay,
            max_backfill=config.max_backfill,
            max_window=MAX_PT1M_WINDOW,
        )
        self.clusters = {c.label: _ClusterState(env, c) for env, c in config.cluster_envs()}
        self._metrics_lock = asyncio.Lock()
        self._status_locks = {name: asyncio.Lock() for name in self.clusters}
        self._descriptors_at: float | None = None
        self._missing_metrics: frozenset[str] = frozenset()
        for name, st in self.clusters.items():
            st.last = last.get(name)  # a reload's new source holds the old one's last known state

    def jobs(self) -> list[CloudJob]:
        out = [
            CloudJob(f"ccloud-status:{name}", self.config.status_interval, self._status_job(name))
            for name in self.clusters
        ]
        out.append(CloudJob("ccloud-metrics", self.config.metrics_interval, self._metrics_job))
        return out

    async def aclose(self) -> None:
        await self.http.aclose()

    def _status_job(self, name: str) -> Callable[[], Awaitable[Sequence[object]]]:
        async def run() -> Sequence[object]:
            snapshot = await self.poll_status(name)
            return () if snapshot is None else (snapshot, self.reading())

        return run

    async def _metrics_job(self) -> Sequence[object]:
        reading = await self.poll_metrics()
        return () if reading is None else (reading,)

    # -- status ----------------------------------------------------------------------------------------

    def connectors_url(self, cluster: str) -> str:
        st = self.clusters[cluster]
        return (
            f"{self.config.api_url}/connect/v1/environments/{quote(st.env, safe='')}"
            f"/clusters/{quote(st.config.id, safe='')}/connectors"
        )

    async def poll_status(self, name: str) -> ClusterSnapshot | None:
        lock = self._status_locks[name]
        if lock.locked():
            return None  # the previous cycle is still running; never two at once
        async with lock:
            return await self._poll_status(name)

    async def _poll_status(self, name: str) -> ClusterSnapshot:
        st = self.clusters[name]
        started = time.monotonic()
        url = self.connectors_url(name)
        errors: list[PollError] = []
        connectors: tuple[Connector, ...] | None = None
        try:
            resp = await within(
                self.config.status_interval,
                self.http.request(Api.CONNECT, "GET", url, params={"expand": "id,info,status"}),
            )
            connectors, problems = parse_expanded(resp.data, st.config.connector_ids)
            for problem in problems:
                errors.append(PollError(ErrorReason.BAD_RESPONSE, url, problem))
                log.warning("ccloud_bad_connector", cluster=name, error=problem)
            self.http.health.ok(Api.CONNECT, name)
        except CloudRequestError as exc:
            errors.append(PollError(exc.reason.coarse, url, exc.message, exc.status))
            self.http.health.failed(Api.CONNECT, exc, name)
        except BadResponse as exc:
            err = CloudRequestError(Api.CONNECT, ErrorReason.BAD_RESPONSE, url, str(exc))
            self.http.health.count(Api.CONNECT, ErrorReason.BAD_RESPONSE)
            self.http.health.failed(Api.CONNECT, err, name)
            errors.append(PollError(ErrorReason.BAD_RESPONSE, url, str(exc)))
        except TimeoutError:
            msg = f"status cycle did not finish within {self.config.status_interval:g}s"
            err = CloudRequestError(Api.CONNECT, ErrorReason.TIMEOUT, url, msg)
            self.http.health.count(Api.CONNECT, ErrorReason.TIMEOUT)
            self.http.health.failed(Api.CONNECT, err, name)
            errors.append(PollError(ErrorReason.TIMEOUT, url, msg))

        now = self.clock.time()
        if connectors is not None:
            st.ok += 1
            st.last_success = now
            st.connectors = connectors
        else:
            st.failed += 1
        for e in errors:
            st.errors[e.reason.value] += 1
        snapshot = st.last = hold_last_known(
            ClusterSnapshot(
                cluster=name,
                kind=SourceKind.CLOUD,
                taken_at=now,
                duration=time.monotonic() - started,
                up=connectors is not None,
                poll_interval=self.config.status_interval,
                connectors=connectors or (),
                errors=tuple(errors),
                stats=PollStats(st.ok, st.failed, MappingProxyType(dict(st.errors))),
                last_success=st.last_success,
                status_url=url,
            ),
            st.last,
            self.config.stale_after,
        )
        self._rewatch()
        return snapshot

    # -- which connectors are counted --------------------------------------------------------------------

    def watched(self) -> tuple[dict[str, Owner], list[str]]:
        """Connector id -> owner, and the clusters whose connector set is known.

        The newest successful listing decides (a connector gone from it is deleted: its series go). Until
        a listing succeeds, explicitly configured ids are counted with the id as name; a failed listing
        keeps the previous set, so an outage of the Connect API does not reset any counter.
        """
        owners: dict[str, Owner] = {}
        known: list[str] = []
        for name, st in self.clusters.items():
            if st.connectors is not None:
                for c in st.connectors:
                    if c.connector_id:
                        owners[c.connector_id] = Owner(name, c.name)
                known.append(name)
            elif st.config.connector_ids:
                for cid in st.config.connector_ids:
                    owners[cid] = Owner(name, cid)
                known.append(name)
        return owners, known

    def _rewatch(self) -> None:
        owners, _ = self.watched()
        dropped = self.ledger.watch(owners)
        if dropped:
            log.info("ccloud_connectors_gone", connector_ids=sorted(dropped))

    # -- throughput --------------------------------------------------------------------------------------

    async def poll_metrics(self) -> CloudReading | None:
        """One throughput cycle; the reading after it, or None when it had nothing to do (another cycle was
        running, or no cluster's connectors are known yet)."""
        if self._metrics_lock.locked():
            return None
        async with self._metrics_lock:
            return await self._poll_metrics()

    def _active_metrics(self) -> tuple[str, ...]:
        return tuple(m for m in self.config.metrics if m not in self._missing_metrics)

    async def _discover(self) -> None:
        if not self.config.discover_metrics:
            return
        now = self.clock.time()
        if self._descriptors_at is not None and now - self._descriptors_at < DESCRIPTOR_REFRESH:
            return
        url = f"{self.config.metrics_url}/v2/metrics/cloud/descriptors/metrics"
        names: set[str] = set()
        token: str | None = None
        for _ in range(MAX_PAGES):
            params = {"resource_type": "connector", "page_size": "1000"}
            if token:
                params["page_token"] = token
            resp = await self.http.request(Api.METRICS, "GET", url, params=params)
            page, token = parse_descriptors(resp.data)
            names |= page
            if not token:
                break
        missing = frozenset(m for m in self.config.metrics if METRIC_PREFIX + m not in names)
        if missing and missing != self._missing_metrics:
            log.warning("ccloud_metrics_not_offered", metrics=sorted(missing), hint="not in descriptors; skipped")
        self._missing_metrics = missing
        self._descriptors_at = now

    async def _poll_metrics(self) -> CloudReading | None:
        owners, known = self.watched()
        if not known:
            # No cluster's connectors are known yet (the first status poll has not answered): committing
            # now would move the cursors past minutes that nobody was asked about.
            return None
        dropped = self.ledger.watch(owners)
        if dropped:
            log.info("ccloud_connectors_gone", connector_ids=sorted(dropped))
        failure: CloudRequestError | None = None
        asked = False
        try:
            asked = self.config.discover_metrics
            await self._discover()
            now = self.clock.time()
            for metric in self._active_metrics():
                window = self.ledger.window(metric, now)
                if window is None:
                    continue  # nothing final since the last commit: no request at all
                if window.skipped:
                    log.warning(
                        "ccloud_minutes_skipped",
                        metric=metric,
                        minutes=window.skipped,
                        hint="older than max_backfill; the Metrics API cannot backfill them at PT1M",
                    )
                points: dict[str, dict[int, float]] = {}
                if owners:
                    asked = True
                    points = await self._fetch(window, sorted(owners))
                    # Up before the counts it answered are committed: the status job may publish any time.
                    self.http.health.ok(Api.METRICS)
                added = self.ledger.commit(window, points, known)
                log.debug("ccloud_counted", metric=metric, start=window.start, end=window.end, points=added)
        except CloudRequestError as exc:
            failure = exc
        except BadResponse as exc:
            url = f"{self.config.metrics_url}/v2/metrics/cloud/query"
            self.http.health.count(Api.METRICS, ErrorReason.BAD_RESPONSE)
            failure = CloudRequestError(Api.METRICS, ErrorReason.BAD_RESPONSE, url, str(exc))
        if failure is None:
            if asked:  # up means "answered"; a cycle without requests proves nothing
                self.http.health.ok(Api.METRICS)
        else:
            # Windows not committed stay behind the cursor and are asked for again next cycle.
            self.http.health.failed(Api.METRICS, failure)
        return self.reading()

    async def _fetch(self, window: Window, ids: list[str]) -> dict[str, dict[int, float]]:
        """All points of one window for all watched connectors; raises unless every page of every batch
        arrived, so a window is committed whole or not at all."""
        url = f"{self.config.metrics_url}/v2/metrics/cloud/query"
        points: dict[str, dict[int, float]] = {}
        for batch in batches(ids, self.config.connectors_per_query):
            body = query_body(window.metric, batch, window.start, window.end)
            got = await self._pages(url, body)
            for cid, ts, value in got:
                points.setdefault(cid, {})[ts] = value
        return points

    async def _pages(self, url: str, body: dict[str, object]) -> list[tuple[str, int, float]]:
        restarted = False
        while True:
            got: list[tuple[str, int, float]] = []
            token: str | None = None
            try:
                for _ in range(MAX_PAGES):
                    params = {"page_token": token} if token else None
                    resp = await self.http.request(Api.METRICS, "POST", url, params=params, json_body=body)
                    page, token, problems = parse_page(resp.data)
                    for problem in problems:
                        log.warning("ccloud_bad_point", error=problem)
                    got.extend(page)
                    if not token:
                        return got
                raise BadResponse(f"more than {MAX_PAGES} pages; giving up on this window")
            except CloudRequestError as exc:
                # An expired page token answers 400: start the window over, once (ccloud-api.md A.0).
                if token and exc.status == 400 and not restarted:
                    log.info("ccloud_page_token_expired", error=exc.message)
                    restarted = True
                    continue
                raise

    # -- the reading -------------------------------------------------------------------------------------

    def reading(self) -> CloudReading:
        active = self._active_metrics()
        newest = {}
        for name in self.clusters:
            ts = self.ledger.newest_bucket(name, active)
            if ts is not None:
                newest[name] = ts
        up, errors = self.http.health.up(), self.http.health.errors
        return CloudReading(
            metrics=active,
            clusters=tuple(self.clusters),
            series=self.ledger.series(active),
            newest_bucket=MappingProxyType(newest),
            api_up=MappingProxyType({api: up[api] for api in APIS if api in up}),
            api_errors=MappingProxyType({(api, r): errors.get((api, r), 0) for api in APIS for r in REASONS}),
            metrics_interval=self.config.metrics_interval,
            metrics_delay=self.config.metrics_delay,
        )
