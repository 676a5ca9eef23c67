"""The source-topics reader against the simulated worker (GET /connectors/{c}/topics over loopback) and a
stand-in for the brokers' end offsets: growth, exclusivity, heartbeats, silence and its end, the topic-list
cadence and rate bound, and broker trouble."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from exporter.config import ClusterConfig, build_config
from exporter.connect.client import build_http_client
from exporter.connect.poller import ConnectPoller
from exporter.offsets.brokers import BrokerError
from exporter.sourcetopics.reader import SourceTopicsReader
from exporter.sourcetopics.reading import ClusterSourceTopics
from simulator.connect.server import SimThread
from tests.support.clocks import ManualClock

PG = "io.debezium.connector.postgresql.PostgresConnector"
HB = "__debezium-heartbeat.pgcdc"


def cluster_config(urls: list[str], **opts: Any) -> ClusterConfig:
    raw = {
        "web": {"listen_address": "127.0.0.1:0"},
        "clusters": [{"name": "c", "urls": urls, "kafka": {"bootstrap_servers": "127.0.0.1:9"}, **opts}],
    }
    return build_config(raw).clusters[0]


class Brokers:
    """The brokers' end offsets per topic, as the test sets them; every request is recorded."""

    def __init__(self, ends: dict[str, int]) -> None:
        self.ends = ends
        self.calls: list[list[str]] = []
        self.fail: BrokerError | None = None

    def end_offsets(self, topics: list[str]) -> dict[str, int]:
        self.calls.append(list(topics))
        if self.fail is not None:
            raise self.fail
        return {t: e for t, e in self.ends.items() if t in topics}


class Run:
    """A reader handed a fresh snapshot (what the store's subscription does), and its last reading."""

    def __init__(self, reader: SourceTopicsReader, cluster: ClusterConfig, client: httpx.AsyncClient) -> None:
        self.reader, self.cluster, self.client = reader, cluster, client
        self.last: ClusterSourceTopics | None = None

    async def poll(self) -> None:
        self.reader.observe(await ConnectPoller(self.cluster, self.client).poll())

    async def run(self) -> None:
        got = await self.reader.run()
        if got is not None:
            self.last = got


def reading_of(r: Run) -> Any:
    assert r.last is not None
    return r.last


async def test_heartbeats_growth_and_silence_and_its_end(sim: SimThread) -> None:
    sim.cluster.add_connector(
        "pg-cdc", "source", class_name=PG, config={"heartbeat.interval.ms": "2000"}, topics=[HB, "pgcdc.public.orders"]
    )
    sim.cluster.add_connector(
        "idle-cdc",
        "source",
        class_name=PG,
        config={"heartbeat.interval.ms": "2000"},
        topics=["__debezium-heartbeat.idle", "pgcdc.public.orders"],
    )
    sim.cluster.add_connector("files", "source", topics=["lines"])
    sim.cluster.add_connector("snk", "sink", topics=["lines"])
    brokers = Brokers({HB: 10, "__debezium-heartbeat.idle": 5, "pgcdc.public.orders": 3, "lines": 7})
    clock = ManualClock(1_000_000.0)
    cluster = cluster_config(sim.urls)
    async with build_http_client(cluster) as client:
        reader = SourceTopicsReader(
            cluster, client, clock=clock.time, monotonic=clock.time, sleep=clock.sleep, brokers=brokers
        )
        store = Run(reader, cluster, client)
        await store.poll()
        await store.run()
        c = reading_of(store)
        assert set(c.connectors) == {"pg-cdc", "idle-cdc", "files"}  # sources only
        assert [t.topic for t in c.connectors["pg-cdc"].topics] == [HB, "pgcdc.public.orders"]
        orders = {t.topic: t for t in c.connectors["pg-cdc"].topics}["pgcdc.public.orders"]
        assert not orders.exclusive  # both CDC connectors name it
        assert {t.topic: t.exclusive for t in c.connectors["files"].topics} == {"lines": True}
        hb = c.connectors["pg-cdc"].heartbeat
        assert hb is not None and (hb.topic, hb.interval, hb.silent_after, hb.silent) == (HB, 2.0, 20.0, False)
        assert c.connectors["files"].heartbeat is None
        assert brokers.calls == [sorted([HB, "__debezium-heartbeat.idle", "pgcdc.public.orders", "lines"])]

        # Both heartbeat topics grow at every read: nobody is silent (the idle database is up).
        for _ in range(4):
            clock.advance(10)
            brokers.ends[HB] += 7
            brokers.ends["__debezium-heartbeat.idle"] += 7
            await store.run()
            assert reading_of(store).connectors["idle-cdc"].heartbeat.silent is False
            assert reading_of(store).connectors["pg-cdc"].heartbeat.silent is False
        grown_at = clock.time()
        assert {t.topic: t.last_growth for t in reading_of(store).connectors["pg-cdc"].topics}[HB] == grown_at

        # pg-cdc's database stops: its heartbeat topic stays flat; silent once 20 s (5 x 2 s, at least 20 s) passed.
        clock.advance(10)
        brokers.ends["__debezium-heartbeat.idle"] += 7
        await store.run()
        assert reading_of(store).connectors["pg-cdc"].heartbeat.silent is False  # 10 s flat
        clock.advance(10)
        brokers.ends["__debezium-heartbeat.idle"] += 7
        await store.run()
        c = reading_of(store)
        assert c.connectors["pg-cdc"].heartbeat.silent is True  # 20 s flat
        assert c.connectors["idle-cdc"].heartbeat.silent is False
        assert reading_of(store).connectors["pg-cdc"].heartbeat is not None
        assert {n for n, x in c.connectors.items() if x.heartbeat is not None and x.heartbeat.silent} == {"pg-cdc"}

        # The database is back: the next read that sees growth clears it.
        clock.advance(10)
        brokers.ends[HB] += 3
        await store.run()
        assert reading_of(store).connectors["pg-cdc"].heartbeat.silent is False

        # Paused (not RUNNING): a flat heartbeat is expected, never silent.
        sim.cluster.set_state("pg-cdc", "PAUSED")
        await store.poll()
        clock.advance(60)
        await store.run()
        assert reading_of(store).connectors["pg-cdc"].heartbeat.silent is False


async def test_topic_lists_at_the_offsets_cadence_and_rate_bound_end_offsets_every_run(sim: SimThread) -> None:
    for i in range(6):
        sim.cluster.add_connector(f"src-{i}", "source", topics=[f"t{i}"])
    arrivals: list[tuple[float, str]] = []
    clock = ManualClock(1_000_000.0)
    original = sim.cluster.active_topics

    def recording(name: str) -> Any:
        arrivals.append((clock.time(), name))
        return original(name)

    sim.cluster.active_topics = recording  # type: ignore[method-assign]
    brokers = Brokers({f"t{i}": i for i in range(6)})
    cluster = cluster_config(sim.urls, offsets_interval="2m", offsets_max_rate=2)
    async with build_http_client(cluster) as client:
        reader = SourceTopicsReader(
            cluster, client, clock=clock.time, monotonic=clock.time, sleep=clock.sleep, brokers=brokers
        )
        store = Run(reader, cluster, client)
        await store.poll()
        await store.run()
        assert sorted(n for _, n in arrivals) == [f"src-{i}" for i in range(6)]
        times = [t for t, _ in arrivals]
        assert all(b - a >= 0.5 for a, b in itertools.pairwise(times))  # 2 a second at most
        for _ in range(3):  # runs within the offsets interval: no topic lists again, end offsets every run
            clock.advance(15)
            await store.run()
        assert len(arrivals) == 6 and len(brokers.calls) == 4
        sim.cluster.add_connector("src-new", "source", topics=["tn"])  # a new source is read at the next run
        await store.poll()
        clock.advance(15)
        await store.run()
        assert [n for _, n in arrivals[6:]] == ["src-new"]
        clock.advance(120)
        await store.run()
        assert len(arrivals) == 7 + 7  # a full round once the interval passed


async def test_broker_trouble_keeps_the_last_growth_and_counts_the_error(sim: SimThread) -> None:
    sim.cluster.add_connector("pg-cdc", "source", class_name=PG, config={"heartbeat.interval.ms": "1000"}, topics=[HB])
    brokers = Brokers({HB: 1})
    clock = ManualClock(1_000_000.0)
    cluster = cluster_config(sim.urls)
    async with build_http_client(cluster) as client:
        reader = SourceTopicsReader(
            cluster, client, clock=clock.time, monotonic=clock.time, sleep=clock.sleep, brokers=brokers
        )
        store = Run(reader, cluster, client)
        await store.poll()
        await store.run()
        brokers.fail = BrokerError("connect", "all brokers down")
        clock.advance(600)
        await store.run()
        c = reading_of(store)
        assert c.brokers_up is False and dict(c.errors) == {"kafka_connect": 1}
        # No answer from the brokers is no evidence: silence is judged as of the last successful read only.
        assert c.read_at == 1_000_000.0
        assert c.connectors["pg-cdc"].heartbeat.silent is False


async def test_a_rule_marks_a_heartbeat_topic_with_its_interval(sim: SimThread) -> None:
    sim.cluster.add_connector("jdbc-orders", "source", topics=["orders", "orders-heartbeat"])
    brokers = Brokers({"orders": 1, "orders-heartbeat": 1})
    clock = ManualClock(1_000_000.0)
    rule = {"connector": "jdbc-.*", "topic": ".*-heartbeat", "interval": "1m"}
    cluster = cluster_config(sim.urls, source_topics={"heartbeats": [rule]})
    async with build_http_client(cluster) as client:
        reader = SourceTopicsReader(
            cluster, client, clock=clock.time, monotonic=clock.time, sleep=clock.sleep, brokers=brokers
        )
        store = Run(reader, cluster, client)
        await store.poll()
        await store.run()
        clock.advance(299)
        await store.run()
        hb = reading_of(store).connectors["jdbc-orders"].heartbeat
        assert hb is not None and (hb.topic, hb.interval, hb.silent_after, hb.silent) == (
            "orders-heartbeat",
            60.0,
            300.0,
            False,
        )
        clock.advance(1)
        await store.run()
        assert reading_of(store).connectors["jdbc-orders"].heartbeat.silent is True
