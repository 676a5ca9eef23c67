"""Metrics API v2 query bodies and answers (ccloud-api.md A.1, A.2). Pure functions, no I/O."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from exporter.cloud.config import METRIC_PREFIX

GROUP_BY = "resource.connector.id"
QUERY_LIMIT = 1000  # groups per page, the API maximum
# A managed sink's consumer lag (ccloud-api.md, Part C): resource kafka, one group per sink, by topic.
LAG_METRIC = "io.confluent.kafka.server/consumer_lag_offsets"
KAFKA_ID = "resource.kafka.id"
GROUP_ID = "metric.consumer_group_id"
TOPIC = "metric.topic"


def sink_group(connector_id: str) -> str:
    """The consumer group of a managed sink connector."""
    return f"connect-{connector_id}"


class BadResponse(Exception):
    """The answer does not have the documented shape."""


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def query_body(metric: str, connector_ids: Sequence[str], start: int, end: int) -> dict[str, Any]:
    """One aggregation, per-minute buckets, one group per connector, absolute timestamps so page tokens
    stay valid. ``agg`` is omitted: the API then applies the metric's own aggregation (SUM for these)."""
    ids = sorted(connector_ids)
    flt: dict[str, Any]
    if len(ids) == 1:
        flt = {"field": GROUP_BY, "op": "EQ", "value": ids[0]}
    else:
        flt = {"op": "OR", "filters": [{"field": GROUP_BY, "op": "EQ", "value": i} for i in ids]}
    return {
        "aggregations": [{"metric": METRIC_PREFIX + metric}],
        "filter": flt,
        "granularity": "PT1M",
        "group_by": [GROUP_BY],
        "intervals": [f"{iso(start)}/{iso(end)}"],
        "limit": QUERY_LIMIT,
        "format": "FLAT",
    }


def lag_body(kafka_id: str, groups: Sequence[str], start: int, end: int) -> dict[str, Any]:
    """The lag of the given consumer groups of one Kafka cluster, per group and topic (partitions summed by the
    API over the labels not grouped by), per minute, absolute timestamps so page tokens stay valid."""
    wanted = sorted(groups)
    by_group: dict[str, Any]
    if len(wanted) == 1:
        by_group = {"field": GROUP_ID, "op": "EQ", "value": wanted[0]}
    else:
        by_group = {"op": "OR", "filters": [{"field": GROUP_ID, "op": "EQ", "value": g} for g in wanted]}
    return {
        "aggregations": [{"metric": LAG_METRIC}],
        "filter": {"op": "AND", "filters": [{"field": KAFKA_ID, "op": "EQ", "value": kafka_id}, by_group]},
        "granularity": "PT1M",
        "group_by": [GROUP_ID, TOPIC],
        "intervals": [f"{iso(start)}/{iso(end)}"],
        "limit": QUERY_LIMIT,
        "format": "FLAT",
    }


def parse_lag_page(data: Any) -> tuple[list[tuple[str, str, int, float]], str | None, list[str]]:
    """Points ``(consumer group, topic, minute, lag)`` of one page, the next page token, and problems with single
    points (skipped). Both FLAT and GROUPED answers are read."""
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise BadResponse("expected an object with a 'data' list")
    points: list[tuple[str, str, int, float]] = []
    problems: list[str] = []

    def add(labels: dict[str, Any], item: Any) -> None:
        group, topic = labels.get(GROUP_ID), labels.get(TOPIC)
        if not isinstance(group, str) or not isinstance(topic, str) or not isinstance(item, dict):
            problems.append("lag point without a consumer group or topic")
            return
        try:
            points.append((group, topic, parse_timestamp(item.get("timestamp")), _value(item.get("value"))))
        except BadResponse as exc:
            problems.append(f"{group}/{topic}: {exc}")

    for item in data["data"]:
        if isinstance(item, dict) and isinstance(item.get("points"), list):
            for point in item["points"]:
                add(item, point)
        elif isinstance(item, dict):
            add(item, item)
        else:
            problems.append("lag point is not an object")
    return points, _next_page_token(data), problems


def parse_timestamp(value: Any) -> int:
    """RFC 3339 with or without fractional seconds (``…:00Z`` and ``…:00.000Z`` both occur)."""
    if not isinstance(value, str):
        raise BadResponse(f"timestamp {value!r} is not a string")
    try:
        dt = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise BadResponse(f"timestamp {value[:40]!r} is not RFC 3339") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() // 60) * 60


def _value(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise BadResponse(f"value {raw!r} is not a number")
    value = float(raw)
    if not math.isfinite(value) or value < 0:
        raise BadResponse(f"value {raw!r} is not a finite delta >= 0")
    return value


def parse_page(data: Any) -> tuple[list[tuple[str, int, float]], str | None, list[str]]:
    """Points ``(connector_id, bucket_start, value)`` of one page, the next page token, and problems with
    single points (skipped, never fatal). Both FLAT and GROUPED answers are read."""
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise BadResponse("expected an object with a 'data' list")
    points: list[tuple[str, int, float]] = []
    problems: list[str] = []

    def add(cid: Any, item: Any) -> None:
        if not isinstance(cid, str) or not isinstance(item, dict):
            problems.append("point without a connector id")
            return
        try:
            points.append((cid, parse_timestamp(item.get("timestamp")), _value(item.get("value"))))
        except BadResponse as exc:
            problems.append(f"{cid}: {exc}")

    for item in data["data"]:
        if isinstance(item, dict) and isinstance(item.get("points"), list):
            for point in item["points"]:
                add(item.get(GROUP_BY), point)
        else:
            add(item.get(GROUP_BY) if isinstance(item, dict) else None, item)
    return points, _next_page_token(data), problems


def parse_descriptors(data: Any) -> tuple[set[str], str | None]:
    """Metric names of one descriptors page, and the next page token."""
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise BadResponse("expected an object with a 'data' list")
    names = {d["name"] for d in data["data"] if isinstance(d, dict) and isinstance(d.get("name"), str)}
    return names, _next_page_token(data)


def batches(ids: Iterable[str], size: int) -> list[list[str]]:
    ordered = sorted(ids)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def _next_page_token(data: dict[str, Any]) -> str | None:
    """``meta.pagination.next_page_token`` of a Metrics API page, when there is a next page."""
    meta = data.get("meta")
    if isinstance(meta, dict) and isinstance(meta.get("pagination"), dict):
        raw = meta["pagination"].get("next_page_token")
        if isinstance(raw, str) and raw:
            return raw
    return None
