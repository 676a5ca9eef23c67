"""The failure tracker: a one-way step on each new snapshot that publishes a ``FailuresReading``.

The daemon's poll jobs (Kafka Connect and Confluent Cloud) hand each snapshot to ``step`` right after
publishing it; the tracker advances that cluster's history (``exporter.failures.history``) and publishes the
reading of every cluster. It never reads the store back. Histories live in memory: a restarted exporter
starts counting again, and failed-since is then the first poll of the new process that saw the failure.
"""

from __future__ import annotations

from types import MappingProxyType

from exporter.failures.history import History, advance, cluster_failures
from exporter.failures.reading import ClusterFailures, FailuresReading
from exporter.model import ClusterSnapshot
from exporter.store import Store


class FailureTracker:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._histories: dict[str, History] = {}
        self._clusters: dict[str, ClusterFailures] = {}

    def step(self, snapshot: ClusterSnapshot) -> None:
        """Fold one new snapshot in and publish; cheap enough to run in the poll job."""
        history = advance(self._histories.get(snapshot.cluster, History()), snapshot)
        self._histories[snapshot.cluster] = history
        self._clusters[snapshot.cluster] = cluster_failures(history, snapshot)
        self._store.publish(FailuresReading(MappingProxyType(dict(self._clusters))))

    def forget(self, cluster: str) -> None:
        """A reload removed the cluster: drop its history and its part of the reading."""
        self._histories.pop(cluster, None)
        if self._clusters.pop(cluster, None) is not None:
            self._store.publish(FailuresReading(MappingProxyType(dict(self._clusters))))

    def history(self, cluster: str) -> History:
        return self._histories.get(cluster, History())
