"""Pure parts of the Cloud source: the exactly-once ledger, Metrics API parsing, error bodies, 429 waits."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.cloud.counters import Ledger, Owner
from exporter.cloud.http import RequestBudget, rate_limit_wait
from exporter.cloud.query import BadResponse, parse_page, query_body
from exporter.cloud.status import parse_expanded
from exporter.transport import status_message
from tests.support.clocks import ManualClock

T0 = 1_800_000_000
OWNERS = {"lcc-1": Owner("c", "one")}


def value(minute: int) -> float:
    return float(minute // 60 % 97)


def serve(start: int, end: int, now: float) -> dict[str, dict[int, float]]:
    """What the API has for lcc-1 in [start, end): minutes published 3 minutes after they begin."""
    return {"lcc-1": {m: value(m) for m in range(start, end, 60) if m <= now - 180}}


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(min_value=0, max_value=400), st.booleans()), min_size=1, max_size=80),
)
def test_every_final_minute_is_counted_exactly_once(steps: list[tuple[int, bool]]) -> None:
    """Whatever the poll times (repeats, sub-minute gaps, long gaps) and failures, the total equals the
    sum of the minutes between the first counted minute and the cursor."""
    ledger = Ledger(["m"], delay=240, max_backfill=7 * 86400, max_window=6 * 3600)  # never skips here
    ledger.watch(OWNERS)
    now = float(T0)
    first: int | None = None
    for gap, fails in steps:
        now += gap
        window = ledger.window("m", now)
        if window is None:
            continue
        first = window.start if first is None else first
        if fails:
            continue  # nothing committed; the cursor stays
        ledger.commit(window, serve(window.start, window.end, now), ["c"])
    if first is None or "m" not in ledger.cursors:
        return
    expected = sum(value(m) for m in range(first, ledger.cursors["m"], 60))
    assert ledger.totals.get("lcc-1", {}).get("m", 0.0) == expected


def growth(minute: int) -> int:
    """When a minute's missing part appears, after its first publication (0-6 minutes; fixed per minute)."""
    return minute // 60 * 7919 % 361


def serve_growing(start: int, end: int, now: float) -> dict[str, dict[int, float]]:
    """Minutes published 3 minutes after they begin with a third missing, complete ``growth`` later."""
    out: dict[int, float] = {}
    for m in range(start, end, 60):
        if m > now - 180:
            continue
        full = value(m) * 3
        out[m] = full if now >= m + 180 + growth(m) else full - value(m)
    return {"lcc-1": out}


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(min_value=0, max_value=400), st.booleans()), min_size=1, max_size=80),
    revision=st.sampled_from([0, 300, 600, 3600]),
    pages=st.booleans(),
)
def test_growing_minutes_add_only_what_they_gained(steps: list[tuple[int, bool]], revision: int, pages: bool) -> None:
    """Whatever the poll times, failures and revision window, each minute contributes exactly the value it had
    the last time a committed window read it: never a part twice, never less than it was once seen to hold."""
    ledger = Ledger(["m"], delay=240, max_backfill=7 * 86400, max_window=6 * 3600, revision=revision)
    ledger.watch(OWNERS)
    now = float(T0)
    last_read: dict[int, float] = {}
    for gap, fails in steps:
        now += gap
        window = ledger.window("m", now)
        if window is None or fails:
            continue
        served = serve_growing(window.start, window.end, now)
        if pages:  # a window answered in two pages is merged before the commit, as the source does
            first = {m: v for m, v in served["lcc-1"].items() if m % 120 == 0}
            served = {"lcc-1": {**first, **{m: v for m, v in served["lcc-1"].items() if m % 120}}}
        ledger.commit(window, served, ["c"])
        for m in range(window.start, window.end, 60):
            if m >= ledger.since.get(("lcc-1", "m"), m):
                last_read[m] = max(last_read.get(m, 0.0), served["lcc-1"].get(m, 0.0))
    expected = sum(last_read.values())
    assert ledger.totals.get("lcc-1", {}).get("m", 0.0) == expected
    late = ledger.late_totals(["c"], ["m"])[("c", "m")]
    assert late >= 0 and (revision >= 60 or late == 0)


def test_a_minute_that_grows_adds_its_gain_once_and_one_that_shrinks_is_reported_once() -> None:
    ledger = Ledger(["m"], delay=240, max_backfill=3600, max_window=3600, revision=600)
    ledger.watch(OWNERS)
    now = float(T0 - T0 % 60 + 30)
    w = ledger.window("m", now)
    assert w is not None and (w.start, w.end) == (now - 30 - 240, now - 30 - 180)
    m0 = w.start
    done = ledger.commit(w, {"lcc-1": {m0: 10.0}}, ["c"])
    assert (done.added, done.late, done.shrunk) == (1, (), ())
    assert ledger.window("m", now + 20) is None  # nothing new, revision read 20 s ago: no request
    w = ledger.window("m", now + 60)
    assert w is not None and (w.start, w.fresh, w.end) == (m0, m0 + 60, m0 + 120)
    done = ledger.commit(w, {"lcc-1": {m0: 14.0, m0 + 60: 5.0}}, ["c"])
    assert done.added == 1 and [(r.minute, r.counted, r.now) for r in done.late] == [(m0, 10.0, 14.0)]
    assert ledger.totals["lcc-1"]["m"] == 19.0 and ledger.late_totals(["c"], ["m"]) == {("c", "m"): 4.0}
    w = ledger.window("m", now + 120)
    assert w is not None
    done = ledger.commit(w, {"lcc-1": {m0: 14.0, m0 + 60: 3.0, m0 + 120: 1.0}}, ["c"])
    assert [(r.minute, r.counted, r.now) for r in done.shrunk] == [(m0 + 60, 5.0, 3.0)]
    assert ledger.totals["lcc-1"]["m"] == 20.0  # the shrink is ignored, the new minute added
    w = ledger.window("m", now + 180)
    assert w is not None
    done = ledger.commit(w, {"lcc-1": {m0: 14.0, m0 + 60: 3.0, m0 + 120: 1.0}}, ["c"])
    assert done.shrunk == ()  # reported once
    w = ledger.window("m", now + 240)
    assert w is not None
    done = ledger.commit(w, {"lcc-1": {m0: 14.0, m0 + 60: 6.0, m0 + 120: 1.0}}, ["c"])
    assert ledger.totals["lcc-1"]["m"] == 21.0  # grew past what was counted: only the excess
    # Past the revision window a minute is no longer read, nor remembered.
    w = ledger.window("m", now + 900)
    assert w is not None and w.start == m0  # never before the first minute counted
    ledger.commit(w, {"lcc-1": {m0: 14.0}}, ["c"])
    w = ledger.window("m", now + 960)
    assert w is not None and w.start == w.fresh - 600 > m0 and m0 not in ledger.counted[("lcc-1", "m")]


def test_a_connector_found_later_is_not_counted_for_minutes_before_it_was_watched() -> None:
    ledger = Ledger(["m"], delay=240, max_backfill=3600, max_window=3600, revision=600)
    ledger.watch(OWNERS)
    now = float(T0 - T0 % 60 + 30)
    for i in range(5):
        w = ledger.window("m", now + 60 * i)
        assert w is not None
        ledger.commit(w, {"lcc-1": {w.fresh: 1.0}}, ["c"])
    ledger.watch({**OWNERS, "lcc-2": Owner("c", "two")})
    w = ledger.window("m", now + 300)
    assert w is not None and w.start < w.fresh
    ledger.commit(w, {"lcc-2": {m: 100.0 for m in range(w.start, w.end, 60)}}, ["c"])
    assert ledger.totals["lcc-2"]["m"] == 100.0  # the new minute only, not the revision window's
    assert ledger.late_totals(["c"], ["m"]) == {("c", "m"): 0.0}


def test_window_bounds_backfill_cap_and_refusal_to_count_twice() -> None:
    ledger = Ledger(["m"], delay=240, max_backfill=3600, max_window=1800)
    ledger.watch(OWNERS)
    now = T0 - T0 % 60 + 30
    w = ledger.window("m", now)
    assert w is not None and (w.start, w.end) == (now - 30 - 240, now - 30 - 180)
    ledger.commit(w, serve(w.start, w.end, now), ["c"])
    assert ledger.window("m", now + 20) is None  # same minute: nothing new, no request
    with pytest.raises(ValueError, match="refusing to count twice"):
        ledger.commit(w, serve(w.start, w.end, now), ["c"])
    later = now + 5 * 3600  # a long outage
    w2 = ledger.window("m", later)
    assert w2 is not None and w2.skipped == (5 * 3600 - 3600) // 60 and w2.end - w2.start == 1800
    assert ledger.newest_bucket("c", ["m"]) == w.start


def test_a_deleted_connector_loses_its_totals() -> None:
    ledger = Ledger(["m"], delay=240, max_backfill=3600, max_window=3600)
    ledger.watch({"lcc-1": Owner("c", "one"), "lcc-2": Owner("c", "two")})
    w = ledger.window("m", T0)
    assert w is not None
    ledger.commit(w, {"lcc-1": {w.start: 5.0}, "lcc-2": {w.start: 7.0}, "lcc-x": {w.start: 1.0}}, ["c"])
    assert [(s.connector, s.values["m"]) for s in ledger.series(["m"])] == [("one", 5.0), ("two", 7.0)]
    assert ledger.watch({"lcc-2": Owner("c", "two")}) == ["lcc-1"]
    assert [(s.connector, s.values["m"]) for s in ledger.series(["m"])] == [("two", 7.0)]


def test_query_body_follows_the_documented_shape() -> None:
    b = query_body("sent_records", ["lcc-b", "lcc-a"], T0 - T0 % 60, T0 - T0 % 60 + 300)
    assert b["aggregations"] == [{"metric": "io.confluent.kafka.connect/sent_records"}]  # no agg
    assert b["granularity"] == "PT1M" and b["group_by"] == ["resource.connector.id"] and b["limit"] == 1000
    assert [f["value"] for f in b["filter"]["filters"]] == ["lcc-a", "lcc-b"] and b["filter"]["op"] == "OR"
    assert "now" not in b["intervals"][0] and b["intervals"][0].endswith("Z")


def test_parse_page_reads_both_timestamp_forms_grouped_answers_and_skips_bad_points() -> None:
    data = {
        "data": [
            {"timestamp": "2027-01-15T08:05:00.000Z", "resource.connector.id": "lcc-1", "value": 3},
            {"timestamp": "2027-01-15T08:04:00Z", "resource.connector.id": "lcc-1", "value": 2.5},
            {"timestamp": "yesterday", "resource.connector.id": "lcc-1", "value": 1},
            {"timestamp": "2027-01-15T08:04:00Z", "resource.connector.id": "lcc-1", "value": -1},
            {"resource.connector.id": "lcc-2", "points": [{"timestamp": "2027-01-15T08:05:00Z", "value": 9}]},
        ],
        "meta": {"pagination": {"page_size": 5, "next_page_token": "abc"}},
    }
    points, token, problems = parse_page(data)
    assert [(c, v) for c, _, v in points] == [("lcc-1", 3.0), ("lcc-1", 2.5), ("lcc-2", 9.0)]
    assert points[0][1] - points[1][1] == 60 and token == "abc" and len(problems) == 2
    with pytest.raises(BadResponse):
        parse_page({"errors": []})
    assert parse_page({"data": []}) == ([], None, [])


def test_parse_expanded_tolerates_missing_expansions_and_reports_broken_entries() -> None:
    data: dict[str, Any] = {
        "ok": {
            "id": {"id": "lcc-1", "id_type": "ID"},
            "info": {"config": {"connector.class": "S3_SINK", "tasks.max": "3", "type": "source"}},
            "status": {"name": "ok", "type": "sink", "connector": {"state": "RUNNING", "worker_id": "ok"}, "tasks": []},
            "future_field": {"x": 1},
        },
        "no-status": {"id": {"id": "lcc-2"}},
        "bad-task": {"status": {"connector": {"state": "RUNNING"}, "tasks": [{"id": "zero", "state": "RUNNING"}]}},
    }
    connectors, problems = parse_expanded(data)
    assert [(c.name, c.type, c.class_name, c.tasks_max, c.connector_id) for c in connectors] == [
        ("ok", "sink", "S3_SINK", 3, "lcc-1")
    ]
    assert len(problems) == 2
    assert parse_expanded(data, only_ids={"lcc-9"})[0] == ()
    with pytest.raises(BadResponse):
        parse_expanded(["a", "b"])


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        (
            b'{"errors":[{"status":"400","detail":"fieldA must not be null"},{"detail":"and B"}]}',
            400,
            "HTTP 400: fieldA must not be null; and B",
        ),
        (b'{"error":{"code":404,"message":"account not found"}}', 404, "HTTP 404: account not found"),
        (b'{"error_code":500,"message":"Failed to find any class"}', 500, "HTTP 500: Failed to find any class"),
        (b"<html><body><h1>502 Bad Gateway</h1></body></html>", 502, "HTTP 502: 502 Bad Gateway"),
        (b"", 429, "HTTP 429: Too Many Requests"),
    ],
)
def test_error_bodies_of_every_shape_become_one_line(body: bytes, status: int, expected: str) -> None:
    assert status_message(body, status, "Too Many Requests") == expected


def test_rate_limit_wait_reads_relative_resets_and_retry_after() -> None:
    h = httpx.Headers([("rateLimit-reset", "12"), ("rateLimit-reset", "40")])
    assert rate_limit_wait(h, T0) == 40.0
    assert rate_limit_wait(httpx.Headers({"rateLimit-reset": "3, 9"}), T0) == 9.0
    assert rate_limit_wait(httpx.Headers({"Retry-After": "7"}), T0) == 7.0
    assert rate_limit_wait(httpx.Headers({"Retry-After": "Wed, 15 Jan 2027 08:00:30 GMT"}), 1_800_000_000.0) is not None
    assert rate_limit_wait(httpx.Headers({"rateLimit-reset": "999999"}), T0) == 300.0
    assert rate_limit_wait(httpx.Headers({"rateLimit-reset": "soon"}), T0) is None


def test_request_budget_never_exceeds_its_rate() -> None:
    clock = ManualClock(T0)
    budget = RequestBudget(5, clock)

    async def go() -> list[float]:
        sent = []
        for _ in range(23):
            await budget.acquire()
            sent.append(clock.time())
        return sent

    sent = asyncio.run(go())
    assert max(sum(1 for t in sent if s <= t < s + 60) for s in sent) == 5
    assert sent[-1] - sent[0] >= 4 * 60  # 23 requests at 5 a minute
