"""Reads every connector's offsets on the cluster's own cadence: a sink's from its consumer group through the
Kafka admin API when ``clusters[].kafka`` is set, the rest from the workers (``GET /connectors/{c}/offsets``,
KIP-875).

One run per ``offsets_interval`` (its own APScheduler job): the connector list comes from the cluster's newest
snapshot, which the reader is handed through the store's subscription (``Offsets.step``), so it never calls the
status endpoint and never delays the status poll. With brokers, every sink's group is read every run
(``kafka.concurrency`` at a time, within one budget), and only the other connectors are asked of the workers.
Worker requests of a run are spread over 90% of the interval, started no closer together than
``1 / offsets_max_rate`` and at most ``offsets_concurrency`` at a time, through the cluster's one httpx client.
When the rate bound does not allow every connector in one interval, each run continues where the last one
stopped (a rotation longer than the interval). Workers older than Kafka 3.5, 404s (a connector deleted meanwhile)
and unknown-type connectors are skipped quietly. After the requests, with ``clusters[].kafka``, the groups, the
topics' metadata and one batched request each for log start and end offsets give the sinks' lag
(``exporter.offsets.lag``). A run returns the cluster's ``ClusterOffsets``; ``Offsets`` folds every cluster's
into the one ``OffsetsReading`` the daemon publishes, once per run, so the exposition re-renders once per run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import MappingProxyType

import httpx
import structlog

from exporter.connect.client import connector_path
from exporter.connect.parse import BadResponse
from exporter.model import ClusterSnapshot, Connector
from exporter.offsets.brokers import BrokerError, BrokerOffsets, Brokers
from exporter.offsets.config import KafkaConfig, OffsetsCluster
from exporter.offsets.lag import partitions_of, sink_lag, subscribed_topics
from exporter.offsets.parse import ParsedOffsets, SinkPartition, parse_offsets
from exporter.offsets.reading import ClusterOffsets, ConnectorOffsets, OffsetsReading, OffsetsStatus
from exporter.repeats import RepeatLimiter
from exporter.store import View
from exporter.transport import DECODE_IN_THREAD_BYTES, RequestFailed, read_json, send
from exporter.versions import OFFSETS_API, at_least

log = structlog.get_logger("exporter.offsets")

# Share of the interval a run spreads its requests over; the rest absorbs slow answers before the next run.
SPREAD = 0.9


# A source connector may report many partitions; far below a status body, far above any real offsets answer.
OFFSETS_MAX_BYTES = 16 * 1024 * 1024
# Jersey's answer for a route the worker does not have: a worker older than 3.5 behind an unknown version.
NO_ROUTE = "HTTP 404: HTTP 404 Not Found"
# The bounds of a reader given its brokers directly (tests, benchmarks, the demo) rather than clusters[].kafka.
_DEFAULT_KAFKA = KafkaConfig(bootstrap_servers=["127.0.0.1:9092"])


@dataclass
class _Known:
    """What the reader remembers of one connector between reads."""

    type: str
    digest: bytes
    partitions: int
    read_at: float
    unchanged_since: float
    last_change: float | None
    sink: dict[SinkPartition, int] = field(default_factory=dict)


def group_offsets(committed: dict[SinkPartition, int]) -> ParsedOffsets:
    """A consumer group's committed offsets as the worker's offsets answer would give them: the partitions with
    an offset, and a digest that is equal for equal offsets."""
    canonical = ";".join(f"{t}\x00{p}\x00{o}" for (t, p), o in sorted(committed.items())).encode()
    return ParsedOffsets(len(committed), hashlib.blake2b(canonical, digest_size=16).digest(), committed)


class OffsetsReader:
    def __init__(
        self,
        cluster: OffsetsCluster,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        brokers: Brokers | None = None,
        warnings: RepeatLimiter | None = None,
    ) -> None:
        self.cluster = cluster
        self.client = client
        self.clock = clock
        self.monotonic = monotonic
        self.sleep = sleep
        if brokers is None and cluster.kafka is not None:
            brokers = BrokerOffsets(cluster.kafka)
        self.brokers: Brokers | None = brokers
        self.warnings = warnings if warnings is not None else RepeatLimiter()
        self._known: dict[str, _Known] = {}
        self._after: str | None = None  # the last connector read: the next run continues after it
        self._errors: Counter[str] = Counter()
        self._broker_errors: Counter[str] = Counter()
        self._broker_up: bool | None = None
        self._lag: dict[str, dict[str, int]] = {}
        self._subscribed: dict[str, tuple[str, ...]] = {}  # per sink: the topics its lag was counted for
        self._groups_down = False  # every group read of the last run failed
        self._requests = 0
        self._published = False
        self._status = OffsetsStatus.READING
        self._no_route_versions: tuple[str | None, ...] | None = None
        self._snapshot: ClusterSnapshot | None = None  # the newest one handed over
        self._seen = asyncio.Event()

    def observe(self, snapshot: ClusterSnapshot) -> None:
        """The cluster's newest snapshot (from the store's subscription): the next run reads what it names."""
        self._snapshot = snapshot
        self._seen.set()

    @property
    def name(self) -> str:
        return self.cluster.name

    @property
    def deadline(self) -> float:
        """A run: the spread window, the last request's answer, then the brokers' (with one second of slack)."""
        kafka = self.cluster.kafka
        # With brokers: the groups (one budget), the topics' metadata, then the log offsets (each bounded by the
        # Kafka request timeout).
        return (
            self.cluster.offsets_interval
            + self.cluster.request_timeout
            + (self._groups_budget + 2 * (kafka.request_timeout + 1) if kafka else 0)
        )

    @property
    def _groups_budget(self) -> float:
        kafka = self.cluster.kafka or _DEFAULT_KAFKA
        return 2 * kafka.request_timeout + 1

    async def run(self) -> ClusterOffsets | None:
        """One run: wait for a snapshot (the first run starts with the first status poll), read the next
        connectors at the paced rate, then lag. None: nothing current to read (keep the last reading)."""
        started = self.monotonic()
        window = self.cluster.offsets_interval * SPREAD
        if self._snapshot is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._seen.wait(), window)
        snapshot = self._snapshot
        if snapshot is None or not snapshot.up:
            return None
        if not self._supported(snapshot):
            if self._status is not OffsetsStatus.UNSUPPORTED:  # once, not every run
                log.info("offsets_unsupported", cluster=self.name, hint="workers older than Kafka 3.5")
            self._status = OffsetsStatus.UNSUPPORTED
            self._known.clear()
            return self._reading()
        self._status = OffsetsStatus.READING
        present = {c.name: c for c in snapshot.connectors if c.type in ("sink", "source")}
        for gone in self._known.keys() - present.keys():
            del self._known[gone]
        base = snapshot.status_url or self.cluster.urls[0]
        # With brokers, a sink's committed offsets are its consumer group's: every sink every run, none asked of
        # the workers. The workers are asked only for what only they know (source offsets).
        by_rest = present if self.brokers is None else {n: c for n, c in present.items() if c.type != "sink"}
        await self._read(self._next_batch(by_rest, window - (self.monotonic() - started)), base, started)
        if self.brokers is not None:
            await self._read_groups({n: c for n, c in present.items() if c.type == "sink"})
            await self._read_lag(present)
        return self._reading()

    def _supported(self, snapshot: ClusterSnapshot) -> bool:
        versions = tuple(w.version for w in snapshot.workers if w.reachable)
        if self._no_route_versions is not None:
            if versions == self._no_route_versions:
                return False  # the route was missing with these workers; look again when they change
            self._no_route_versions = None
        said = [at_least(v, OFFSETS_API) for v in versions]
        # Some worker that can answer is enough: the request goes to the worker that answered the status poll.
        return any(s is not False for s in said) or not said

    def _next_batch(self, present: dict[str, Connector], window: float) -> list[Connector]:
        """The connectors this run reads, in name order from where the last run stopped."""
        names = sorted(present)
        if not names:
            return []
        start = 0
        if self._after is not None:
            start = next((i for i, n in enumerate(names) if n > self._after), 0)
        rotated = names[start:] + names[:start]
        fits = max(1, int(max(window, 0.0) * self.cluster.offsets_max_rate) + 1)
        return [present[n] for n in rotated[:fits]]

    async def _read(self, batch: list[Connector], base: str, started: float) -> None:
        if not batch:
            return
        window = max(self.cluster.offsets_interval * SPREAD - (self.monotonic() - started), 0.0)
        # Spread over the window, never closer than the rate bound allows. The first run goes at the rate bound,
        # so the first reading does not wait a whole interval.
        spacing = 1.0 / self.cluster.offsets_max_rate
        if self._published:
            spacing = max(spacing, window / len(batch))
        slots = asyncio.Semaphore(self.cluster.offsets_concurrency)
        tasks: list[asyncio.Task[None]] = []
        first = self.monotonic()
        try:
            for i, connector in enumerate(batch):
                due = first + i * spacing
                now = self.monotonic()
                if due > now:
                    await self.sleep(due - now)
                await slots.acquire()
                tasks.append(asyncio.ensure_future(self._read_one(connector, base, slots)))
                self._after = connector.name
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    @property
    def requests(self) -> int:
        """Offsets requests started since the exporter started."""
        return self._requests

    async def _read_one(self, connector: Connector, base: str, slots: asyncio.Semaphore) -> None:
        try:
            self._requests += 1
            url = base + connector_path(connector.name, "offsets")
            sink = connector.type == "sink"
            try:
                reply = await send(self.client, "GET", url, max_bytes=OFFSETS_MAX_BYTES)
                if reply.status != 200:
                    raise reply.failure()
                # A typical answer is a few hundred bytes: decoded and parsed on the loop, as a thread hop would
                # cost more than the work. Big ones (a source with many partitions) go to the worker thread.
                if len(reply.body) > DECODE_IN_THREAD_BYTES:
                    parsed = await read_json(reply, lambda data: parse_offsets(data, sink=sink))
                else:
                    parsed = parse_offsets(await read_json(reply), sink=sink)
            except RequestFailed as exc:
                self._failed(connector, exc)
                return
            except BadResponse as exc:
                self._errors["bad_response"] += 1
                self.warnings.warn(
                    log,
                    "offsets_failed",
                    (self.name, connector.name),
                    cluster=self.name,
                    connector=connector.name,
                    error=str(exc),
                )
                return
            self._remember(connector, parsed)
        finally:
            slots.release()

    def _failed(self, connector: Connector, exc: RequestFailed) -> None:
        error = exc.error
        if error.status == 404:
            self._known.pop(connector.name, None)
            if error.message == NO_ROUTE:  # no such endpoint: a worker older than 3.5 behind a version we misread
                workers = self._snapshot.workers if self._snapshot is not None else ()
                self._no_route_versions = tuple(w.version for w in workers if w.reachable)
            return  # deleted since the snapshot: quiet
        self._errors[error.reason.coarse.value] += 1
        # Debug: a worker that cannot answer offsets (rebalancing, overloaded) says so in the error counter.
        log.debug(
            "offsets_failed",
            cluster=self.name,
            connector=connector.name,
            reason=error.reason.value,
            status=error.status,
            error=error.message,
        )

    def _remember(self, connector: Connector, parsed: ParsedOffsets) -> None:
        now = self.clock()
        known = self._known.get(connector.name)
        if known is None or known.type != connector.type:
            self._known[connector.name] = _Known(
                connector.type, parsed.digest, parsed.partitions, now, now, None, parsed.sink
            )
            return
        if parsed.digest != known.digest:
            known.digest, known.last_change, known.unchanged_since = parsed.digest, now, now
        known.partitions, known.read_at, known.sink = parsed.partitions, now, parsed.sink

    async def _read_groups(self, sinks: dict[str, Connector]) -> None:
        """Every sink's committed offsets from its consumer group, at most ``kafka.concurrency`` groups in flight.
        A group that fails keeps the sink's last offsets (a failed read is not a change)."""
        assert self.brokers is not None
        brokers = self.brokers
        slots = asyncio.Semaphore((self.cluster.kafka or _DEFAULT_KAFKA).concurrency)
        failed: Counter[str] = Counter()

        async def one(connector: Connector) -> None:
            group = connector.sink.group_id if connector.sink is not None else f"connect-{connector.name}"
            async with slots:
                try:
                    committed = await brokers.committed(group)
                except BrokerError as exc:
                    failed[exc.reason] += 1
                    return
            self._remember(connector, group_offsets(committed))

        self._groups_down = False
        if not sinks:
            return
        tasks = [asyncio.ensure_future(one(c)) for c in sinks.values()]
        # One budget for the whole phase, so brokers that never answer cost a run one budget, not one timeout
        # per batch of groups; groups still waiting then count as timeouts.
        _, waiting = await asyncio.wait(tasks, timeout=self._groups_budget)
        for task in waiting:
            task.cancel()
        if waiting:
            failed["timeout"] += len(waiting)
            await asyncio.gather(*waiting, return_exceptions=True)
        if failed:
            self._broker_errors.update(failed)
            groups = sum(failed.values())
            event = "kafka_group_offsets_failed"
            self.warnings.warn(log, event, (self.name,), cluster=self.name, groups=groups, **failed)
            self._groups_down = groups == len(sinks)

    async def _read_lag(self, present: dict[str, Connector]) -> None:
        """Lag of every sink read so far, for every partition of the topics it consumes: the topics from the
        brokers' metadata (``topics.regex`` is matched against them), then every partition's log start and end
        offsets in one batched request each."""
        assert self.brokers is not None
        sinks = {n: c for n, c in present.items() if c.type == "sink" and n in self._known}
        try:
            topics = await asyncio.to_thread(self.brokers.topics)
            consumed: dict[str, tuple[str, ...]] = {}
            for name, connector in sinks.items():
                if connector.sink is not None:
                    consumed[name] = subscribed_topics(connector.sink, topics)
                else:  # config not read: the topics it has committed offsets for
                    consumed[name] = tuple(sorted({t for t, _ in self._known[name].sink} & topics.keys()))
            partitions = {p for names in consumed.values() for p in partitions_of(names, topics)}
            start, end = await self.brokers.log_offsets(partitions)
        except BrokerError as exc:
            self._broker_up = False
            self._broker_errors[exc.reason] += 1
            self._lag, self._subscribed = {}, {}  # no lag is better than stale lag
            self.warnings.warn(
                log,
                "kafka_offsets_failed",
                (self.name, exc.reason),
                cluster=self.name,
                reason=exc.reason,
                error=str(exc),
            )
            return
        self._broker_up = not self._groups_down
        lag: dict[str, dict[str, int]] = {}
        for name, names in consumed.items():
            sub = sinks[name].sink
            found = sink_lag(
                names, topics, self._known[name].sink, start, end, offset_reset=sub.offset_reset if sub else "earliest"
            )
            lag[name] = found.lag
        self._lag, self._subscribed = lag, consumed

    def _reading(self) -> ClusterOffsets:
        connectors = {}
        for name, k in self._known.items():
            # A topic the sink consumes but never committed an offset for is there with 0: progress from nothing.
            committed: dict[str, int] = dict.fromkeys(self._subscribed.get(name, ()), 0)
            for (topic, _), offset in k.sink.items():
                committed[topic] = committed.get(topic, 0) + offset
            lag = self._lag.get(name) if k.type == "sink" and self.brokers is not None else None
            connectors[name] = ConnectorOffsets(
                connector=name,
                type=k.type,
                partitions=k.partitions,
                read_at=k.read_at,
                unchanged_since=k.unchanged_since,
                last_change=k.last_change,
                committed=MappingProxyType(committed),
                lag=MappingProxyType(lag) if lag is not None else None,
                never_committed=k.type == "sink" and not k.sink,
            )
        mine = ClusterOffsets(
            cluster=self.name,
            status=self._status,
            interval=self.cluster.offsets_interval,
            connectors=MappingProxyType(connectors),
            errors=MappingProxyType(dict(self._errors)),
            requests=self._requests,
            brokers_configured=self.brokers is not None,
            brokers_up=self._broker_up,
            broker_errors=MappingProxyType(dict(self._broker_errors)),
        )
        self._published = True
        return mine


class Offsets:
    """Every cluster's offsets reader, and the one ``OffsetsReading`` their runs make together."""

    def __init__(self) -> None:
        self.readers: dict[str, OffsetsReader] = {}
        self._clusters: dict[str, ClusterOffsets] = {}

    def add(self, reader: OffsetsReader) -> None:
        self.readers[reader.name] = reader

    def remove(self, cluster: str) -> OffsetsReading | None:
        """Drop a cluster's reader and offsets (a reload removed or replaced it): the reading without them, if
        it had them. A replacement starts afresh."""
        self.readers.pop(cluster, None)
        if self._clusters.pop(cluster, None) is None:
            return None
        return self.reading()

    def step(self, snapshot: ClusterSnapshot, view: View | None = None) -> None:
        """The store's subscription: hand the snapshot to its cluster's reader (none for Cloud clusters); the
        readers need nothing else of the ``view``."""
        reader = self.readers.get(snapshot.cluster)
        if reader is not None:
            reader.observe(snapshot)

    async def run(self, reader: OffsetsReader) -> OffsetsReading | None:
        """One run of ``reader``; the reading to publish, or None (nothing read, or the reader was removed)."""
        got = await reader.run()
        if got is None or self.readers.get(reader.name) is not reader:
            return None
        self._clusters[reader.name] = got
        return self.reading()

    def reading(self) -> OffsetsReading:
        return OffsetsReading(MappingProxyType(dict(self._clusters)))
