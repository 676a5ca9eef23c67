"""What the offsets reader publishes into the store after every run (one entry per cluster that reads offsets).

The reader (``exporter.offsets.reader``) builds an ``OffsetsReading``; readers (``exporter.offsets.metrics``,
``exporter.offsets.web``) get it with ``view.reading(OffsetsReading)``. Plain frozen data, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

# A sink whose committed offsets have not moved for this long while records wait is stalled: the window of
# KafkaConnectSinkStalled (alerts/kafka-connect.rules.yml), so the status page and connector_health agree with it.
STALLED_AFTER_SECONDS = 15 * 60.0

# The ``reason`` values of the broker error counter (``exporter.offsets.brokers`` sorts failures into these).
BROKER_REASONS: tuple[str, ...] = ("timeout", "connect", "unauthorized", "forbidden", "error")


class OffsetsStatus(StrEnum):
    READING = "reading"
    UNSUPPORTED = "unsupported"  # the workers are older than Kafka 3.5 (no GET /connectors/{c}/offsets)


@dataclass(frozen=True, slots=True)
class ConnectorOffsets:
    """One connector's offsets as last read. Source offsets are connector-defined maps: only compared."""

    connector: str
    type: str  # "sink" or "source"
    partitions: int  # entries the worker reported
    read_at: float  # epoch seconds of the read
    unchanged_since: float  # when the offsets were first seen as they are now (the first read, or the last change)
    last_change: float | None = None  # when a read first saw them differ from the one before (None: never yet)
    # Sinks: the sum of committed offsets over each topic's partitions.
    committed: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    # Sinks, with ``clusters[].kafka``: records waiting per topic, summed over its partitions, never negative:
    # end offset minus committed, or minus the log start offset for a partition with nothing committed.
    lag: Mapping[str, int] | None = None
    never_committed: bool = False  # a sink with no committed offset on any partition

    @property
    def stalled(self) -> bool:
        """A sink with records waiting (lag needs ``clusters[].kafka``) whose offsets have not moved for
        ``STALLED_AFTER_SECONDS`` as of its last read. A sink that never committed counts from its first read:
        unchanged nothing is not progress."""
        waiting = self.lag is not None and sum(self.lag.values()) > 0
        return self.type == "sink" and waiting and self.read_at - self.unchanged_since >= STALLED_AFTER_SECONDS


@dataclass(frozen=True, slots=True)
class ClusterOffsets:
    cluster: str
    status: OffsetsStatus
    interval: float
    connectors: Mapping[str, ConnectorOffsets] = field(default_factory=lambda: MappingProxyType({}))
    # GET /connectors/{c}/offsets failures since the exporter started, by reason (404s are not failures).
    errors: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    requests: int = 0  # offsets requests sent since the exporter started
    brokers_configured: bool = False
    brokers_up: bool | None = None  # None until the first requests to the brokers ended
    # Requests to the brokers that failed, by reason.
    broker_errors: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class OffsetsReading:
    clusters: Mapping[str, ClusterOffsets] = field(default_factory=lambda: MappingProxyType({}))

    def stalled(self, cluster: str) -> frozenset[str]:
        """The cluster's stalled sinks (see ``ConnectorOffsets.stalled``)."""
        found = self.clusters.get(cluster)
        return frozenset(n for n, c in found.connectors.items() if c.stalled) if found is not None else frozenset()
