"""A sink's lag from what the brokers say, pure: its subscription, its committed offsets, each partition's log
start and end offsets.

A partition of the sink's topics with no committed offset is not "no lag": the sink's consumer starts it at the
log start offset (``auto.offset.reset=earliest``, Connect's default for sinks), so every record still in the log
waits. A sink configured to start at the end (``consumer.override.auto.offset.reset=latest``) skips what is in
the log: such a partition adds nothing, and a topic with no committed partition at all has no lag series.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from exporter.model import SinkSubscription
from exporter.offsets.parse import SinkPartition

# Topics a sink's pattern never matches: Kafka's own (the consumer's exclude.internal.topics defaults to true).
INTERNAL_TOPIC_PREFIX = "__"


@lru_cache(maxsize=1024)
def _pattern(regex: str) -> re.Pattern[str] | None:
    try:
        return re.compile(regex)
    except re.error:
        return None  # a Java-only construct: no topic is matched rather than a wrong one


def subscribed_topics(sub: SinkSubscription, topics: Mapping[str, int]) -> tuple[str, ...]:
    """The existing topics the sink consumes: its ``topics`` that exist, or every non-internal topic its
    ``topics.regex`` matches whole (Java's ``Matcher.matches``), sorted."""
    if sub.topics_regex is not None:
        pattern = _pattern(sub.topics_regex)
        if pattern is None:
            return ()
        return tuple(
            sorted(t for t in topics if not t.startswith(INTERNAL_TOPIC_PREFIX) and pattern.fullmatch(t) is not None)
        )
    return tuple(sorted(t for t in set(sub.topics) if t in topics))


def partitions_of(topic_names: Iterable[str], topics: Mapping[str, int]) -> list[SinkPartition]:
    return [(t, p) for t in topic_names for p in range(topics.get(t, 0))]


@dataclass(frozen=True, slots=True)
class SinkLag:
    lag: dict[str, int]  # per topic, summed over its partitions, never negative
    topics: tuple[str, ...]  # the topics the lag was counted for
    uncommitted: int  # partitions of those topics with no committed offset


def sink_lag(
    topic_names: Iterable[str],
    topics: Mapping[str, int],
    committed: Mapping[SinkPartition, int],
    start: Mapping[SinkPartition, int],
    end: Mapping[SinkPartition, int],
    *,
    offset_reset: str = "earliest",
) -> SinkLag:
    """Records waiting per topic: end minus committed for a committed partition (minus the log start when
    retention deleted past the committed offset, as the consumer resets to it then); end minus log start for a
    partition with no committed offset. A partition whose end or start offset is unknown adds nothing."""
    lag: dict[str, int] = {}
    uncommitted = 0
    names = tuple(topic_names)
    for topic in names:
        total: int | None = None
        for partition in range(topics.get(topic, 0)):
            key = (topic, partition)
            last = end.get(key)
            first = start.get(key)
            offset = committed.get(key)
            if offset is None:
                uncommitted += 1
                if offset_reset == "latest":
                    continue
                offset = first
            elif first is not None and first > offset:
                offset = first
            if last is None or last < 0 or offset is None or offset < 0:
                continue
            total = (total or 0) + max(0, last - offset)
        if total is not None:
            lag[topic] = total
    return SinkLag(lag, names, uncommitted)
