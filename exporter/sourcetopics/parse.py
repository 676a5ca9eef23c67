"""``GET /connectors/{c}/topics`` (KIP-558, Kafka 2.5+): ``{"<c>": {"topics": ["orders", ...]}}``."""

from __future__ import annotations

from typing import Any

from exporter.connect.parse import BadResponse

DEBEZIUM_HEARTBEAT_PREFIX = "__debezium-heartbeat."


def parse_topics(name: str, data: Any) -> tuple[str, ...]:
    """The connector's active topics, sorted. An unknown connector answers 200 with an empty list."""
    if not isinstance(data, dict):
        raise BadResponse("expected an object of connector -> {topics: [...]}")
    entry = data.get(name)
    if entry is None:
        return ()
    topics = entry.get("topics") if isinstance(entry, dict) else None
    if not isinstance(topics, list) or not all(isinstance(t, str) and t for t in topics):
        raise BadResponse(f"connector {name!r}: topics is not a list of names")
    return tuple(sorted(set(topics)))
