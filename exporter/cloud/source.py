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
from exporter.cloud.counters import MINUTE, Commit, Ledger, Owner, Window, floor_minute
from exporter.cloud.http import REASONS, Api, CloudHttp, CloudRequestError
from exporter.cloud.query import (
    BadResponse,
    batches,
    iso,
    lag_body,
    parse_descriptors,
    parse_lag_page,
    parse_page,
    query_body,
    sink_group,
)
from exporter.cloud.reading import STALLED_AFTER_SECONDS, CloudReading
from exporter.cloud.status import parse_expanded
from exporter.deadline import within
from exporter.model import (
    RUNNING,
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
LAG_LOOKBACK = 5 * 60  # minutes of lag asked for; the newest point of each group and topic counts
LAG_FORBIDDEN_RETRY = 3600.0  # after a 403 for the lag metric, ask again this much later


def _is_sink(c: Connector) -> bool:
    return c.type == "sink" and c.connector_id is not None


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
            revision=config.revision_window,
        )
        self.clusters = {c.label: _ClusterState(env, c) for env, c in config.cluster_envs()}
        self._metrics_lock = asyncio.Lock()
        self._status_locks = {name: asyncio.Lock() for name in self.clusters}
        self._descriptors_at: float | None = None
        # Sink lag: cluster -> connector -> topic -> lag, from the newest successful query of each cluster.
        self._lag: dict[str, dict[str, dict[str, float]]] = {}
        self._lag_forbidden: dict[str, float] = {}  # cluster -> when the lag query answered 403
        self._lag_failing: dict[str, str | None] = {}  # cluster -> the last failure logged (once per change)
        # connector id -> end of the newest minute with received records (stall detection).
        self._received_until: dict[str, int] = {}
        # connector id -> start of the minutes read back at start-up for stall detection (never counted).
        self._looked_back: dict[str, int] = {}
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
                self._count(window, points, known)
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
        if self.config.sink_lag:
            await self._poll_lag()
            await self._look_back(owners)
        return self.reading()

    # -- managed sink lag ----------------------------------------------------------------------------------

    async def _poll_lag(self) -> None:
        """One consumer_lag_offsets query per Kafka cluster (per batch of sinks) for its sinks' groups.

        Its failures never touch the throughput counters or ``kafka_connect_cloud_api_up``: a cluster whose lag
        is not read has no lag series (absent, not 0). A 403 is logged once and asked again after an hour.
        """
        now = self.clock.time()
        end = floor_minute(now - self.config.metrics_delay) + MINUTE
        for name, st in self.clusters.items():
            forbidden_at = self._lag_forbidden.get(name)
            if forbidden_at is not None and now - forbidden_at < LAG_FORBIDDEN_RETRY:
                continue
            sinks = {sink_group(c.connector_id): c.name for c in st.connectors or () if _is_sink(c) and c.connector_id}
            if not sinks:
                self._lag.pop(name, None)
                continue
            try:
                self._lag[name] = await self._read_lag(st.config.id, sinks, end - LAG_LOOKBACK, end)
            except (CloudRequestError, BadResponse) as exc:
                self._lag.pop(name, None)
                self._lag_failed(name, exc, now)
                continue
            if self._lag_failing.get(name) is not None or name in self._lag_forbidden:
                log.info("ccloud_sink_lag_recovered", cluster=name)
            self._lag_failing[name] = None
            self._lag_forbidden.pop(name, None)

    def _lag_failed(self, name: str, exc: CloudRequestError | BadResponse, now: float) -> None:
        if isinstance(exc, CloudRequestError) and exc.status == 403:
            if name not in self._lag_forbidden and self._lag_failing.get(name) != "forbidden":
                log.warning(
                    "ccloud_sink_lag_forbidden",
                    cluster=name,
                    error=exc.message,
                    hint="the key's principal may not read the Kafka cluster's consumer_lag_offsets (MetricsViewer "
                    "on the cluster); managed sinks have no kafka_connect_sink_lag_records, everything else works",
                )
            self._lag_forbidden[name] = now
            self._lag_failing[name] = "forbidden"
            return
        what = exc.reason.value if isinstance(exc, CloudRequestError) else ErrorReason.BAD_RESPONSE.value
        if self._lag_failing.get(name) != what:
            log.warning("ccloud_sink_lag_failed", cluster=name, reason=what, error=str(exc))
        self._lag_failing[name] = what

    async def _read_lag(
        self, kafka_id: str, sinks: dict[str, str], start: int, end: int
    ) -> dict[str, dict[str, float]]:
        """connector -> topic -> lag, the newest minute of each group and topic in ``[start, end)``."""
        url = f"{self.config.metrics_url}/v2/metrics/cloud/query"
        newest: dict[tuple[str, str], tuple[int, float]] = {}
        for batch in batches(sinks, self.config.connectors_per_query):
            body = lag_body(kafka_id, batch, start, end)
            token: str | None = None
            for _ in range(MAX_PAGES):
                params = {"page_token": token} if token else None
                resp = await self.http.request(Api.METRICS, "POST", url, params=params, json_body=body)
                page, token, problems = parse_lag_page(resp.data)
                for problem in problems:
                    log.warning("ccloud_bad_point", error=problem)
                for group, topic, ts, value in page:
                    if group in sinks and (ts, value) > newest.get((group, topic), (-1, 0.0)):
                        newest[(group, topic)] = (ts, value)
                if not token:
                    break
            else:
                raise BadResponse(f"more than {MAX_PAGES} pages of lag; giving up this cycle")
        out: dict[str, dict[str, float]] = {}
        for (group, topic), (_, value) in sorted(newest.items()):
            out.setdefault(sinks[group], {})[topic] = value
        return out

    async def _look_back(self, owners: dict[str, Owner]) -> None:
        """Once per sink, after its first counted minute: read received_records of the STALLED_AFTER_SECONDS before
        it (not counted), so a sink that stopped before it was first watched (before the exporter started, say)
        is seen stalled at once rather than 15 minutes later."""
        metric = "received_records"
        if metric not in self._active_metrics():
            return
        due: dict[int, list[str]] = {}  # first counted minute -> sinks
        for st in self.clusters.values():
            for c in st.connectors or ():
                cid = c.connector_id
                if cid is None or not _is_sink(c) or cid not in owners or cid in self._looked_back:
                    continue
                since = self.ledger.since.get((cid, metric))
                if since is not None:
                    due.setdefault(since, []).append(cid)
        for since, ids in sorted(due.items()):
            start = since - int(STALLED_AFTER_SECONDS)
            try:
                points = await self._fetch(Window(metric, start, since, 0), ids)
            except (CloudRequestError, BadResponse) as exc:
                log.debug("ccloud_look_back_failed", error=str(exc))  # asked again next cycle
                return
            for cid in ids:
                self._looked_back[cid] = start
                moved = [ts + MINUTE for ts, v in points.get(cid, {}).items() if v > 0]
                if moved:
                    self._received_until[cid] = max(self._received_until.get(cid, 0), *moved)

    def _stalled(self, name: str) -> frozenset[str]:
        """RUNNING sinks of the cluster with lag whose received_records did not grow for STALLED_AFTER_SECONDS
        of counted minutes (needs received_records among the metrics, and the lag)."""
        metric = "received_records"
        lag = self._lag.get(name)
        counted_until = self.ledger.cursors.get(metric)
        st = self.clusters[name]
        if lag is None or counted_until is None or metric not in self._active_metrics() or st.connectors is None:
            return frozenset()
        out = set()
        for c in st.connectors:
            if not _is_sink(c) or c.state != RUNNING or sum(lag.get(c.name, {}).values()) <= 0:
                continue
            assert c.connector_id is not None
            since = self.ledger.since.get((c.connector_id, metric))
            if since is None:
                continue  # not counted yet
            since = min(since, self._looked_back.get(c.connector_id, since))
            quiet_from = max(since, self._received_until.get(c.connector_id, since))
            if counted_until - quiet_from >= STALLED_AFTER_SECONDS:
                out.add(c.name)
        return frozenset(out)

    def _count(self, window: Window, points: dict[str, dict[int, float]], known: list[str]) -> None:
        """Commit one window's points; note when each sink last received records (stall detection)."""
        done = self.ledger.commit(window, points, known)
        self._report(done)
        if window.metric == "received_records":
            for cid, buckets in points.items():
                moved = [ts + MINUTE for ts, v in buckets.items() if v > 0]
                if moved:
                    self._received_until[cid] = max(self._received_until.get(cid, 0), *moved)
        log.debug(
            "ccloud_counted",
            metric=window.metric,
            start=window.start,
            first_new=window.first_new,
            end=window.end,
            points=done.added,
            late=len(done.late),
        )

    def _report(self, done: Commit) -> None:
        for r in done.late:
            log.info(
                "ccloud_minute_grew",
                connector_id=r.connector_id,
                metric=r.metric,
                minute=iso(r.minute),
                counted=r.counted,
                now=r.now,
                added=r.now - r.counted,
            )
        for r in done.shrunk:
            log.warning(
                "ccloud_minute_shrank",
                connector_id=r.connector_id,
                metric=r.metric,
                minute=iso(r.minute),
                counted=r.counted,
                now=r.now,
                hint="counters never go down: the difference is ignored",
            )

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
            late=MappingProxyType(self.ledger.late_totals(self.clusters, active)),
            lag=MappingProxyType({n: MappingProxyType(dict(v)) for n, v in self._lag.items()}),
            stalled=MappingProxyType({n: s for n in self.clusters if (s := self._stalled(n))}),
            api_up=MappingProxyType({api: up[api] for api in APIS if api in up}),
            api_errors=MappingProxyType({(api, r): errors.get((api, r), 0) for api in APIS for r in REASONS}),
            metrics_interval=self.config.metrics_interval,
            metrics_delay=self.config.metrics_delay,
        )
