"""Reads source connectors' topics and how they grow, per cluster with ``clusters[].kafka``.

One run per ``source_topics.interval`` (its own APScheduler job). The source connectors come from the newest
snapshot of the cluster (handed over by the store's subscription, ``SourceTopicsJobs.step``); a run returns the
cluster's ``ClusterSourceTopics`` and the daemon publishes the ``SourceTopicsReading``. Their topic lists
(``GET /connectors/{c}/topics``, KIP-558) are read at the offsets
cadence (``offsets_interval``), requests no closer together than ``1 / offsets_max_rate``; every run then asks the
brokers once for the end offsets of all those topics (``brokers.TopicEnds``, in a thread). A topic's end offset
growing is the source writing; a heartbeat topic that stopped growing while Connect says RUNNING is a silent
source (a CDC connector whose database is down: Debezium retries for ever and its task stays RUNNING).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

import httpx
import structlog

from exporter.connect.client import connector_path
from exporter.connect.parse import BadResponse
from exporter.model import RUNNING, ClusterSnapshot, Connector
from exporter.offsets.brokers import BrokerError
from exporter.sourcetopics.brokers import TopicEnds
from exporter.sourcetopics.config import SourceTopicsCluster
from exporter.sourcetopics.parse import DEBEZIUM_HEARTBEAT_PREFIX, parse_topics
from exporter.sourcetopics.reading import (
    ClusterSourceTopics,
    Heartbeat,
    SourceTopics,
    SourceTopicsReading,
    TopicGrowth,
)
from exporter.store import View
from exporter.transport import RequestFailed, read_json, send

log = structlog.get_logger("exporter.sourcetopics")

TOPICS_MAX_BYTES = 4 * 1024 * 1024


class EndOffsets(Protocol):
    """What the reader needs of the brokers (``TopicEnds``; tests give a stand-in with the same method)."""

    def end_offsets(self, topics: list[str]) -> dict[str, int]: ...


@dataclass
class _Topic:
    end: int | None
    first_seen: float
    last_growth: float | None


class SourceTopicsReader:
    def __init__(
        self,
        cluster: SourceTopicsCluster,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        brokers: EndOffsets | None = None,
    ) -> None:
        self.cluster = cluster
        self.settings = cluster.source_topics
        self.client = client
        self._snapshot: ClusterSnapshot | None = None
        self.clock = clock
        self.monotonic = monotonic
        self.sleep = sleep
        if brokers is None and cluster.kafka is not None:
            brokers = TopicEnds(cluster.kafka)
        self.brokers = brokers
        self.name = cluster.name
        self._topics: dict[str, tuple[str, ...]] = {}  # connector -> its topics as last read
        self._topics_read_at: float | None = None  # monotonic time of the last topic-list round
        self._growth: dict[tuple[str, str], _Topic] = {}  # (connector, topic)
        self._errors: Counter[str] = Counter()
        self._read_at: float | None = None
        self._brokers_up: bool | None = None

    @property
    def deadline(self) -> float:
        return self.settings.interval

    def observe(self, snapshot: ClusterSnapshot) -> None:
        """The cluster's newest snapshot: the next run reads the source connectors it names."""
        self._snapshot = snapshot

    async def run(self) -> ClusterSourceTopics | None:
        snap = self._snapshot
        if snap is None or not snap.up:
            return None  # no statuses this cycle: keep what we know (its age is on read_at)
        sources = {c.name: c for c in snap.connectors if c.type == "source" and self.cluster.watches(c.name)}
        for gone in self._topics.keys() - sources.keys():
            del self._topics[gone]
        due = (
            self._topics_read_at is None
            or self.monotonic() - self._topics_read_at >= self.cluster.offsets_interval
            or any(n not in self._topics for n in sources)
        )
        if due:
            base = snap.status_url or self.cluster.urls[0]
            await self._read_topics(sorted(sources), base)
        await self._read_ends(sources)
        return self._reading(sources)

    async def _read_topics(self, names: list[str], base: str) -> None:
        """Every connector's topics once per offsets_interval; between rounds only connectors new since."""
        spacing = 1.0 / self.cluster.offsets_max_rate
        full_round = self._topics_read_at is None or self.monotonic() - self._topics_read_at >= (
            self.cluster.offsets_interval
        )
        wanted = names if full_round else [n for n in names if n not in self._topics]
        first = self.monotonic()
        for i, name in enumerate(wanted):
            due = first + i * spacing
            now = self.monotonic()
            if due > now:
                await self.sleep(due - now)
            url = base + connector_path(name, "topics")
            try:
                reply = await send(self.client, "GET", url, max_bytes=TOPICS_MAX_BYTES)
                if reply.status != 200:
                    raise reply.failure()
                self._topics[name] = parse_topics(name, await read_json(reply))
            except RequestFailed as exc:
                # 404: deleted since the snapshot (quiet). 403: topic tracking is off on the workers
                # (topic.tracking.enable=false), counted like any other failure.
                if exc.error.status != 404:
                    self._errors[exc.error.reason.coarse.value] += 1
            except BadResponse as exc:
                self._errors["bad_response"] += 1
                log.warning("source_topics_failed", cluster=self.name, connector=name, error=str(exc))
        if full_round:
            self._topics_read_at = first

    async def _read_ends(self, sources: dict[str, Connector]) -> None:
        if self.brokers is None:
            return
        topics = sorted({t for n in sources for t in self._topics.get(n, ())})
        if not topics:
            return
        try:
            ends = await asyncio.to_thread(self.brokers.end_offsets, topics)
        except BrokerError as exc:
            self._brokers_up = False
            self._errors[f"kafka_{exc.reason}"] += 1
            log.warning("source_topics_end_offsets_failed", cluster=self.name, reason=exc.reason, error=str(exc))
            return
        now = self.clock()
        self._brokers_up, self._read_at = True, now
        present: set[tuple[str, str]] = set()
        for name in sources:
            for topic in self._topics.get(name, ()):
                key = (name, topic)
                present.add(key)
                end = ends.get(topic)
                known = self._growth.get(key)
                if known is None:
                    self._growth[key] = _Topic(end, now, None)
                    continue
                if end is not None and (known.end is None or end > known.end):
                    known.last_growth = now
                if end is not None:
                    known.end = end
        for gone in self._growth.keys() - present:
            del self._growth[gone]

    def _heartbeat(self, c: Connector, topics: tuple[str, ...]) -> tuple[str, float] | None:
        for rule in self.settings.heartbeats:
            if rule.connector.fullmatch(c.name):
                for topic in topics:
                    if rule.topic.fullmatch(topic):
                        return topic, rule.interval
        if c.heartbeat_interval is not None:
            for topic in topics:
                if topic.startswith(DEBEZIUM_HEARTBEAT_PREFIX):
                    return topic, c.heartbeat_interval
        return None

    def _reading(self, sources: dict[str, Connector]) -> ClusterSourceTopics:
        writers: Counter[str] = Counter(t for n in sources for t in self._topics.get(n, ()))
        now = self._read_at
        out: dict[str, SourceTopics] = {}
        for name in sorted(sources):
            c = sources[name]
            topics = self._topics.get(name)
            if topics is None:
                continue
            grown = tuple(
                TopicGrowth(
                    topic=t,
                    end_offset=g.end if (g := self._growth.get((name, t))) is not None else None,
                    first_seen=g.first_seen if g is not None else 0.0,
                    last_growth=g.last_growth if g is not None else None,
                    exclusive=writers[t] == 1,
                )
                for t in topics
                if (name, t) in self._growth
            )
            heartbeat = None
            found = self._heartbeat(c, topics)
            if found is not None and now is not None and (g := self._growth.get((name, found[0]))) is not None:
                topic, interval = found
                window = max(interval * self.settings.silent_after, self.settings.silent_min)
                running = c.state == RUNNING and bool(c.tasks) and all(t.state == RUNNING for t in c.tasks)
                quiet_since = g.last_growth if g.last_growth is not None else g.first_seen
                heartbeat = Heartbeat(topic, interval, window, running and now - quiet_since >= window)
            out[name] = SourceTopics(name, grown, heartbeat)
        return ClusterSourceTopics(
            cluster=self.name,
            read_at=self._read_at,
            brokers_up=self._brokers_up,
            connectors=MappingProxyType(out),
            errors=MappingProxyType(dict(self._errors)),
        )


class SourceTopicsJobs:
    """Every cluster's source-topics reader, and the one ``SourceTopicsReading`` their runs make together."""

    def __init__(self) -> None:
        self.readers: dict[str, SourceTopicsReader] = {}
        self._clusters: dict[str, ClusterSourceTopics] = {}

    def add(self, reader: SourceTopicsReader) -> None:
        self.readers[reader.name] = reader

    def remove(self, cluster: str) -> SourceTopicsReading | None:
        """Drop a cluster's reader and reading (a reload removed or replaced it): the reading without them, if it
        had them."""
        self.readers.pop(cluster, None)
        if self._clusters.pop(cluster, None) is None:
            return None
        return self.reading()

    def step(self, snapshot: ClusterSnapshot, view: View | None = None) -> None:
        """The store's subscription: hand the snapshot to its cluster's reader (none for Cloud clusters)."""
        reader = self.readers.get(snapshot.cluster)
        if reader is not None:
            reader.observe(snapshot)

    async def run(self, reader: SourceTopicsReader) -> SourceTopicsReading | None:
        """One run of ``reader``; the reading to publish, or None (nothing read, or the reader was removed)."""
        got = await reader.run()
        if got is None or self.readers.get(reader.name) is not reader:
            return None
        self._clusters[reader.name] = got
        return self.reading()

    def reading(self) -> SourceTopicsReading:
        return SourceTopicsReading(MappingProxyType(dict(self._clusters)))
