"""The Kafka topics behind a simulated Connect cluster's sinks, for the demo's sink lag and a stalled sink.

Every ``step()`` each sink topic gets new records (its end offset grows) and each RUNNING sink commits what it
read, a little behind the end; a sink named in ``stalled`` keeps running but never commits again, so its records
pile up while its offsets stand still, the way a sink stuck on a slow or hung external system looks. One partition
per topic. ``topics``, ``log_offsets`` and ``committed`` answer as the exporter's broker client does
(``exporter.offsets.brokers``).
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
        self.commits: dict[str, dict[Partition, int]] = {}  # per sink

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
                committed = self.commits.setdefault(name, {})
                for p in partitions:
                    if p not in committed or (name not in self.stalled and c.state == RUNNING):
                        committed[p] = max(self.ends[p] - self.behind, committed.get(p, 0))
                self.cluster.set_sink_offsets(name, committed)

    # What the exporter's offsets reader asks the brokers (``exporter.offsets.brokers.Brokers``): the topics, each
    # partition's log start (0: nothing is ever deleted here) and end offsets, and each sink's group's commits.
    requests = 0

    def topics(self) -> dict[str, int]:
        self.requests += 1
        with self.cluster.lock:
            return {topic: 1 for topic, _ in self.ends}

    async def log_offsets(self, partitions: Iterable[Partition]) -> tuple[dict[Partition, int], dict[Partition, int]]:
        self.requests += 2
        with self.cluster.lock:
            wanted = [p for p in partitions if p in self.ends]
            return dict.fromkeys(wanted, 0), {p: self.ends[p] for p in wanted}

    async def committed(self, group: str) -> dict[Partition, int]:
        """The group ``connect-<sink>``: what the sink committed (no other group exists here)."""
        self.requests += 1
        with self.cluster.lock:
            return dict(self.commits.get(group.removeprefix("connect-"), {}))
