"""What the Confluent Cloud source publishes into the store besides its clusters' snapshots.

The source (``exporter.cloud.source``) builds a ``CloudReading`` after every cycle; readers
(``exporter.cloud.metrics``) get it with ``view.reading(CloudReading)``. Plain frozen data, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# A RUNNING managed sink with lag whose received_records has not grown for this long is stalled: the window of
# KafkaConnectSinkStalled (alerts/kafka-connect.rules.yml), the same as for self-managed sinks.
STALLED_AFTER_SECONDS = 15 * 60.0


@dataclass(frozen=True, slots=True)
class ThroughputSeries:
    cluster: str
    connector: str
    connector_id: str
    values: Mapping[str, float]  # short metric name -> counter value


@dataclass(frozen=True, slots=True)
class CloudReading:
    """Throughput counters and the health of the two Cloud APIs, as of the newest cycle."""

    metrics: tuple[str, ...]  # short names of the metrics being counted
    clusters: tuple[str, ...]  # every configured managed cluster (connect_cluster label)
    series: tuple[ThroughputSeries, ...] = ()
    newest_bucket: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    # (cluster, metric) -> what minutes gained after they were first counted (re-read within revision_window).
    late: Mapping[tuple[str, str], float] = field(default_factory=lambda: MappingProxyType({}))
    # api -> up, for the APIs asked so far, in exposition order.
    api_up: Mapping[str, bool] = field(default_factory=lambda: MappingProxyType({}))
    # (api, reason) -> failed requests: every api and reason, zeros included, in exposition order.
    api_errors: Mapping[tuple[str, str], int] = field(default_factory=lambda: MappingProxyType({}))
    metrics_interval: float = 60.0
    metrics_delay: float = 240.0
    # cluster -> sink connector -> topic -> records of lag (consumer_lag_offsets of its group connect-<lcc id>).
    # A cluster whose lag could not be read this cycle (403, an error) is absent.
    lag: Mapping[str, Mapping[str, Mapping[str, float]]] = field(default_factory=lambda: MappingProxyType({}))
    # cluster -> RUNNING sinks with lag whose received_records did not grow for STALLED_AFTER_SECONDS.
    stalled: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))

    def stalled_sinks(self, cluster: str) -> frozenset[str]:
        return self.stalled.get(cluster, frozenset())
