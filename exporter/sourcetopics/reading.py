"""What the source-topics reader publishes after every run (one entry per cluster). Plain frozen data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class TopicGrowth:
    """One topic of a source connector as the brokers show it."""

    topic: str
    end_offset: int | None  # sum of the partitions' end offsets; None: the brokers do not know the topic (yet)
    first_seen: float  # epoch seconds of the first read of this topic for this connector
    last_growth: float | None  # when a read first saw the end offset higher than the read before; None: not yet
    exclusive: bool  # no other source connector of the cluster names this topic


@dataclass(frozen=True, slots=True)
class Heartbeat:
    topic: str
    interval: float  # expected seconds between heartbeats
    silent_after: float  # seconds without growth after which the source is silent
    silent: bool  # as of ``read_at``: RUNNING and the heartbeat topic has not grown for ``silent_after``


@dataclass(frozen=True, slots=True)
class SourceTopics:
    connector: str
    topics: tuple[TopicGrowth, ...]
    heartbeat: Heartbeat | None = None


@dataclass(frozen=True, slots=True)
class ClusterSourceTopics:
    cluster: str
    read_at: float | None  # the last end-offset read that succeeded
    brokers_up: bool | None  # None until the first end-offset request ended
    connectors: Mapping[str, SourceTopics] = field(default_factory=lambda: MappingProxyType({}))
    # GET /connectors/{c}/topics and broker failures since the exporter started, by reason.
    errors: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class SourceTopicsReading:
    clusters: Mapping[str, ClusterSourceTopics] = field(default_factory=lambda: MappingProxyType({}))

    def silent(self, cluster: str) -> frozenset[str]:
        """The cluster's silent sources (see ``Heartbeat.silent``)."""
        found = self.clusters.get(cluster)
        if found is None:
            return frozenset()
        return frozenset(n for n, c in found.connectors.items() if c.heartbeat is not None and c.heartbeat.silent)
