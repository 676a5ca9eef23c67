"""The Kafka topics behind a simulated Connect cluster's sinks, for the demo's sink lag and a stalled sink.

Every ``step()`` each sink topic gets new records (its end offset grows) and each RUNNING sink commits what it
read, a little behind the end; a sink named in ``stalled`` keeps running but never commits again, so its records
pile up while its offsets stand still, the way a sink stuck on a slow or hung external system looks. One partition
per topic. ``end_offsets`` answers as the exporter's broker client does (``exporter.offsets.brokers``).
"""

from __future__ import annotations

from collections.abc import Iterable

from simulator.connect.state import RUNNING, SimCluster

Partition = tuple[str, int]


class SimTopics:
    def __init__(
        self, cluster: SimCluster, *, records_per_step: int = 400, behind: int = 50, stalled: Iterable[str] = ()
    ) -> None:
        self.cluster = cluster
        self.records_per_step = records_per_step
        self.behind = behind  # records a healthy sink trails the end by when it commits
        self.stalled = frozenset(stalled)
        self.ends: dict[Partition, int] = {}
        self.committed: dict[str, dict[Partition, int]] = {}

    def step(self) -> None:
        with self.cluster.lock:
            for name in self.cluster.connector_names():
                c = self.cluster.connector(name)
                if c.type != "sink":
                    continue
                raw = c.config.get("topics", "")
                partitions = [(t.strip(), 0) for t in raw.split(",") if t.strip()]
                for p in partitions:
                    self.ends[p] = self.ends.get(p, 0) + self.records_per_step
                committed = self.committed.setdefault(name, {})
                for p in partitions:
                    if p not in committed or (name not in self.stalled and c.state == RUNNING):
                        committed[p] = max(self.ends[p] - self.behind, committed.get(p, 0))
                self.cluster.set_sink_offsets(name, committed)

    def end_offsets(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        with self.cluster.lock:
            return {p: self.ends.get(p, 0) for p in partitions}
