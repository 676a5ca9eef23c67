"""The Metrics API v2 ``/query`` and ``/descriptors`` semantics of the simulated Confluent Cloud.

Follows ccloud-api.md A.1-A.3: request validation (one aggregation, granularity enum and its maximum
interval, ``now`` arithmetic, filter grammar, limit 1..1000), FLAT and GROUPED answers with points
newest first inside lexicographically ordered groups, page tokens that demand an identical body and
absolute intervals and that expire, and data visible only ``latency`` seconds after its minute began.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from simulator.cloud.state import DESCRIPTORS, METRIC_PREFIX, METRICS, CloudState
from simulator.connector import MINUTE

GROUP_KEY = "resource.connector.id"
LAG_METRIC = "io.confluent.kafka.server/consumer_lag_offsets"
KAFKA_KEY = "resource.kafka.id"
# Labels of consumer_lag_offsets (resource kafka), as group_by keys and filter fields (ccloud-api.md, Part C).
LAG_LABELS = ("metric.consumer_group_id", "metric.topic", "metric.partition")
GRANULARITY = {
    "PT1M": 60,
    "PT5M": 300,
    "PT15M": 900,
    "PT30M": 1800,
    "PT1H": 3600,
    "PT4H": 4 * 3600,
    "PT6H": 6 * 3600,
    "PT12H": 12 * 3600,
    "P1D": 86400,
    "ALL": 0,
}
MAX_INTERVAL = {"PT1M": 6 * 3600, "PT5M": 86400, "PT15M": 4 * 86400, "PT30M": 7 * 86400}


class QueryError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def error_body(status: int, detail: str) -> dict[str, Any]:
    """The Metrics API's ``ErrorResponse`` shape."""
    return {"errors": [{"status": str(status), "detail": detail}]}


# -- time -----------------------------------------------------------------------------------------------

_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_NOW = re.compile(r"^now(?:([+-])(\d+)([mhd]))?(?:\|([mhd]))?$")
_UNIT = {"m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    m = _DURATION.match(text)
    if not m or text in ("P", "PT"):
        raise QueryError(400, f"invalid duration {text!r}")
    d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    return d * 86400 + h * 3600 + mi * 60 + s


def parse_instant(text: str, now: float) -> float:
    m = _NOW.match(text)
    if m:
        t = now
        if m.group(1):
            t += (1 if m.group(1) == "+" else -1) * int(m.group(2)) * _UNIT[m.group(3)]
        if m.group(4):
            t = (t // _UNIT[m.group(4)]) * _UNIT[m.group(4)]
        return t
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(400, f"invalid timestamp {text!r} in intervals") from None
    if dt.tzinfo is None:
        raise QueryError(400, f"timestamp {text!r} has no time zone")
    return dt.timestamp()


def parse_interval(text: str, now: float) -> tuple[float, float]:
    if not isinstance(text, str) or text.count("/") != 1:
        raise QueryError(400, f"invalid interval {text!r}: use <start>/<end>, <start>/<duration> or <duration>/<end>")
    left, right = text.split("/")
    if left.startswith("P"):
        end = parse_instant(right, now)
        start = end - parse_duration(left)
    elif right.startswith("P"):
        start = parse_instant(left, now)
        end = start + parse_duration(right)
    else:
        start, end = parse_instant(left, now), parse_instant(right, now)
    if end <= start:
        raise QueryError(400, f"interval {text!r} ends before it starts")
    return start, end


def iso(ts: float, millis: bool) -> str:
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (".000Z" if millis else "Z")


# -- filter ---------------------------------------------------------------------------------------------


def _check_filter(f: Any, fields: tuple[str, ...] = (GROUP_KEY,), resource: str = GROUP_KEY) -> bool:
    """Validates the grammar; returns whether the resource field (the connector or Kafka cluster id) is
    referenced so that every match is within it (what authorizes the query)."""
    if not isinstance(f, dict):
        raise QueryError(400, "filter must be an object")
    op = f.get("op")
    if "field" in f:
        if op not in ("EQ", "GT", "GTE"):
            raise QueryError(400, f"invalid filter op {op!r} for a field filter (EQ, GT, GTE)")
        if f["field"] not in fields:
            raise QueryError(400, f"invalid filter field {f['field']!r} for this metric")
        if not isinstance(f.get("value"), str | int) or isinstance(f.get("value"), bool):
            raise QueryError(400, "filter value must be a string or an integer")
        return bool(f["field"] == resource)
    if op in ("AND", "OR"):
        subs = f.get("filters")
        if not isinstance(subs, list) or not subs:
            raise QueryError(400, f"{op} filter needs a non-empty 'filters' list")
        found = [_check_filter(s, fields, resource) for s in subs]
        return all(found) if op == "OR" else any(found)
    if op == "NOT":
        _check_filter(f.get("filter"), fields, resource)
        return False
    raise QueryError(400, f"invalid filter op {op!r}")


def _compile(f: dict[str, Any]) -> Callable[[str], bool]:
    """A predicate on the connector id (an OR of EQs, the usual case, becomes one set lookup)."""
    test = _compile_labels(f)
    return lambda cid: test({GROUP_KEY: cid})


def _compile_labels(f: dict[str, Any]) -> Callable[[dict[str, str]], bool]:
    """A predicate on a point's labels (field name -> value)."""
    op = f["op"]
    if "field" in f:
        name, value = f["field"], str(f["value"])
        if op == "EQ":
            return lambda labels: labels.get(name) == value
        if op == "GT":
            return lambda labels: labels.get(name, "") > value
        return lambda labels: labels.get(name, "") >= value
    if op == "OR" and all("field" in s and s["op"] == "EQ" for s in f["filters"]):
        fields = {s["field"] for s in f["filters"]}
        if len(fields) == 1:
            only = fields.pop()
            wanted = {str(s["value"]) for s in f["filters"]}
            return lambda labels: labels.get(only) in wanted
    if op in ("AND", "OR"):
        subs = [_compile_labels(s) for s in f["filters"]]
        combine = all if op == "AND" else any
        return lambda labels: combine(p(labels) for p in subs)
    inner = _compile_labels(f["filter"])
    return lambda labels: not inner(labels)


# -- query ----------------------------------------------------------------------------------------------


def _canonical(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _token(body: Any, offset: int, now: float) -> str:
    raw = json.dumps({"h": _canonical(body)[:16], "o": offset, "t": now}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _untoken(token: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        assert isinstance(data, dict)
        return data
    except (ValueError, AssertionError):
        raise QueryError(400, "invalid page_token") from None


def _number(v: float) -> int | float:
    return int(v) if float(v).is_integer() else v


def run_query(state: CloudState, dataset: str, body: Any, page_token: str | None) -> dict[str, Any]:
    """The 200 answer of ``POST /v2/metrics/{dataset}/query``, or a ``QueryError``."""
    now = state.clock()
    if dataset != "cloud":
        raise QueryError(400, f"dataset {dataset!r} holds no connector metrics in this simulator; use 'cloud'")
    if not isinstance(body, dict):
        raise QueryError(400, "request body must be a JSON object")
    aggs = body.get("aggregations")
    if not isinstance(aggs, list) or len(aggs) != 1 or not isinstance(aggs[0], dict):
        raise QueryError(400, "aggregations: exactly one aggregation is supported")
    raw_metric = aggs[0].get("metric")
    metric = raw_metric if isinstance(raw_metric, str) else ""
    known = set(METRICS) - state.hidden_metrics
    lag = metric == LAG_METRIC
    if not lag and (not metric.startswith(METRIC_PREFIX) or metric.removeprefix(METRIC_PREFIX) not in known):
        raise QueryError(400, f"aggregations[0].metric: unknown metric {raw_metric!r}")
    if aggs[0].get("agg", "SUM") != "SUM":
        raise QueryError(400, f"aggregations[0].agg: {metric} requires SUM")
    short = metric.removeprefix(METRIC_PREFIX)
    granularity = body.get("granularity")
    if granularity not in GRANULARITY:
        raise QueryError(400, f"granularity: must be one of {', '.join(GRANULARITY)}")
    group_by = body.get("group_by") or []
    allowed_groups = LAG_LABELS if lag else (GROUP_KEY,)
    if (
        not isinstance(group_by, list)
        or any(g not in allowed_groups for g in group_by)
        or len(set(group_by)) != len(group_by)
    ):
        raise QueryError(400, f"group_by: invalid label(s) {group_by!r} for {metric}")
    if "limit" in body:
        limit = body["limit"]
        if not group_by:
            raise QueryError(400, "limit: only supported with a non-empty group_by")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise QueryError(400, "limit: must be between 1 and 1000")
    else:
        limit = 1000 if granularity == "ALL" else 100
    fmt = body.get("format", "FLAT")
    if fmt not in ("FLAT", "GROUPED") or (fmt == "GROUPED" and not group_by):
        raise QueryError(400, "format: FLAT, or GROUPED with a non-empty group_by")
    if body.get("order_by") is not None and granularity != "ALL":
        raise QueryError(400, "order_by: only valid for granularity ALL")
    flt = body.get("filter")
    resource = KAFKA_KEY if lag else GROUP_KEY
    fields = (KAFKA_KEY, *LAG_LABELS) if lag else (GROUP_KEY,)
    if flt is None or not _check_filter(flt, fields, resource):
        raise QueryError(403, f"a filter on {resource} is required to authorize the query")
    intervals = body.get("intervals")
    if not isinstance(intervals, list) or not intervals:
        raise QueryError(400, "intervals: at least one interval is required")
    spans = [parse_interval(i, now) for i in intervals]
    for start, end in spans:
        cap = MAX_INTERVAL.get(granularity)
        if cap is not None and end - start > cap:
            raise QueryError(400, f"intervals: {granularity} allows intervals of at most {cap // 3600} hours")

    offset = 0
    if page_token is not None:
        if not group_by:
            raise QueryError(400, "page_token: pagination needs a group_by")
        if granularity == "ALL":
            raise QueryError(400, "page_token: pagination is not available for granularity ALL")
        if any("now" in i for i in intervals):
            raise QueryError(400, "page_token: invalid with 'now' in intervals; use absolute timestamps")
        tok = _untoken(page_token)
        if tok.get("h") != _canonical(body)[:16]:
            raise QueryError(400, "page_token: the request body differs from the first page's")
        if now - float(tok.get("t", 0)) > state.page_token_ttl:
            raise QueryError(400, "page_token: expired; start again from the first page")
        offset = int(tok.get("o", 0))

    gsize = GRANULARITY[granularity]
    visible_before = now - state.latency  # minutes starting at or before this are published
    # (labels, points newest first) per group, in the order of their label values.
    groups: list[tuple[dict[str, str], list[tuple[float, float]]]] = []

    def bucket(minutes: Callable[[int], float | None], average: bool) -> list[tuple[float, float]]:
        buckets: dict[float, list[float]] = {}
        for start, end in spans:
            first = int(start // MINUTE) * MINUTE
            for minute in range(first, int(end), MINUTE):
                if minute < start or minute > visible_before:
                    continue
                v = minutes(minute)
                if v is None:
                    continue
                key = start if gsize == 0 else (minute // gsize) * gsize
                buckets.setdefault(key, []).append(v)
        # Counters are deltas, summed over time; gauges are averaged over time (ccloud-api.md A.1).
        merged = {k: (sum(vs) / len(vs) if average else sum(vs)) for k, vs in buckets.items()}
        return sorted(merged.items(), reverse=True)

    if lag:
        kafka = _kafka_ids(flt)
        test = _compile_labels(flt)
        forbidden = [k for k in kafka if k in state.lag_forbidden]
        if forbidden:
            raise QueryError(403, f"The principal is not authorized for resource.kafka.id {forbidden[0]}")
        partitions = state.lag_series(kafka)
        summed: dict[tuple[str, ...], dict[int, float]] = {}
        for (lkc, group, topic, partition), at in partitions.items():
            labels = {KAFKA_KEY: lkc, LAG_LABELS[0]: group, LAG_LABELS[1]: topic, LAG_LABELS[2]: str(partition)}
            if not test(labels):
                continue
            gkey = tuple(labels[g] for g in group_by)
            into = summed.setdefault(gkey, {})
            for k, v in _per_minute(at, spans, visible_before).items():
                into[k] = into.get(k, 0.0) + v  # partitions (and groups not asked for) add up
        for gkey in sorted(summed):
            pts = bucket(summed[gkey].get, average=True)
            if pts:
                groups.append((dict(zip(group_by, gkey, strict=True)), pts))
    else:
        matches = _compile(flt)
        for c in sorted(state.all_connectors(), key=lambda x: x.id):
            if not matches(c.id):
                continue

            def served(minute: int, c: Any = c) -> float | None:
                return state.served(c, short, minute)

            pts = bucket(served, average=False)
            if pts:
                groups.append(({GROUP_KEY: c.id}, pts))
        if not group_by:  # one anonymous group, summed
            merged: dict[float, float] = {}
            for _, pts in groups:
                for ts, v in pts:
                    merged[ts] = merged.get(ts, 0.0) + v
            groups = [({}, sorted(merged.items(), reverse=True))] if merged else []

    per_page = min(limit, state.max_groups_per_page or limit)
    page = groups[offset : offset + per_page]
    more = offset + per_page < len(groups)
    millis = state.timestamp_millis
    data: list[dict[str, Any]] = []
    for labels, pts in page:
        if fmt == "GROUPED":
            data.append({**labels, "points": [{"timestamp": iso(ts, millis), "value": _number(v)} for ts, v in pts]})
        else:
            for ts, v in pts:
                data.append({"timestamp": iso(ts, millis), "value": _number(v), **labels})
    pagination: dict[str, Any] = {"page_size": len(data)}
    if fmt == "FLAT":
        pagination["total_size"] = sum(len(p) for _, p in groups)
    if more:
        pagination["next_page_token"] = _token(body, offset + per_page, now)
    return {"data": data, "meta": {"pagination": pagination}}


def _kafka_ids(f: dict[str, Any]) -> list[str]:
    """The Kafka cluster ids an (authorizing) filter names."""
    if "field" in f:
        return [str(f["value"])] if f["field"] == KAFKA_KEY else []
    if "filters" in f:
        return [k for sub in f["filters"] for k in _kafka_ids(sub)]
    return []


def _per_minute(
    at: list[tuple[int, float]], spans: list[tuple[float, float]], visible_before: float
) -> dict[int, float]:
    """A lag gauge's value at each published minute of the spans: the newest value set at or before it."""
    out: dict[int, float] = {}
    ordered = sorted(at)
    for start, end in spans:
        for minute in range(int(start // MINUTE) * MINUTE, int(end), MINUTE):
            if minute < start or minute > visible_before:
                continue
            value = None
            for since, v in ordered:
                if since <= minute:
                    value = v
            if value is not None:
                out[minute] = value
    return out


def list_descriptors(
    state: CloudState, dataset: str, resource_type: str | None, page_size: str | None, page_token: str | None
) -> dict[str, Any]:
    if dataset != "cloud":
        raise QueryError(400, f"unknown dataset {dataset!r}")
    try:
        size = 100 if page_size is None else int(page_size)
    except ValueError:
        raise QueryError(400, "page_size: not an integer") from None
    if not 1 <= size <= 1000:
        raise QueryError(400, "page_size: must be between 1 and 1000")
    items = [
        {
            "description": d["description"],
            "labels": [],
            "name": d["name"],
            "type": "COUNTER_INT64",
            "exportable": True,
            "unit": d["unit"],
            "lifecycle_stage": "GENERAL_AVAILABILITY",
            "resources": ["connector"],
        }
        for d in DESCRIPTORS
        if resource_type in (None, "connector") and d["name"].removeprefix(METRIC_PREFIX) not in state.hidden_metrics
    ]
    offset = int(_untoken(page_token).get("o", 0)) if page_token else 0
    page = items[offset : offset + size]
    pagination: dict[str, Any] = {"page_size": len(page), "total_size": len(items)}
    if offset + size < len(items):
        raw = json.dumps({"o": offset + size}).encode()
        pagination["next_page_token"] = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return {"data": page, "links": None, "meta": {"pagination": pagination}}


def list_resources() -> dict[str, Any]:
    return {
        "data": [
            {
                "type": "connector",
                "description": "A managed connector.",
                "labels": [{"key": "connector.id", "description": "ID of the connector", "exportable": True}],
            }
        ],
        "meta": {"pagination": {"page_size": 1, "total_size": 1}},
    }
