"""The failure tracker: a step on each new snapshot that returns the ``FailuresReading`` of every cluster.

It subscribes to the store's snapshots (``Store.derive``, first of the derived steps): each snapshot, Kafka
Connect or Confluent Cloud, advances that cluster's history (``exporter.failures.history``), with the auto-heal
restarts of the newest ``HealerReading`` in the view the store hands over with it (a restart after which the target
failed again is a pair of transitions); the reading it returns is published by the store in the same call. It
never holds the store. Histories live in memory: a restarted exporter starts counting again, and failed-since is
then the first poll of the new process that saw the failure.
"""

from __future__ import annotations

from types import MappingProxyType

from exporter.failures.history import History, advance, cluster_failures
from exporter.failures.reading import ClusterFailures, FailuresReading
from exporter.healer.reading import HealerReading
from exporter.model import ClusterSnapshot
from exporter.store import View


class FailureTracker:
    def __init__(self) -> None:
        self._histories: dict[str, History] = {}
        self._clusters: dict[str, ClusterFailures] = {}

    def step(self, snapshot: ClusterSnapshot, view: View | None = None) -> FailuresReading:
        """Fold one new snapshot in (``view``: the store's, for the healer's restarts); cheap enough to run in the
        poll job."""
        before = self._histories.get(snapshot.cluster, History())
        history = advance(before, snapshot, restarts=_restarts(snapshot, view))
        self._histories[snapshot.cluster] = history
        self._clusters[snapshot.cluster] = cluster_failures(history, snapshot)
        return FailuresReading(MappingProxyType(dict(self._clusters)))

    def forget(self, cluster: str) -> FailuresReading | None:
        """A reload removed the cluster: drop its history; the reading without it, if it had a part."""
        self._histories.pop(cluster, None)
        if self._clusters.pop(cluster, None) is None:
            return None
        return FailuresReading(MappingProxyType(dict(self._clusters)))

    def history(self, cluster: str) -> History:
        return self._histories.get(cluster, History())


def _restarts(snapshot: ClusterSnapshot, view: View | None) -> dict[tuple[str, int | None], float]:
    """When auto-heal last restarted each target of the cluster, from its newest reading in the view."""
    healer = view.reading(HealerReading) if view is not None else None
    heal = healer.clusters.get(snapshot.cluster) if healer is not None else None
    return {(k.connector, k.task): t for k, t in heal.last_restart.items()} if heal is not None else {}
