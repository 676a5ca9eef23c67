"""The Confluent Cloud source against the simulated Cloud API over loopback, on a manual clock.

Every expected counter value is either a literal (constant per-minute rates times counted minutes) or
the sum the simulated API itself would serve for the counted minutes; every check reads the parsed
Prometheus exposition.
"""

from __future__ import annotations

import io
import itertools
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import structlog
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from exporter import logs
from exporter.cloud.metrics import collect_cloud
from exporter.cloud.reading import CloudReading
from exporter.cloud.source import CloudSource
from exporter.store import Store
from simulator.cloud.server import CloudSimulator
from simulator.cloud.state import CloudState
from tests.cloud.sim import CLUSTER, ENV, LKC, SECRET, T0, Published, make_config
from tests.metrics.oracle import SnapshotCollector
from tests.support.clocks import ManualClock


@dataclass
class Env:
    clock: ManualClock
    state: CloudState
    sim: CloudSimulator
    store: Store
    source: Published

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        collector = SnapshotCollector(self.store)
        collector.add_group(collect_cloud)
        registry = CollectorRegistry()
        registry.register(collector)
        text = generate_latest(registry).decode()
        out = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def text(self) -> str:
        collector = SnapshotCollector(self.store)
        collector.add_group(collect_cloud)
        registry = CollectorRegistry()
        registry.register(collector)
        return generate_latest(registry).decode()

    async def cycle(self, status: bool = True) -> None:
        if status:
            for name in self.source.clusters:
                await self.source.poll_status(name)
        await self.source.poll_metrics()


def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


def counter(m: dict[Any, float], metric: str, cid: str, connector: str, cluster: str = CLUSTER) -> float:
    return m[key(f"kafka_connect_cloud_{metric}_total", connect_cluster=cluster, connector=connector, connector_id=cid)]


@pytest.fixture
async def cloud() -> AsyncIterator[Any]:
    made: list[tuple[CloudSimulator, CloudSource]] = []

    async def make(setup: Any = None, **config: Any) -> Env:
        clock = ManualClock(T0)
        state = CloudState(clock=clock.time, api_secret=SECRET)
        state.add_cluster(ENV, LKC)
        if setup is not None:
            setup(state)
        sim = CloudSimulator(state)
        await sim.start()
        store = Store()
        source = CloudSource(make_config(sim.url, **config), clock)
        made.append((sim, source))
        return Env(clock, state, sim, store, Published(source, store))

    yield make
    for sim, source in made:
        await source.aclose()
        await sim.stop()


def two_connectors(state: CloudState) -> None:
    state.add_connector(
        ENV,
        LKC,
        "orders-src",
        connector_id="lcc-orders1",
        rates={"sent_records": 100, "sent_bytes": 25_000},
        created_at=T0 - 7200,
    )
    state.add_connector(
        ENV,
        LKC,
        "s3-sink",
        type="sink",
        class_name="S3_SINK",
        connector_id="lcc-s3sink1",
        rates={"received_records": 40, "received_bytes": 8_000, "dead_letter_queue_records": 1},
        created_at=T0 - 7200,
    )


def iso_minute(ts: int) -> str:
    from exporter.cloud.query import iso

    return iso(ts)


def parse_iso(text: str) -> int:
    from exporter.cloud.query import parse_timestamp

    return parse_timestamp(text)


def first_bucket() -> int:
    """The first minute the source counts: the newest final one at its first poll (delay 240 s)."""
    return int((T0 - 240) // 60 * 60)


async def test_simulated_hour_with_overlapping_polls_counts_every_minute_once(cloud: Any) -> None:
    def setup(state: CloudState) -> None:
        two_connectors(state)
        rng = random.Random(7)
        for minute in range(first_bucket() - 600, T0 + 3 * 3600, 60):  # irregular per-minute deltas
            state.set_value("lcc-s3sink1", "received_records", minute, rng.randint(0, 5000))

    env = await cloud(setup, sink_lag=False)
    # Polls every 20 s (three per minute, so consecutive polls see overlapping data), plus a second
    # poll at the very same instant now and then.
    for i in range(180):
        await env.cycle(status=i % 3 == 0)
        if i % 7 == 0:
            await env.source.poll_metrics()
        env.clock.advance(20)
    m = env.scrape()
    newest = m[key("kafka_connect_cloud_newest_bucket_timestamp_seconds", connect_cluster=CLUSTER)]
    now = env.clock.time() - 20  # the last poll
    assert newest == (now - 240) // 60 * 60
    minutes = int((newest - first_bucket()) // 60) + 1
    assert minutes == 60  # an hour of minute buckets
    assert counter(m, "sent_records", "lcc-orders1", "orders-src") == 6000.0
    assert counter(m, "sent_bytes", "lcc-orders1", "orders-src") == 1_500_000.0
    assert counter(m, "received_records", "lcc-orders1", "orders-src") == 0.0
    assert counter(m, "dead_letter_queue_records", "lcc-s3sink1", "s3-sink") == 60.0
    expected = env.state.total("lcc-s3sink1", "received_records", first_bucket(), int(newest) + 60)
    assert counter(m, "received_records", "lcc-s3sink1", "s3-sink") == expected
    assert expected > 60 * 1000  # the irregular series really was summed, not a constant

    # Every /query window re-reads the 10 minutes counted before it (never before the first one) and ends one
    # new minute later than the previous one of the same metric.
    windows: dict[str, list[str]] = {}
    for r in env.state.requests_to("metrics", "/query"):
        windows.setdefault(r.body["aggregations"][0]["metric"], []).append(r.body["intervals"][0])
    first = iso_minute(first_bucket())
    for metric, intervals in windows.items():
        spans = [i.split("/") for i in intervals]
        assert all(parse_iso(b[1]) - parse_iso(a[1]) == 60 for a, b in itertools.pairwise(spans)), metric
        assert all(
            parse_iso(b[0]) == max(parse_iso(a[1]) - 600, parse_iso(first)) for a, b in itertools.pairwise(spans)
        )
        assert len(spans) == 60, metric  # one query per metric per new minute, none for repeated polls


async def test_outage_of_several_minutes_is_backfilled_on_recovery(cloud: Any) -> None:
    env = await cloud(two_connectors, sink_lag=False)
    for _ in range(10):
        await env.cycle()
        env.clock.advance(60)
    before = env.scrape()
    assert counter(before, "sent_records", "lcc-orders1", "orders-src") == 1000.0
    assert before[key("kafka_connect_cloud_api_up", api="metrics")] == 1.0

    env.state.set_outage("metrics", 503)
    for _ in range(7):
        await env.cycle()
        env.clock.advance(60)
    during = env.scrape()
    assert during[key("kafka_connect_cloud_api_up", api="metrics")] == 0.0
    assert counter(during, "sent_records", "lcc-orders1", "orders-src") == 1000.0  # nothing invented
    served_503 = len([r for r in env.state.requests_to("metrics") if r.status == 503])
    assert during[key("kafka_connect_cloud_api_errors_total", api="metrics", reason="server_error")] == served_503
    assert served_503 == 7 * 3  # every cycle: one attempt plus max_retries=2, then gives up

    env.state.set_outage("metrics", None)
    await env.cycle()
    after = env.scrape()
    newest = after[key("kafka_connect_cloud_newest_bucket_timestamp_seconds", connect_cluster=CLUSTER)]
    minutes = int((newest - first_bucket()) // 60) + 1
    assert minutes == 18  # 10 before, 7 during the outage, 1 more: all counted, the outage backfilled
    assert counter(after, "sent_records", "lcc-orders1", "orders-src") == 1800.0
    assert counter(after, "received_bytes", "lcc-s3sink1", "s3-sink") == 18 * 8000.0
    assert after[key("kafka_connect_cloud_api_up", api="metrics")] == 1.0


async def test_a_connect_api_outage_holds_the_last_known_state_until_stale_after(cloud: Any) -> None:
    env = await cloud(two_connectors, stale_after="5m")

    def held(m: dict[Any, float]) -> dict[Any, float]:
        names = ("kafka_connect_connector_", "kafka_connect_task_state", "kafka_connect_cloud_")
        return {k: v for k, v in m.items() if k[0].startswith(names) and "api" not in dict(k[1])}

    for _ in range(5):
        await env.cycle()
        env.clock.advance(60)
    before = env.scrape()
    assert before[key("kafka_connect_up", connect_cluster=CLUSTER)] == 1.0
    sent = counter(before, "sent_records", "lcc-orders1", "orders-src")
    assert sent > 0

    env.state.set_outage("connect", 503)
    for minute in range(1, 5):  # up to 4 minutes after the last successful read: held
        await env.cycle()
        during = env.scrape()
        assert during[key("kafka_connect_up", connect_cluster=CLUSTER)] == 0.0
        assert (
            during[key("kafka_connect_connector_state", connect_cluster=CLUSTER, connector="s3-sink", state="RUNNING")]
            == 1.0
        )
        assert {k: v for k, v in held(during).items() if "total" not in k[0] and "newest" not in k[0]} == {
            k: v for k, v in held(before).items() if "total" not in k[0] and "newest" not in k[0]
        }, minute
        assert counter(during, "sent_records", "lcc-orders1", "orders-src") >= sent  # counting goes on
        env.clock.advance(60)
    assert env.store.view.clusters[CLUSTER].stale

    env.clock.advance(120)  # the held state is now more than 5 minutes old
    await env.cycle()
    after = env.scrape()
    assert after[key("kafka_connect_up", connect_cluster=CLUSTER)] == 0.0
    assert not [k for k in after if k[0] == "kafka_connect_connector_state"]
    assert counter(after, "sent_records", "lcc-orders1", "orders-src") >= sent  # counters never reset

    env.state.set_outage("connect", None)
    await env.cycle()
    back = env.scrape()
    assert (
        back[key("kafka_connect_connector_state", connect_cluster=CLUSTER, connector="s3-sink", state="RUNNING")] == 1.0
    )
    assert counter(back, "sent_records", "lcc-orders1", "orders-src") >= counter(
        after, "sent_records", "lcc-orders1", "orders-src"
    )


async def test_timeouts_are_retried_then_counted_and_recovered(cloud: Any) -> None:
    env = await cloud(two_connectors, request_timeout=0.2, sink_lag=False)
    await env.cycle()
    env.state.set_outage("metrics", 200, delay=0.5)  # answers too late, every time
    env.clock.advance(60)
    await env.source.poll_metrics()
    m = env.scrape()
    assert m[key("kafka_connect_cloud_api_errors_total", api="metrics", reason="timeout")] == 3.0
    assert m[key("kafka_connect_cloud_api_up", api="metrics")] == 0.0
    env.state.set_outage("metrics", None)
    env.clock.advance(60)
    await env.source.poll_metrics()
    m = env.scrape()
    assert m[key("kafka_connect_cloud_api_up", api="metrics")] == 1.0
    assert counter(m, "sent_records", "lcc-orders1", "orders-src") == 300.0  # 3 minutes, none lost


async def test_pagination_across_pages_with_identical_bodies(cloud: Any) -> None:
    def setup(state: CloudState) -> None:
        for i in range(7):
            state.add_connector(
                ENV,
                LKC,
                f"src-{i}",
                connector_id=f"lcc-p{i}",
                rates={"sent_records": 10 * (i + 1)},
                created_at=T0 - 3600,
            )
        state.max_groups_per_page = 2  # 7 connectors -> 4 pages per query

    env = await cloud(setup)
    await env.cycle()
    env.state.set_outage("metrics", 503)  # 45 minutes without data, then one backfill of 46 minutes
    for _ in range(45):
        env.clock.advance(60)
        await env.source.poll_metrics()
    env.state.set_outage("metrics", None)
    env.clock.advance(60)
    polled_at = env.clock.time()
    await env.source.poll_metrics()
    m = env.scrape()
    newest = m[key("kafka_connect_cloud_newest_bucket_timestamp_seconds", connect_cluster=CLUSTER)]
    assert newest == (polled_at - 240) // 60 * 60
    minutes = int((newest - first_bucket()) // 60) + 1
    assert minutes >= 47  # the retries' backoff moved the clock too
    for i in range(7):
        assert counter(m, "sent_records", f"lcc-p{i}", f"src-{i}") == minutes * 10 * (i + 1)
    ok = [r for r in env.state.requests_to("metrics", "/query") if r.status == 200]
    last = [r for r in ok if r.body["aggregations"][0]["metric"].endswith("/sent_records")][-4:]
    assert [dict(r.query).get("page_token") is not None for r in last] == [False, True, True, True]
    assert all(r.body == last[0].body for r in last)  # identical body on every page


async def test_expired_page_token_restarts_the_window_and_never_double_counts(cloud: Any) -> None:
    def setup(state: CloudState) -> None:
        for i in range(3):
            state.add_connector(
                ENV, LKC, f"c{i}", connector_id=f"lcc-t{i}", rates={"sent_records": 5}, created_at=T0 - 600
            )
        state.max_groups_per_page = 1

    env = await cloud(setup)
    env.state.page_token_ttl = -1.0  # every token is already expired
    await env.cycle()
    m = env.scrape()
    assert counter(m, "sent_records", "lcc-t0", "c0") == 0.0  # page 1 alone is never committed
    assert m[key("kafka_connect_cloud_api_up", api="metrics")] == 0.0
    env.state.page_token_ttl = 300.0
    env.clock.advance(60)
    await env.source.poll_metrics()
    m = env.scrape()
    assert [counter(m, "sent_records", f"lcc-t{i}", f"c{i}") for i in range(3)] == [10.0, 10.0, 10.0]


async def test_429_waits_for_ratelimit_reset_with_jitter_and_counts_it(cloud: Any) -> None:
    env = await cloud(two_connectors)
    await env.cycle()
    env.clock.advance(60)
    env.state.fail_next(
        "metrics",
        429,
        headers=[
            ("rateLimit-limit", "300"),
            ("rateLimit-remaining", "0"),
            ("rateLimit-reset", "42"),
            ("rateLimit-reset", "7"),
        ],
    )
    env.clock.slept.clear()
    await env.source.poll_metrics()
    assert env.clock.slept and 42.0 <= env.clock.slept[0] <= 42.0 + 5.0  # the larger of the two scopes, jittered
    m = env.scrape()
    assert m[key("kafka_connect_cloud_api_errors_total", api="metrics", reason="rate_limited")] == 1.0
    assert m[key("kafka_connect_cloud_api_up", api="metrics")] == 1.0
    assert counter(m, "sent_records", "lcc-orders1", "orders-src") == 200.0

    # Connect API: Retry-After.
    env.state.fail_next("connect", 429, headers={"Retry-After": "13", "X-RateLimit-Reset": "13"})
    env.clock.slept.clear()
    await env.source.poll_status(CLUSTER)
    assert 13.0 <= env.clock.slept[0] <= 18.0
    m = env.scrape()
    assert m[key("kafka_connect_cloud_api_errors_total", api="connect", reason="rate_limited")] == 1.0
    assert m[key("kafka_connect_up", connect_cluster=CLUSTER)] == 1.0


async def test_simulated_api_rate_limit_is_honoured_and_budget_kept(cloud: Any) -> None:
    """The API allows 3 requests a minute here; a cycle needs 5. The source waits for the resets the
    429s announce and finishes with exact counters; the simulator never saw more than 3+3 429s."""
    env = await cloud(two_connectors)
    env.state.rate_limits["metrics"] = 3
    await env.cycle()
    m = env.scrape()
    limited = [r for r in env.state.requests_to("metrics") if r.status == 429]
    assert limited and m[key("kafka_connect_cloud_api_errors_total", api="metrics", reason="rate_limited")] == len(
        limited
    )
    assert counter(m, "sent_records", "lcc-orders1", "orders-src") == 100.0
    assert counter(m, "dead_letter_queue_records", "lcc-s3sink1", "s3-sink") == 1.0


async def test_request_budget_whatever_the_number_of_connectors(cloud: Any) -> None:
    def setup(state: CloudState) -> None:
        for i in range(1200):
            state.add_connector(
                ENV, LKC, f"c{i:04d}", connector_id=f"lcc-b{i:04d}", rates={"sent_records": 1}, created_at=T0 - 600
            )

    env = await cloud(setup, connectors_per_query=500, max_requests_per_minute=10)
    for _ in range(5):
        await env.cycle(status=False) if env.source.clusters[CLUSTER].connectors else await env.cycle()
        env.clock.advance(60)
    queries = [r for r in env.state.requests_to("metrics", "/query") if r.status == 200]
    # 3 filters of <= 500 ids x 5 metrics per new minute, never one query per connector.
    assert {len(r.body["filter"]["filters"]) for r in queries} == {500, 200}
    times = sorted(r.at for r in env.state.requests)
    assert max(sum(1 for t in times if s <= t < s + 60) for s in times) <= 10
    m = env.scrape()
    newest = m[key("kafka_connect_cloud_newest_bucket_timestamp_seconds", connect_cluster=CLUSTER)]
    minutes = int((newest - first_bucket()) // 60) + 1
    assert counter(m, "sent_records", "lcc-b0999", "c0999") == float(minutes)
    assert len(queries) == 15 * len({r.body["intervals"][0] for r in queries})


async def test_401_and_403_set_up_to_zero_and_log_once_per_change(cloud: Any) -> None:
    env = await cloud(two_connectors, sink_lag=False)
    await env.cycle()
    env.clock.advance(60)
    env.state.api_secret = "rotated-elsewhere"  # the key is revoked while the exporter runs
    with capture_logs() as captured:
        for _ in range(5):
            await env.cycle()
            env.clock.advance(60)
        m = env.scrape()
        assert m[key("kafka_connect_cloud_api_up", api="metrics")] == 0.0
        assert m[key("kafka_connect_cloud_api_up", api="connect")] == 0.0
        assert m[key("kafka_connect_up", connect_cluster=CLUSTER)] == 0.0
        # No retries on 401: one attempt per API per cycle.
        assert m[key("kafka_connect_cloud_api_errors_total", api="connect", reason="unauthorized")] == 5.0
        assert m[key("kafka_connect_cloud_api_errors_total", api="metrics", reason="unauthorized")] == 5.0

        env.state.api_secret = SECRET
        env.state.forbid("metrics")
        for _ in range(3):
            await env.cycle()
            env.clock.advance(60)
        m = env.scrape()
        assert m[key("kafka_connect_cloud_api_up", api="metrics")] == 0.0
        assert m[key("kafka_connect_cloud_api_up", api="connect")] == 1.0
        assert m[key("kafka_connect_cloud_api_errors_total", api="metrics", reason="forbidden")] == 3.0
        env.state.forbid("metrics", False)
        await env.cycle()
        await env.cycle()
    failing = [e for e in captured if e["event"] == "ccloud_api_failing"]
    assert [(e["api"], e["reason"]) for e in failing] == [
        ("connect", "unauthorized"),
        ("metrics", "unauthorized"),
        ("metrics", "forbidden"),
    ]
    assert "Unauthorized" in failing[0]["error"] and "HTTP 401" in failing[0]["error"]
    assert "not authorized" in failing[2]["error"]  # the {"errors":[{"detail"}]} body, parsed
    recovered = [(e["api"]) for e in captured if e["event"] == "ccloud_api_recovered"]
    assert recovered == ["connect", "metrics"]
    m = env.scrape()
    assert m[key("kafka_connect_cloud_api_up", api="metrics")] == 1.0


async def test_cloud_states_and_an_unknown_state_pass_through(cloud: Any) -> None:
    def setup(state: CloudState) -> None:
        two_connectors(state)
        state.set_state(ENV, LKC, "s3-sink", "DEGRADED", tasks=["RUNNING", ("USER_ACTIONABLE_ERROR", "bad key")])
        state.add_connector(ENV, LKC, "new-one", connector_id="lcc-new1", state="PROVISIONING", tasks=[])
        state.add_connector(
            ENV, LKC, "odd", connector_id="lcc-odd1", state="RESTARTING", tasks=["SYSTEM_ERROR", "HIBERNATING"]
        )

    env = await cloud(setup)
    await env.cycle()
    m = env.scrape()
    state = "kafka_connect_connector_state"
    assert m[key(state, connect_cluster=CLUSTER, connector="s3-sink", state="DEGRADED")] == 1.0
    assert m[key(state, connect_cluster=CLUSTER, connector="s3-sink", state="RUNNING")] == 0.0
    assert m[key(state, connect_cluster=CLUSTER, connector="new-one", state="PROVISIONING")] == 1.0
    assert m[key(state, connect_cluster=CLUSTER, connector="odd", state="RESTARTING")] == 1.0
    assert m[key(state, connect_cluster=CLUSTER, connector="odd", state="DELETED")] == 0.0
    by_state = "kafka_connect_connector_tasks_by_state"
    assert m[key(by_state, connect_cluster=CLUSTER, connector="s3-sink", state="USER_ACTIONABLE_ERROR")] == 1.0
    assert m[key(by_state, connect_cluster=CLUSTER, connector="odd", state="HIBERNATING")] == 1.0
    assert m[key(by_state, connect_cluster=CLUSTER, connector="odd", state="SYSTEM_ERROR")] == 1.0
    info = key(
        "kafka_connect_connector_info",
        connect_cluster=CLUSTER,
        connector="s3-sink",
        connector_class="S3_SINK",
        connector_type="sink",
        worker_id="s3-sink",
        connector_id="lcc-s3sink1",
        connector_version="",  # the Connect API v1 names no plugin versions
        task_version="",
    )
    assert m[info] == 1.0
    snap = env.store.view.clusters[CLUSTER]
    assert snap.kind.value == "ccloud" and snap.connector("s3-sink").tasks[1].trace == "bad key"  # type: ignore[union-attr]


async def test_connector_deleted_midway_loses_its_series(cloud: Any) -> None:
    env = await cloud(two_connectors)
    for _ in range(20):
        await env.cycle()
        env.clock.advance(60)
    assert counter(env.scrape(), "sent_records", "lcc-orders1", "orders-src") == 2000.0
    env.state.delete_connector(ENV, LKC, "orders-src")
    for _ in range(20):
        await env.cycle()
        env.clock.advance(60)
    m = env.scrape()
    assert not [k for k in m if ("connector", "orders-src") in k[1] or ("connector_id", "lcc-orders1") in k[1]]
    assert counter(m, "received_records", "lcc-s3sink1", "s3-sink") == 40 * 40.0


async def test_explicit_ids_without_connect_api_grant_still_count(cloud: Any) -> None:
    def setup(state: CloudState) -> None:
        two_connectors(state)
        state.forbid("connect")

    env = await cloud(
        setup, environments=[{"id": ENV, "clusters": [{"id": LKC, "name": CLUSTER, "connector_ids": ["lcc-s3sink1"]}]}]
    )
    for _ in range(3):
        await env.cycle()
        env.clock.advance(60)
    m = env.scrape()
    assert counter(m, "received_records", "lcc-s3sink1", "lcc-s3sink1") == 120.0  # name unknown: the id
    assert m[key("kafka_connect_up", connect_cluster=CLUSTER)] == 0.0
    assert not [k for k in m if ("connector_id", "lcc-orders1") in k[1]]


async def test_metric_discovery_skips_metrics_the_api_does_not_offer(cloud: Any) -> None:
    def setup(state: CloudState) -> None:
        two_connectors(state)
        state.hidden_metrics = {"dead_letter_queue_records"}

    env = await cloud(setup, discover_metrics=True)
    with capture_logs() as captured:
        for _ in range(3):
            await env.cycle()
            env.clock.advance(60)
    assert [e["metrics"] for e in captured if e["event"] == "ccloud_metrics_not_offered"] == [
        ["dead_letter_queue_records"]
    ]
    m = env.scrape()
    assert not [k for k in m if k[0].startswith("kafka_connect_cloud_dead_letter")]
    assert counter(m, "sent_records", "lcc-orders1", "orders-src") == 300.0
    assert all(r.status == 200 for r in env.state.requests)
    assert len(env.state.requests_to("metrics", "/descriptors/metrics")) == 1


async def test_secret_never_appears_in_logs_metrics_or_snapshots(cloud: Any) -> None:
    stream = io.StringIO()
    logs.configure("debug", "json", stream)
    # No logs.register_secret() here: the source must keep the secret out on its own.
    try:
        env = await cloud(two_connectors)
        env.state.fail_next("metrics", 500, times=2)
        env.state.fail_next("connect", 502, plain_text=True)
        for _ in range(3):
            await env.cycle()
            env.clock.advance(60)
        env.state.api_secret = "other"
        await env.cycle()
        env.state.fail_next("connect", 429, headers={"Retry-After": "1"})
        env.state.api_secret = SECRET
        await env.cycle()
        output = stream.getvalue()
        # The logs really were captured, retries and failures included.
        assert "ccloud_retry" in output and '"reason": "unauthorized"' in output
        assert SECRET not in output
        assert SECRET not in env.text()
        assert SECRET not in repr(env.store.view)
        assert SECRET not in repr(env.source.config) and SECRET not in str(env.source.config.model_dump())
        assert SECRET not in json.dumps(env.source.config.model_dump(mode="json"))
    finally:
        structlog.reset_defaults()


async def test_metrics_poll_before_the_first_status_answer_asks_nothing_and_loses_nothing(cloud: Any) -> None:
    env = await cloud(two_connectors)
    await env.source.poll_metrics()
    assert env.state.requests_to("metrics") == []
    await env.cycle()
    m = env.scrape()
    assert counter(m, "sent_records", "lcc-orders1", "orders-src") == 100.0  # the newest final minute
    assert m[key("kafka_connect_cloud_newest_bucket_timestamp_seconds", connect_cluster=CLUSTER)] == first_bucket()


async def test_cloud_families_are_documented_and_pass_promtool(cloud: Any) -> None:
    import re
    import shutil
    import subprocess
    from pathlib import Path

    env = await cloud(two_connectors)
    await env.cycle()
    text = env.text()
    rendered = set()
    for family in text_string_to_metric_families(text):
        if family.name.startswith("kafka_connect_cloud_"):
            rendered.add(family.name + ("_total" if family.type == "counter" else ""))
    doc = (Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(kafka_connect_cloud_[a-z0-9_]+)` \|", doc, re.MULTILINE))
    assert rendered == documented
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (make tools)")
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_daemon_serves_managed_connectors_beside_self_managed_ones(sim: Any) -> None:
    """The real daemon (scheduler, collector, /metrics) with a Connect cluster and the Cloud source."""
    from exporter.config import build_config
    from tests.support.daemon_harness import running_daemon

    sim.cluster.add_connector("local-sink", "sink", tasks_max=1)
    state = CloudState(api_secret=SECRET)  # real clock
    state.add_connector(ENV, LKC, "orders-src", connector_id="lcc-orders1", rates={"sent_records": 60})
    state.connector(ENV, LKC, "orders-src").created_at -= 3600
    async with CloudSimulator(state) as cloud_sim:
        config = build_config(
            {
                "web": {"listen_address": "127.0.0.1:0"},
                "clusters": [{"name": "self", "urls": sim.urls, "poll_interval": 0.2}],
                "confluent_cloud": {
                    **make_config(cloud_sim.url).model_dump(include={"api_url", "metrics_url"}),
                    "api_key": state.api_key,
                    "api_secret": SECRET,
                    "environments": [{"id": ENV, "clusters": [{"id": LKC, "name": CLUSTER}]}],
                    "status_interval": 0.2,
                    "metrics_interval": 0.2,
                },
            }
        )
        async with running_daemon(config) as ex:
            scrape = await ex.wait_for(
                lambda s: bool(s.value("kafka_connect_cloud_sent_records_total", connector="orders-src")),
                what="cloud throughput",
            )
    assert scrape.current_state("kafka_connect_connector_state", connect_cluster=CLUSTER, connector="orders-src") == (
        "RUNNING"
    )
    assert scrape.current_state("kafka_connect_connector_state", connect_cluster="self", connector="local-sink")
    sent = scrape.value("kafka_connect_cloud_sent_records_total", connector="orders-src")
    assert sent is not None and sent >= 60.0 and sent % 60 == 0  # whole final minutes (the wall clock moves)
    assert scrape.value("kafka_connect_cloud_api_up", api="metrics") == 1.0


async def test_minutes_that_grow_after_counting_are_completed_exactly_once_across_an_outage(cloud: Any) -> None:
    """The simulated API first serves 70 % of each minute and the rest 3 minutes later, across pages of one
    connector each; a 6-minute outage of the Metrics API falls in the middle. Every counter ends at the sum of
    what the API serves for the counted minutes now, and the late counter at what those minutes gained."""

    def setup(state: CloudState) -> None:
        two_connectors(state)
        state.late_share = 0.3
        state.late_after = 180.0
        state.max_groups_per_page = 1  # two connectors: every window answers in two pages

    env = await cloud(setup)
    for i in range(40):
        if i == 15:
            env.state.set_outage("metrics", 503)
        if i == 21:
            env.state.set_outage("metrics", None)
        await env.cycle(status=i % 2 == 0)
        if i % 5 == 0:
            await env.source.poll_metrics()  # a repeated poll in the same instant
        env.clock.advance(60)
    env.clock.advance(-60)  # back to the last poll: what the API served then
    m = env.scrape()
    newest = int(m[key("kafka_connect_cloud_newest_bucket_timestamp_seconds", connect_cluster=CLUSTER)])
    minutes = range(first_bucket(), newest + 60, 60)
    assert len(minutes) == 40
    state = env.state
    late_expected = 0.0
    polls = [T0 + 60 * i for i in range(40) if not 15 <= i <= 20]  # the successful metrics polls

    def first_value(t: int, full: float) -> float:
        # A minute is first read at the first successful poll once it is final (4 minutes after it began);
        # it is complete if it has been public (3 minutes after it began) for 3 more minutes by then.
        read = min(p for p in polls if (p - 240) // 60 * 60 >= t)
        return full if read >= t + 360 else float(int(full * 0.7))

    for metric, cid, name in (
        ("sent_records", "lcc-orders1", "orders-src"),
        ("received_records", "lcc-s3sink1", "s3-sink"),
    ):
        conn = state.by_id(cid)
        assert conn is not None
        served = [state.served(conn, metric, t) or 0.0 for t in minutes]
        first_seen = [first_value(t, conn.value(metric, t) or 0.0) for t in minutes]
        assert first_seen.count(conn.value(metric, minutes[20])) >= 5  # the outage's older minutes
        assert counter(m, metric, cid, name) == sum(served)
        late_expected_metric = sum(served) - sum(first_seen)
        assert late_expected_metric > 0
        late = m[key("kafka_connect_cloud_late_total", connect_cluster=CLUSTER, metric=metric)]
        assert late == late_expected_metric
        late_expected += late
        # Everything but the newest 3 minutes has grown to its full value by now.
        assert served[:-3] == [conn.value(metric, t) for t in minutes][:-3]
    assert late_expected > 0


async def test_a_minute_that_shrinks_is_logged_once_and_never_lowers_a_counter(cloud: Any) -> None:
    env = await cloud(two_connectors)
    for _ in range(3):
        await env.cycle()
        env.clock.advance(60)
    before = counter(env.scrape(), "sent_records", "lcc-orders1", "orders-src")
    assert before == 300.0
    env.state.set_value("lcc-orders1", "sent_records", first_bucket(), 40)  # revised down after counting
    with capture_logs() as logs:
        for _ in range(3):
            await env.cycle()
            env.clock.advance(60)
    shrank = [e for e in logs if e["event"] == "ccloud_minute_shrank"]
    assert len(shrank) == 1 and shrank[0]["counted"] == 100.0 and shrank[0]["now"] == 40.0
    assert counter(env.scrape(), "sent_records", "lcc-orders1", "orders-src") == 600.0  # 3 new minutes, no drop


# -- managed sink lag and stalled sinks -----------------------------------------------------------------------

LAG = "io.confluent.kafka.server/consumer_lag_offsets"


def render(env: Env) -> Any:
    """The lag and health families as the daemon serves them (the same renderers), parsed."""
    from exporter.failures.metrics import FailuresRenderer
    from exporter.offsets.metrics import OffsetsRenderer
    from exporter.render import Collected, render_blocks
    from tests.support.scrape import parse_exposition

    blocks = render_blocks(env.store.view, [OffsetsRenderer(), FailuresRenderer(), Collected(collect_cloud)])
    return parse_exposition(b"".join(b.header_text + b"".join(b.samples) for b in blocks).decode())


def lag_of(s: Any, connector: str, topic: str) -> float | None:
    value: float | None = s.value(
        "kafka_connect_sink_lag_records", connect_cluster=CLUSTER, connector=connector, topic=topic
    )
    return value


def sinks_with_lag(state: CloudState) -> None:
    two_connectors(state)
    state.add_connector(ENV, LKC, "pg-sink", type="sink", connector_id="lcc-pgsink1", created_at=T0 - 7200)
    group = "connect-lcc-s3sink1"
    state.set_lag(LKC, group, "orders", 0, 70, since=T0 - 3600)
    state.set_lag(LKC, group, "orders", 1, 50, since=T0 - 3600)
    state.set_lag(LKC, group, "payments", 0, 0, since=T0 - 3600)
    state.set_lag(LKC, "connect-lcc-other99", "orders", 0, 999, since=T0 - 3600)  # not one of ours
    state.set_lag(LKC, "connect-lcc-orders1", "orders", 0, 5, since=T0 - 3600)  # a source has no sink group


async def test_managed_sink_lag_is_one_query_per_cluster_in_the_shared_family(cloud: Any) -> None:
    env = await cloud(sinks_with_lag)
    for _ in range(3):
        await env.cycle()
        env.clock.advance(60)
    s = render(env)
    assert (
        s.value("kafka_connect_sink_lag_records", connect_cluster=CLUSTER, connector="s3-sink", topic="orders") == 120
    )
    assert (
        s.value("kafka_connect_sink_lag_records", connect_cluster=CLUSTER, connector="s3-sink", topic="payments") == 0
    )
    assert s.label_values("kafka_connect_sink_lag_records", "connector") == {"s3-sink"}  # pg-sink: no data, absent
    queries = [r for r in env.state.requests_to("metrics", "/query") if r.body["aggregations"][0]["metric"] == LAG]
    assert len(queries) == 3  # one per cycle for the cluster's two sinks
    flt = queries[0].body["filter"]
    assert flt["filters"][0] == {"field": "resource.kafka.id", "op": "EQ", "value": LKC}
    assert sorted(f["value"] for f in flt["filters"][1]["filters"]) == ["connect-lcc-pgsink1", "connect-lcc-s3sink1"]
    assert queries[0].body["group_by"] == ["metric.consumer_group_id", "metric.topic"]

    env.state.set_lag(LKC, "connect-lcc-s3sink1", "orders", 1, 10, since=T0 - 3600)
    await env.cycle()
    assert lag_of(render(env), "s3-sink", "orders") == 80


async def test_a_403_for_the_lag_metric_is_logged_once_and_everything_else_keeps_working(cloud: Any) -> None:
    def setup(state: CloudState) -> None:
        sinks_with_lag(state)
        state.lag_forbidden.add(LKC)

    env = await cloud(setup)
    with capture_logs() as logs:
        for _ in range(4):
            await env.cycle()
            env.clock.advance(60)
    assert [e["event"] for e in logs].count("ccloud_sink_lag_forbidden") == 1
    queries = [r for r in env.state.requests_to("metrics", "/query") if r.body["aggregations"][0]["metric"] == LAG]
    assert [q.status for q in queries] == [403]  # not asked again within the hour
    s = render(env)
    assert s.samples("kafka_connect_sink_lag_records") == []
    m = env.scrape()
    assert m[key("kafka_connect_cloud_api_up", api="metrics")] == 1.0
    assert counter(m, "sent_records", "lcc-orders1", "orders-src") == 400.0

    env.state.lag_forbidden.clear()  # granted later: asked again after an hour
    env.clock.advance(3600)
    await env.cycle()
    assert (
        render(env).value(
            "kafka_connect_sink_lag_records", connect_cluster=CLUSTER, connector="s3-sink", topic="orders"
        )
        == 120
    )


async def test_sink_lag_can_be_turned_off(cloud: Any) -> None:
    env = await cloud(sinks_with_lag, sink_lag=False)
    await env.cycle()
    assert [r for r in env.state.requests_to("metrics", "/query") if r.body["aggregations"][0]["metric"] == LAG] == []
    assert render(env).samples("kafka_connect_sink_lag_records") == []


def health_of(env: Env, connector: str) -> str | None:
    samples = render(env).samples("kafka_connect_connector_health", connect_cluster=CLUSTER, connector=connector)
    return next((labels["health"] for labels, v in samples if v == 1), None)


async def test_a_running_sink_with_lag_that_receives_nothing_for_15_minutes_is_degraded(cloud: Any) -> None:
    def setup(state: CloudState) -> None:
        sinks_with_lag(state)  # s3-sink receives 40 records a minute
        state.set_sink_lag(ENV, LKC, "pg-sink", {"events": 300}, since=T0 - 3600)
        state.connector(ENV, LKC, "pg-sink").rates = {"received_records": 10}
        for minute in range(first_bucket(), T0 + 3600, 60):  # nothing from the first counted minute on
            state.set_value("lcc-pgsink1", "received_records", minute, 0)

    env = await cloud(setup)

    def health(connector: str) -> str | None:
        return health_of(env, connector)

    for _ in range(14):
        await env.cycle()
        env.clock.advance(60)
    assert health("pg-sink") == "healthy"  # 14 counted minutes without records: not yet
    await env.cycle()
    await env.cycle()
    env.clock.advance(60)
    await env.cycle()
    assert health("pg-sink") == "degraded"
    assert health("s3-sink") == "healthy"  # receiving, lag or not
    assert env.store.view.reading(CloudReading).stalled_sinks(CLUSTER) == frozenset({"pg-sink"})  # type: ignore[union-attr]

    env.state.set_sink_lag(ENV, LKC, "pg-sink", {"events": 0}, since=T0 - 3600)  # caught up: nothing waits
    env.clock.advance(60)
    await env.cycle()
    assert health("pg-sink") == "healthy"


async def test_a_sink_quiet_since_before_the_exporter_started_is_stalled_at_once(cloud: Any) -> None:
    def setup(state: CloudState) -> None:
        sinks_with_lag(state)  # pg-sink has received nothing for two hours
        state.set_sink_lag(ENV, LKC, "pg-sink", {"events": 300}, since=T0 - 3600)

    env = await cloud(setup)
    await env.cycle()
    assert health_of(env, "pg-sink") == "degraded"
    assert health_of(env, "s3-sink") == "healthy"  # it received records in the 15 minutes read back
    m = env.scrape()
    assert counter(m, "received_records", "lcc-s3sink1", "s3-sink") == 40.0  # what was read back is not counted
    back = [
        r
        for r in env.state.requests_to("metrics", "/query")
        if r.body["intervals"][0].endswith(iso_minute(first_bucket()))
    ]
    assert len(back) == 1 and "lcc-pgsink1" in json.dumps(back[0].body["filter"])
    await env.cycle()
    # 5 metrics, the lag and the look-back, then (the same minute again) the lag only: no second look-back.
    assert len(env.state.requests_to("metrics", "/query")) == 5 + 1 + 1 + 1


async def test_growing_minutes_are_counted_once_across_a_restart_of_the_api(cloud: Any) -> None:
    """The API process goes away (connections refused) and comes back on the same address, while minutes keep
    growing after publication: every counter ends at what the API serves for the counted minutes, once."""

    def setup(state: CloudState) -> None:
        two_connectors(state)
        state.late_share = 0.5
        state.late_after = 120.0

    env = await cloud(setup, sink_lag=False)
    port = int(env.sim.url.rsplit(":", 1)[1])
    again = CloudSimulator(env.state, port=port)
    try:
        for i in range(20):
            if i == 8:
                await env.sim.stop()
            if i == 12:
                await again.start()
            await env.cycle()
            env.clock.advance(60)
    finally:
        await again.stop()
    env.clock.advance(-60)  # the last poll's time
    m = env.scrape()
    newest = int(m[key("kafka_connect_cloud_newest_bucket_timestamp_seconds", connect_cluster=CLUSTER)])
    minutes = range(first_bucket(), newest + 60, 60)
    assert len(minutes) == 20
    conn = env.state.by_id("lcc-orders1")
    assert conn is not None
    served = sum(env.state.served(conn, "sent_records", t) or 0.0 for t in minutes)
    assert counter(m, "sent_records", "lcc-orders1", "orders-src") == served
    assert served == 100 * 19 + 50  # all but the newest minute complete by now
