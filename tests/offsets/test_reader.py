"""The offsets reader against the simulated worker: the rate bound at 5,000 connectors, rotation, quiet skips,
change detection, lag from (fake) brokers, and a worker that 500s on offsets changing nothing else."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import httpx
import pytest

from exporter.config import ClusterConfig, build_config
from exporter.connect.client import build_http_client
from exporter.connect.poller import ConnectPoller
from exporter.features import OffsetsPlug
from exporter.offsets.brokers import BrokerError
from exporter.offsets.reader import SPREAD, Offsets, OffsetsReader
from exporter.offsets.reading import OffsetsReading, OffsetsStatus
from exporter.store import Store
from simulator.connect.server import SimThread, connect_in_thread
from simulator.connect.state import SimCluster
from simulator.faults import Fault
from simulator.kafka import SimTopics
from tests.support.brokers import FakeBrokers
from tests.support.clocks import ManualClock
from tests.support.daemon_harness import quick_config, running_daemon

OFFSETS_PATH = r"/connectors/[^/]+/offsets"


def cluster_config(urls: list[str], **opts: Any) -> ClusterConfig:
    raw = {"web": {"listen_address": "127.0.0.1:0"}, "clusters": [{"name": "c", "urls": urls, **opts}]}
    return build_config(raw).clusters[0]


class PacedWorld:
    """A manual clock shared by the reader and the simulated worker's request log.

    ``sleep`` first lets every request the reader has started reach the worker, then moves the clock: each
    arrival is stamped with the simulated time its request was started at, whatever the machine's load.
    """

    def __init__(self, sim: SimThread, start: float = 1_000_000.0) -> None:
        self.clock = ManualClock(start)
        self.arrivals: list[tuple[float, str]] = []
        self.reader: OffsetsReader | None = None
        original = sim.cluster.offsets

        def recording(name: str) -> Any:
            self.arrivals.append((self.clock.time(), name))
            return original(name)

        sim.cluster.offsets = recording  # type: ignore[method-assign]

    def reader_for(self, cluster: ClusterConfig, client: httpx.AsyncClient) -> OffsetsReader:
        """The reader under test, on this world's clock and sleep."""
        self.reader = OffsetsReader(cluster, client, clock=self.clock.time, monotonic=self.clock.time, sleep=self.sleep)
        return self.reader

    async def sleep(self, seconds: float) -> None:
        for _ in range(3):
            await asyncio.sleep(0)
        assert self.reader is not None
        give_up = time.monotonic() + 60  # only against a hang; never reached when requests flow
        while len(self.arrivals) < self.reader.requests:
            assert time.monotonic() < give_up, "started requests never reached the worker"
            await asyncio.sleep(0.001)
        await self.clock.sleep(seconds)


class Wired:
    """A store and the offsets readers wired as the daemon wires them: snapshots reach the readers through the
    store's subscription, and what a run returns is published."""

    def __init__(self) -> None:
        self.store = Store(["c"])
        self.offsets = Offsets()
        self.store.derive(self.offsets.step)

    def add(self, reader: OffsetsReader) -> OffsetsReader:
        self.offsets.add(reader)
        return reader

    async def run(self, reader: OffsetsReader) -> None:
        reading = await self.offsets.run(reader)
        if reading is not None:
            self.store.publish(reading)


async def snapshot_into(store: Store, cluster: ClusterConfig, client: httpx.AsyncClient) -> None:
    store.publish_cluster(await ConnectPoller(cluster, client).poll())


async def test_5000_connectors_stay_within_the_rate_bound_and_every_one_is_read() -> None:
    sim_cluster = SimCluster(version="3.9.0", worker_count=1)
    for i in range(5000):
        sim_cluster.add_connector(f"c{i:04d}", "sink" if i % 2 else "source", topics=[f"t{i % 7}"])
    with connect_in_thread(sim_cluster) as sim:
        cluster = cluster_config(sim.urls, offsets_interval="2m")  # defaults: 5 requests/s, 2 at a time
        assert cluster.offsets_max_rate == 5.0
        world = PacedWorld(sim)
        wired = Wired()
        store = wired.store
        async with build_http_client(cluster) as client:
            reader = wired.add(world.reader_for(cluster, client))
            await snapshot_into(store, cluster, client)
            runs = 0
            seen: set[str] = set()
            run_starts = []
            while len(seen) < 5000:
                runs += 1
                assert runs <= 12, f"{len(seen)} connectors read after 11 runs"
                start = world.clock.time()
                run_starts.append(start)
                await wired.run(reader)
                seen = {name for _, name in world.arrivals}
                reading = store.view.reading(OffsetsReading)
                assert reading is not None and len(reading.clusters["c"].connectors) == len(seen)
                # The scheduler starts the next run an interval after this one started.
                assert world.clock.time() - start < 120
                world.clock.set(start + 120)
    times = sorted(t for t, _ in world.arrivals)
    # No more than 5 requests in any 1-second window: any 6 consecutive arrivals span a second or more.
    closest = min(b - a for a, b in zip(times, times[5:], strict=False))
    assert closest >= 1.0 - 1e-9, closest
    # 540 of 5,000 per 2-minute run (90% of the interval at 5/s): a rotation of 10 runs, every one read once
    # before any is read again.
    per_run = int(120 * SPREAD * 5) + 1
    assert runs == -(-5000 // per_run) == 10
    assert len(world.arrivals) == sum(min(per_run, 5000 - per_run * i) for i in range(runs - 1)) + per_run
    names = [name for _, name in sorted(world.arrivals)]
    assert len(set(names[:5000])) == 5000
    # What the workers see: a steady trickle, 4.5 requests/s over the rotation.
    rate = len(times) / (runs * 120)
    assert 4.0 < rate <= 5.0, rate
    # Later runs spread over the window rather than going flat out: the first run starts 2 minutes in.
    assert all(any(s <= t < s + 120 for s in run_starts) for t in times)


async def test_few_connectors_are_spread_over_the_interval_after_the_first_run(sim: SimThread) -> None:
    for i in range(4):
        sim.cluster.add_connector(f"s{i}", "sink", topics=["orders"])
    cluster = cluster_config(sim.urls, offsets_interval="100s")
    world = PacedWorld(sim)
    wired = Wired()
    async with build_http_client(cluster) as client:
        reader = wired.add(world.reader_for(cluster, client))
        await snapshot_into(wired.store, cluster, client)
        await wired.run(reader)  # first run: at the rate bound, so the first reading comes at once
        first = [t for t, _ in world.arrivals]
        assert first[-1] - first[0] == pytest.approx(0.6)
        world.clock.set(first[0] + 100)
        await wired.run(reader)
        second = [t for t, _ in world.arrivals[4:]]
        assert [b - a for a, b in itertools.pairwise(second)] == pytest.approx([22.5] * 3)


async def test_change_detection_and_sink_sums(sim: SimThread) -> None:
    sim.cluster.add_connector("sink", "sink", topics=["a", "b"])
    sim.cluster.add_connector("src", "source")
    sim.cluster.set_sink_offsets("sink", {("a", 0): 10, ("a", 1): 5, ("b", 0): 7})
    sim.cluster.set_offsets("src", [{"partition": {"filename": "/x"}, "offset": {"position": 1}}])
    cluster = cluster_config(sim.urls, offsets_interval="1m")
    world = PacedWorld(sim)
    wired = Wired()
    store = wired.store
    async with build_http_client(cluster) as client:
        reader = wired.add(world.reader_for(cluster, client))
        await snapshot_into(store, cluster, client)
        await wired.run(reader)
        first_read = world.clock.time()

        def reading() -> Any:
            r = store.view.reading(OffsetsReading)
            assert r is not None
            return r.clusters["c"]

        c = reading()
        assert c.status is OffsetsStatus.READING and c.requests == 2
        assert dict(c.connectors["sink"].committed) == {"a": 15, "b": 7}
        assert c.connectors["sink"].partitions == 3 and c.connectors["src"].partitions == 1
        assert c.connectors["src"].committed == {}
        assert c.connectors["sink"].last_change is None  # absent until a change is seen
        assert c.connectors["sink"].lag is None  # no brokers configured

        # The same offsets in another order are no change; a source's map that differs is one.
        sim.cluster.set_sink_offsets("sink", {("b", 0): 7, ("a", 1): 5, ("a", 0): 10})
        sim.cluster.set_offsets("src", [{"partition": {"filename": "/x"}, "offset": {"position": 2}}])
        world.clock.advance(60)
        await wired.run(reader)
        c = reading()
        assert c.connectors["sink"].last_change is None
        assert c.connectors["sink"].unchanged_since <= first_read
        assert c.connectors["src"].last_change is not None and c.connectors["src"].last_change > first_read

        # A deleted connector disappears (its 404 is quiet, not an error).
        sim.cluster.delete("src")
        world.clock.advance(60)
        await wired.run(reader)
        c = reading()
        assert set(c.connectors) == {"sink"} and sum(c.errors.values()) == 0


async def test_workers_older_than_3_5_get_no_offsets_requests() -> None:
    old = SimCluster(version="3.4.1", worker_count=1)
    old.add_connector("s", "sink")
    with connect_in_thread(old) as sim:
        cluster = cluster_config(sim.urls)
        wired = Wired()
        store = wired.store
        async with build_http_client(cluster) as client:
            reader = wired.add(OffsetsReader(cluster, client))
            await snapshot_into(store, cluster, client)
            sim.clear_requests()
            await wired.run(reader)
            assert [r for r in sim.requests() if "offsets" in r.path] == []
            reading = store.view.reading(OffsetsReading)
            assert reading is not None and reading.clusters["c"].status is OffsetsStatus.UNSUPPORTED


async def test_an_unknown_version_without_the_route_is_asked_once(sim: SimThread) -> None:
    # A worker that reports a version we cannot read but has no offsets route (Jersey's 404): asked once.
    sim.cluster.add_connector("s", "sink")
    cluster = cluster_config(sim.urls)
    wired = Wired()
    store = wired.store
    async with build_http_client(cluster) as client:
        reader = wired.add(OffsetsReader(cluster, client))
        await snapshot_into(store, cluster, client)
        snap = store.view.clusters["c"]
        from dataclasses import replace

        store.publish_cluster(replace(snap, workers=tuple(replace(w, version="trunk") for w in snap.workers)))
        sim.set_fault(0, Fault.http_status(404, "HTTP 404 Not Found", path=OFFSETS_PATH))
        sim.set_fault(1, Fault.http_status(404, "HTTP 404 Not Found", path=OFFSETS_PATH))
        sim.clear_requests()
        await wired.run(reader)
        await wired.run(reader)
        assert len([r for r in sim.requests() if "offsets" in r.path]) == 1
        reading = store.view.reading(OffsetsReading)
        assert reading is not None and reading.clusters["c"].status is OffsetsStatus.UNSUPPORTED
        assert sum(reading.clusters["c"].errors.values()) == 0


async def test_with_brokers_sinks_come_from_their_groups_and_broker_trouble_stays_apart(sim: SimThread) -> None:
    for name, topic in (("s1", "a"), ("s2", "b")):
        sim.cluster.add_connector(name, "sink", topics=[topic], config={"topics": topic})
    sim.cluster.add_connector("src", "source")
    # What the workers would say differs from the groups: the groups win, the workers are not asked for sinks.
    sim.cluster.set_sink_offsets("s1", {("a", 0): 1, ("a", 1): 2})
    # b: committed past the end -> 0, not -10
    brokers = FakeBrokers(
        {"a": 2, "b": 1},
        {("a", 0): 15, ("a", 1): 20, ("b", 0): 40},
        groups={"connect-s1": {("a", 0): 10, ("a", 1): 20}, "connect-s2": {("b", 0): 50}},
    )
    # A 2 s interval: a second run spreads its requests over the interval (54 s apart at the default 2 min).
    cluster = cluster_config(sim.urls, offsets_interval="2s")
    wired = Wired()
    store = wired.store
    async with build_http_client(cluster) as client:
        reader = wired.add(OffsetsReader(cluster, client, brokers=brokers))  # type: ignore[arg-type]
        await snapshot_into(store, cluster, client)
        sim.clear_requests()
        await wired.run(reader)
        assert [r.path for r in sim.requests() if "offsets" in r.path] == ["/connectors/src/offsets"]
        reading = store.view.reading(OffsetsReading)
        assert reading is not None
        c = reading.clusters["c"]
        assert sorted(brokers.group_calls) == ["connect-s1", "connect-s2"]
        assert brokers.calls == [{("a", 0), ("a", 1), ("b", 0)}]
        assert dict(c.connectors["s1"].committed) == {"a": 30} and c.connectors["s1"].partitions == 2
        assert c.brokers_up is True and dict(c.connectors["s1"].lag or {}) == {"a": 5}
        assert dict(c.connectors["s2"].lag or {}) == {"b": 0}
        assert c.connectors["src"].partitions == 1  # sources still from the workers

        brokers.fail = BrokerError("connect", "all brokers down")
        await wired.run(reader)
        reading = store.view.reading(OffsetsReading)
        assert reading is not None
        c = reading.clusters["c"]
        assert c.brokers_up is False and dict(c.broker_errors) == {"connect": 3}  # 2 groups, then the metadata
        assert c.connectors["s1"].lag is None or dict(c.connectors["s1"].lag) == {}
        assert dict(c.connectors["s1"].committed) == {"a": 30}  # a failed read is not a change and not a reset
        assert sum(c.errors.values()) == 0


async def test_5000_sinks_are_all_read_from_their_groups_in_one_run_within_the_concurrency_bound() -> None:
    sim_cluster = SimCluster(version="3.9.0", worker_count=1)
    for i in range(5000):
        sim_cluster.add_connector(f"sink-{i:04d}", "sink", config={"topics": "orders"})
    sim_cluster.add_connector("only-source", "source")
    groups = {f"connect-sink-{i:04d}": {("orders", 0): i} for i in range(5000)}
    brokers = FakeBrokers({"orders": 1}, {("orders", 0): 5000}, groups=groups)
    with connect_in_thread(sim_cluster) as sim:
        cluster = cluster_config(sim.urls, kafka={"bootstrap_servers": "127.0.0.1:9", "concurrency": 16})
        wired = Wired()
        store = wired.store
        async with build_http_client(cluster) as client:
            reader = wired.add(OffsetsReader(cluster, client, brokers=brokers))  # type: ignore[arg-type]
            await snapshot_into(store, cluster, client)
            sim.clear_requests()
            await wired.run(reader)
            assert [r.path for r in sim.requests() if "offsets" in r.path] == ["/connectors/only-source/offsets"]
    reading = store.view.reading(OffsetsReading)
    assert reading is not None
    c = reading.clusters["c"]
    assert len(brokers.group_calls) == len(set(brokers.group_calls)) == 5000
    assert brokers.most_in_flight == 16
    assert all(dict(c.connectors[f"sink-{i:04d}"].lag or {}) == {"orders": 5000 - i} for i in range(5000))
    assert brokers.requests == 5000 + 1 + 2  # the groups, the metadata, log start and end


async def test_a_sink_that_never_committed_lags_by_every_record_in_its_topics(sim: SimThread) -> None:
    # never: nothing committed on either partition of "orders"; regex: topics.regex matched against the brokers'
    # topics, its own group, one partition committed, one not; late: starts at the end (no lag series for an
    # uncommitted topic); pruned: retention deleted past its committed offset, so it resumes at the log start.
    sim.cluster.add_connector("never", "sink", config={"topics": "orders, missing"})
    sim.cluster.add_connector(
        "regex", "sink", config={"topics.regex": "pay.*", "consumer.override.group.id": "payments-team"}
    )
    sim.cluster.add_connector(
        "late", "sink", config={"topics": "orders", "consumer.override.auto.offset.reset": "latest"}
    )
    sim.cluster.add_connector("pruned", "sink", config={"topics": "logs"})
    brokers = FakeBrokers(
        {"orders": 2, "payments": 2, "payouts": 1, "pay": 1, "__pay": 1, "logs": 1, "other": 1},
        {
            ("orders", 0): 700,
            ("orders", 1): 300,
            ("payments", 0): 100,
            ("payments", 1): 40,
            ("payouts", 0): 5,
            ("pay", 0): 0,
            ("__pay", 0): 9,
            ("logs", 0): 50,
            ("other", 0): 1000,
        },
        starts={("orders", 0): 200, ("payments", 1): 10, ("logs", 0): 20},
        groups={"payments-team": {("payments", 0): 90}, "connect-pruned": {("logs", 0): 3}},
    )
    cluster = cluster_config(sim.urls)
    wired = Wired()
    store = wired.store
    async with build_http_client(cluster) as client:
        reader = wired.add(OffsetsReader(cluster, client, brokers=brokers))  # type: ignore[arg-type]
        await snapshot_into(store, cluster, client)
        await wired.run(reader)
    reading = store.view.reading(OffsetsReading)
    assert reading is not None
    c = reading.clusters["c"]
    never = c.connectors["never"]
    assert dict(never.lag or {}) == {"orders": 500 + 300}  # from the log start, not 0
    assert dict(never.committed) == {"orders": 0} and never.never_committed
    regex = c.connectors["regex"]
    assert dict(regex.lag or {}) == {"pay": 0, "payments": 10 + 30, "payouts": 5}  # __pay is internal
    assert not regex.never_committed
    late = c.connectors["late"]
    assert dict(late.lag or {}) == {} and late.never_committed
    assert dict(c.connectors["pruned"].lag or {}) == {"logs": 30}
    assert ("other", 0) not in brokers.calls[0]


def _without_offsets(text: str) -> list[str]:
    """The exposition's lines that are not offsets families, with the values of timing gauges dropped."""
    skip = ("kafka_connect_sink_", "kafka_connect_connector_offset", "kafka_connect_exporter_offsets", "# ")
    timing = ("kafka_connect_exporter_poll_duration", "kafka_connect_exporter_last_", "process_", "python_")
    lines = []
    for line in text.splitlines():
        if line.startswith(skip) or line.startswith(timing) or line.startswith("kafka_connect_exporter_polls"):
            continue
        lines.append(line)
    return lines


async def test_a_worker_that_500s_on_offsets_changes_nothing_else(sim: SimThread) -> None:
    sim.cluster.add_connector("s", "sink", topics=["orders"])
    sim.cluster.add_connector("src", "source")
    config = quick_config({"c": sim.urls}, offsets_enabled=True, offsets_interval="1s")
    async with running_daemon(config) as ex:
        healthy = await ex.wait_for(
            lambda s: s.value("kafka_connect_sink_committed_offsets_total", connector="s", topic="orders") == 4711,
            what="offsets read",
        )
        for worker in (0, 1):
            sim.set_fault(
                worker,
                Fault.http_status(
                    500, "Request cannot be completed because a rebalance is expected", path=OFFSETS_PATH
                ),
            )
        faulty = await ex.wait_for(
            lambda s: (s.value("kafka_connect_exporter_offsets_errors_total", reason="http_status") or 0) >= 2,
            timeout=15,
            what="offsets errors counted",
        )
        snap = ex.daemon.store.view.clusters["c"]
        assert snap.up and snap.stats.errors.get("http_status", 0) == 0  # the status poll never saw them
    assert faulty.value("kafka_connect_up", connect_cluster="c") == 1
    assert _without_offsets(faulty.text) == _without_offsets(healthy.text)
    # The last good offsets stay: a failed read is not a change and not a reset.
    assert faulty.value("kafka_connect_sink_committed_offsets_total", connector="s", topic="orders") == 4711


async def test_a_reload_that_removes_a_cluster_drops_its_offsets_and_its_reader(sim: SimThread) -> None:
    sim.cluster.add_connector("s", "sink", topics=["orders"])
    both = quick_config({"c": sim.urls, "d": sim.urls}, offsets_enabled=True, offsets_interval="1s")
    only_c = quick_config({"c": sim.urls}, offsets_enabled=True, offsets_interval="1s")

    def committed(s: Any, cluster: str) -> float | None:
        return s.value("kafka_connect_sink_committed_offsets_total", connect_cluster=cluster, connector="s")

    def use_loader(daemon: Any) -> None:
        daemon.loader = lambda: only_c

    async with running_daemon(both, use_loader) as ex:
        await ex.wait_for(lambda s: committed(s, "c") == 4711 and committed(s, "d") == 4711, what="both read")
        assert set(ex.daemon.plug(OffsetsPlug).offsets.readers) == {"c", "d"}
        assert await ex.daemon.reload()
        after = await ex.scrape()
        assert set(ex.daemon.plug(OffsetsPlug).offsets.readers) == {"c"}
    assert committed(after, "d") is None and committed(after, "c") == 4711


async def test_simulated_topics_give_lag_and_a_sink_that_stops_committing_is_stalled_after_the_window() -> None:
    """The demo's stalled sink: SimTopics as the brokers, the reader on a manual clock through 17 minutes."""
    sim_cluster = SimCluster(version="3.9.0", worker_count=1)
    sim_cluster.add_connector("moving-sink", "sink", config={"topics": "a"})
    sim_cluster.add_connector("stuck-sink", "sink", config={"topics": "b"})
    topics = SimTopics(sim_cluster, records_per_step=400, behind=50, stalled=["stuck-sink"])
    topics.step()
    with connect_in_thread(sim_cluster) as sim:
        cluster = cluster_config(sim.urls, offsets_interval="1m")
        world = PacedWorld(sim)
        wired = Wired()
        store = wired.store
        stalled_after: list[int] = []
        async with build_http_client(cluster) as client:
            world.reader = reader = wired.add(
                OffsetsReader(
                    cluster,
                    client,
                    clock=world.clock.time,
                    monotonic=world.clock.time,
                    sleep=world.sleep,
                    brokers=topics,
                )
            )
            await snapshot_into(store, cluster, client)
            for minute in range(17):
                start = world.clock.time()
                await wired.run(reader)
                reading = store.view.reading(OffsetsReading)
                assert reading is not None
                found = reading.clusters["c"].connectors
                assert not found["moving-sink"].stalled
                if found["stuck-sink"].stalled:
                    stalled_after.append(minute)
                topics.step()
                world.clock.set(start + 60)
    assert found["moving-sink"].lag == {"a": 50}
    assert found["stuck-sink"].lag == {"b": 16 * 400 + 50}  # its one commit trailed by 50; nothing since
    assert reading.clusters["c"].brokers_configured and reading.clusters["c"].brokers_up
    # Its offsets stand still from the first read (minute 0): stalled from the read 15 minutes later on.
    assert stalled_after == [15, 16]


async def test_with_brokers_every_sink_is_read_every_run_whatever_the_rate_bound() -> None:
    sim_cluster = SimCluster(version="3.9.0", worker_count=1)
    for i in range(10):
        sim_cluster.add_connector(f"s{i}", "sink", config={"topics": f"t{i}"})
    sim_cluster.add_connector("src", "source")
    topics = SimTopics(sim_cluster)
    topics.step()
    with connect_in_thread(sim_cluster) as sim:
        # 0.01 requests/s reads 8 connectors in a 15-minute window from the workers: the sinks do not wait for it.
        cluster = cluster_config(sim.urls, offsets_interval="1m", offsets_max_rate=0.01)
        world = PacedWorld(sim)
        wired = Wired()
        store = wired.store
        async with build_http_client(cluster) as client:
            world.reader = reader = wired.add(
                OffsetsReader(
                    cluster, client, clock=world.clock.time, monotonic=world.clock.time, sleep=world.sleep,
                    brokers=topics,
                )
            )  # fmt: skip
            await snapshot_into(store, cluster, client)
            for run in range(3):
                topics.step()
                await wired.run(reader)
                reading = store.view.reading(OffsetsReading)
                assert reading is not None
                found = reading.clusters["c"].connectors
                assert all(found[f"s{i}"].read_at == world.clock.time() for i in range(10)), run
                assert all(dict(found[f"s{i}"].lag or {}) == {f"t{i}": 50} for i in range(10))
            assert [name for _, name in world.arrivals] == ["src"] * 3  # the workers: sources only
