"""A sink's subscription from its config, and the stall rule for a sink that never committed."""

from __future__ import annotations

from types import MappingProxyType

from exporter.connect.parse import parse_connector
from exporter.model import SinkSubscription
from exporter.offsets.reading import STALLED_AFTER_SECONDS, ConnectorOffsets


def _sink(config: dict[str, str], name: str = "orders-sink", type: str = "sink") -> SinkSubscription | None:
    status = {"name": name, "connector": {"state": "RUNNING", "worker_id": "w:8083"}, "tasks": [], "type": type}
    return parse_connector(name, status, {"name": name, "config": config, "tasks": [], "type": type}).sink


def test_a_sinks_group_and_topics_come_from_its_config() -> None:
    assert _sink({"topics": " orders ,payments,, "}) == SinkSubscription("connect-orders-sink", ("orders", "payments"))
    assert _sink({"topics.regex": "pay.*", "consumer.override.group.id": "team-a"}) == SinkSubscription(
        "team-a", (), "pay.*"
    )
    late = _sink({"topics": "x", "consumer.override.auto.offset.reset": "Latest"})
    assert late is not None and late.offset_reset == "latest"
    assert _sink({"topic": "x"}, type="source") is None  # sources have no subscription


def _offsets(*, never: bool, lag: int, unchanged_for: float) -> ConnectorOffsets:
    return ConnectorOffsets(
        connector="s",
        type="sink",
        partitions=0 if never else 1,
        read_at=10_000.0,
        unchanged_since=10_000.0 - unchanged_for,
        committed=MappingProxyType({"orders": 0}),
        lag=MappingProxyType({"orders": lag}),
        never_committed=never,
    )


def test_a_sink_that_never_committed_is_stalled_after_the_window_while_records_wait() -> None:
    assert _offsets(never=True, lag=800, unchanged_for=STALLED_AFTER_SECONDS).stalled
    assert not _offsets(never=True, lag=800, unchanged_for=STALLED_AFTER_SECONDS - 60).stalled  # a new sink
    assert not _offsets(never=True, lag=0, unchanged_for=STALLED_AFTER_SECONDS * 4).stalled  # nothing to do
