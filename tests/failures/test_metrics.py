"""The fast failure renderer writes the bytes prometheus_client writes for the same data, hostile names too."""

from __future__ import annotations

import random
import string
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.failures.history import History, advance, cluster_failures
from exporter.failures.metrics import FailuresRenderer
from exporter.failures.reading import FailuresReading
from exporter.failures.tracker import FailureTracker
from exporter.model import ClusterSnapshot, Connector, SourceKind, Task
from exporter.offsets.reading import (
    STALLED_AFTER_SECONDS,
    ClusterOffsets,
    ConnectorOffsets,
    OffsetsReading,
    OffsetsStatus,
)
from exporter.render import Block, Collected, render_blocks
from exporter.store import Store, View
from simulator.connect.state import task_trace
from tests.failures.oracle import collect_failures
from tests.support.scrape import parse_exposition

HOSTILE = ('we"ird\\name', "line\nbreak", "ünïcode-∑", "")


def snapshots(at: float, up: bool = True) -> list[ClusterSnapshot]:
    def c(name: str, state: str, *tasks: str) -> Connector:
        return Connector(
            name=name,
            type="sink",
            class_name=None,
            state=state,
            worker_id="w:1",
            tasks=tuple(
                Task(
                    i,
                    s,
                    "w:1",
                    trace=f'org.x.Bad\\"Exception: {name}\nCaused by: a.b.C$D: x' if s != "RUNNING" else None,
                )
                for i, s in enumerate(tasks)
            ),
            trace="no class here" if state == "FAILED" else None,
            tasks_max=2,
        )

    flip = int(at) % 2 == 1
    prod = ClusterSnapshot(
        cluster='pr"od',
        kind=SourceKind.CONNECT,
        taken_at=at,
        duration=0.1,
        up=up,
        poll_interval=30.0,
        connectors=tuple(
            c(n, "FAILED" if flip and i % 2 else "RUNNING", "FAILED" if flip else "RUNNING", "RUNNING")
            for i, n in enumerate(HOSTILE)
        )
        if up
        else (),
    )
    cloud = ClusterSnapshot(
        cluster="cloud",
        kind=SourceKind.CLOUD,
        taken_at=at,
        duration=0.1,
        up=True,
        poll_interval=60.0,
        connectors=(c("s3", "DEGRADED", "USER_ACTIONABLE_ERROR", "RUNNING"),),
    )
    return [prod, cloud]


def view_after(polls: int, last_up: bool = True) -> View:
    histories: dict[str, History] = {}
    clusters = {}
    snaps: list[ClusterSnapshot] = []
    for i in range(polls):
        snaps = snapshots(float(i), up=last_up or i < polls - 1)
        for s in snaps:
            histories[s.cluster] = advance(histories.get(s.cluster, History()), s)
            clusters[s.cluster] = cluster_failures(histories[s.cluster], s)
    return View(
        generation=polls,
        started_at=0.0,
        expected=tuple(s.cluster for s in snaps),
        clusters=MappingProxyType({s.cluster: s for s in snaps}),
        readings=MappingProxyType({FailuresReading: FailuresReading(MappingProxyType(clusters))}),
    )


def text(blocks: list[Block], *, openmetrics: bool = False) -> bytes:
    return b"".join((b.header_openmetrics if openmetrics else b.header_text) + b"".join(b.samples) for b in blocks)


@pytest.mark.parametrize(("polls", "last_up"), [(1, True), (4, True), (5, True), (5, False)])
def test_fast_renderer_matches_prometheus_client(polls: int, last_up: bool) -> None:
    view = view_after(polls, last_up)
    fast = render_blocks(view, [FailuresRenderer()])
    oracle = render_blocks(view, [Collected(collect_failures)])
    assert text(fast) == text(oracle)
    assert text(fast, openmetrics=True) == text(oracle, openmetrics=True)
    assert b"kafka_connect_connector_health{" in text(fast)
    # The last poll of an even count failed prod's tasks (when it could read them).
    prod_failed = b'kafka_connect_failure_info{connect_cluster="pr\\"od"' in text(fast)
    assert prod_failed is (polls % 2 == 0 and last_up)


def test_cached_lines_follow_new_readings() -> None:
    renderer = FailuresRenderer()
    first = text(render_blocks(view_after(4), [renderer]))
    again = text(render_blocks(view_after(4), [renderer]))
    later = text(render_blocks(view_after(5), [renderer]))
    assert first == again and later != first
    assert later == text(render_blocks(view_after(5), [Collected(collect_failures)]))


def offsets_for(cluster: str, connector: str, *, lag: int, unchanged_for: float) -> OffsetsReading:
    sink = ConnectorOffsets(
        connector,
        "sink",
        partitions=1,
        read_at=10_000.0,
        unchanged_since=10_000.0 - unchanged_for,
        committed=MappingProxyType({"t": 5}),
        lag=MappingProxyType({"t": lag}),
    )
    found = ClusterOffsets(cluster, OffsetsStatus.READING, 120.0, MappingProxyType({connector: sink}))
    return OffsetsReading(MappingProxyType({cluster: found}))


def health_of(scrape_text: bytes, connector: str) -> str:
    scrape = parse_exposition(scrape_text.decode())
    [(labels, _)] = scrape.samples("kafka_connect_connector_health", connector=connector)
    return labels["health"]


@pytest.mark.parametrize(
    ("lag", "unchanged_for", "health"),
    [
        (7, STALLED_AFTER_SECONDS, "degraded"),  # records wait, offsets still for the alert's window: stalled
        (7, STALLED_AFTER_SECONDS - 60, "healthy"),  # not still long enough yet
        (0, 10 * STALLED_AFTER_SECONDS, "healthy"),  # nothing to consume: idle, not stalled
    ],
)
def test_a_stalled_sink_is_degraded(lag: int, unchanged_for: float, health: str) -> None:
    view = view_after(1)  # every prod connector RUNNING with its tasks: healthy on the snapshot alone
    name = HOSTILE[0]
    assert health_of(text(render_blocks(view, [FailuresRenderer()])), name) == "healthy"
    offsets = offsets_for('pr"od', name, lag=lag, unchanged_for=unchanged_for)
    stalled = View(
        generation=2,
        started_at=0.0,
        expected=view.expected,
        clusters=view.clusters,
        readings=MappingProxyType({**view.readings, OffsetsReading: offsets}),
    )
    renderer = FailuresRenderer()
    render_blocks(view, [renderer])  # cached lines must follow the new offsets reading
    fast = text(render_blocks(stalled, [renderer]))
    assert health_of(fast, name) == health
    assert fast == text(render_blocks(stalled, [Collected(collect_failures)]))


@settings(max_examples=3, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_ten_thousand_failing_tasks_give_a_handful_of_label_values(seed: int) -> None:
    """10,000 failing tasks whose messages all differ (any text: numbers, ids, quotes, SQL, newlines), through the
    tracker and the renderer: the exposition holds at most a handful of exception and root_cause values."""
    causes = (
        "java.sql.SQLException",
        "org.postgresql.util.PSQLException",
        "java.net.SocketTimeoutException",
        "org.apache.kafka.common.errors.SerializationException",
    )
    alphabet = string.printable + "äöü∑'\"\\"
    rng = random.Random(seed)

    def message(i: int) -> str:
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        return f"{i} {text}".replace("\nCaused by: ", "\n")  # a message never forges a cause line here

    connectors = tuple(
        Connector(
            name=f"c{n}",
            type="sink",
            class_name=None,
            state="RUNNING",
            worker_id="w:1",
            tasks=tuple(
                Task(
                    t,
                    "FAILED",
                    "w:1",
                    task_trace("sink" if t % 2 else "source", (causes[(n + t) % 4], message(n * 10 + t))),
                )
                for t in range(10)
            ),
        )
        for n in range(1000)
    )
    snap = ClusterSnapshot("prod", SourceKind.CONNECT, 1.0, 0.1, True, 30.0, connectors=connectors)
    assert len({t.trace for c in connectors for t in c.tasks}) == 10_000
    store = Store(["prod"])
    store.derive(FailureTracker().step)
    store.publish_cluster(snap)
    exposition = parse_exposition(text(render_blocks(store.view, [FailuresRenderer()])).decode())
    assert len(exposition.samples("kafka_connect_failure_info")) == 10_000
    assert len(exposition.label_values("kafka_connect_failure_info", "exception")) == 1
    assert exposition.label_values("kafka_connect_failure_info", "root_cause") == set(causes)
