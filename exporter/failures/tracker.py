"""The failure tracker: a one-way step on each new snapshot that publishes a ``FailuresReading``.

The daemon's poll jobs (Kafka Connect and Confluent Cloud) hand each snapshot to ``step`` right after
publishing it; the tracker advances that cluster's history (``exporter.failures.history``), with the auto-heal
restarts of the newest ``HealerReading`` in the store (a restart after which the target failed again is a pair of
transitions), and publishes the reading of every cluster. Histories live in memory: a restarted exporter
starts counting again, and failed-since is then the first poll of the new process that saw the failure.
"""

from __future__ import annotations

from types import MappingProxyType

from exporter.failures.history import History, advance, cluster_failures
from exporter.failures.reading import ClusterFailures, FailuresReading
from exporter.healer.reading import HealerReading
from exporter.model import ClusterSnapshot
from exporter.store import Store


class FailureTracker:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._histories: dict[str, History] = {}
        self._clusters: dict[str, ClusterFailures] = {}

    def step(self, snapshot: ClusterSnapshot) -> None:
        """Fold one new snapshot in and publish; cheap enough to run in the poll job."""
        history = advance(self._histories.get(snapshot.cluster, History()), snapshot, restarts=self._restarts(snapshot))
        self._histories[snapshot.cluster] = history
        self._clusters[snapshot.cluster] = cluster_failures(history, snapshot)
        self._store.publish(FailuresReading(MappingProxyType(dict(self._clusters))))

    def _restarts(self, snapshot: ClusterSnapshot) -> dict[tuple[str, int | None], float]:
        """When auto-heal last restarted each target of the cluster, from its newest reading in the store."""
        healer = self._store.view.reading(HealerReading)
        heal = healer.clusters.get(snapshot.cluster) if healer is not None else None
        return {(k.connector, k.task): t for k, t in heal.last_restart.items()} if heal is not None else {}

    def forget(self, cluster: str) -> None:
        """A reload removed the cluster: drop its history and its part of the reading."""
        self._histories.pop(cluster, None)
        if self._clusters.pop(cluster, None) is not None:
            self._store.publish(FailuresReading(MappingProxyType(dict(self._clusters))))

    def history(self, cluster: str) -> History:
        return self._histories.get(cluster, History())
