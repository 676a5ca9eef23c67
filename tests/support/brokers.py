"""Stand-in Kafka brokers for fast tests: ``exporter.offsets.brokers.BrokerOffsets``'s interface, answered from
dictionaries. A real broker stands behind the same interface in tests/integration/test_offsets_real.py."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from exporter.offsets.brokers import BrokerError
from exporter.offsets.parse import SinkPartition


class FakeBrokers:
    """Topics with their partition counts, log start and end offsets, and groups' committed offsets."""

    def __init__(
        self,
        topics: dict[str, int],
        ends: dict[SinkPartition, int],
        starts: dict[SinkPartition, int] | None = None,
        groups: dict[str, dict[SinkPartition, int]] | None = None,
    ) -> None:
        self.topic_counts = topics
        self.ends = ends
        self.starts = starts or {}
        self.groups = groups or {}
        self.calls: list[set[SinkPartition]] = []  # the partitions of each log-offsets request
        self.group_calls: list[str] = []
        self.fail: BrokerError | None = None
        self.requests = 0
        self.in_flight = 0
        self.most_in_flight = 0

    def topics(self) -> dict[str, int]:
        self.requests += 1
        if self.fail is not None:
            raise self.fail
        return dict(self.topic_counts)

    async def log_offsets(
        self, partitions: Iterable[SinkPartition]
    ) -> tuple[dict[SinkPartition, int], dict[SinkPartition, int]]:
        self.requests += 2
        wanted = set(partitions)
        self.calls.append(wanted)
        if self.fail is not None:
            raise self.fail
        starts = {p: self.starts.get(p, 0) for p in wanted if p in self.ends}
        return starts, {p: o for p, o in self.ends.items() if p in wanted}

    async def committed(self, group: str) -> dict[SinkPartition, int]:
        self.requests += 1
        self.group_calls.append(group)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.001)  # an answer takes a while: the others pile up to the bound
        finally:
            self.in_flight -= 1
        if self.fail is not None:
            raise self.fail
        return dict(self.groups.get(group, {}))
