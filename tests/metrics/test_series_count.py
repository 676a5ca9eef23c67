"""The series budget with everything on, counted: 1,000 connectors x 8 tasks in ``metrics.state_series: current``
with worker probes, failure families and offsets (sinks from their groups, with lag) served by a real daemon.

Counts series (lines of the exposition), never time. The estate is the benchmarks' (``populate_static``: the
simulator's catalog, 1% of tasks FAILED, 2% of connectors PAUSED, 7 of 15 classes sinks with 1-2 topics); every
source's offsets have changed once (so each has its change timestamp) and 1% of the sinks lag.
"""

from __future__ import annotations

from collections import Counter

from exporter.config import build_config
from exporter.features import OffsetsPlug
from exporter.offsets.reading import OffsetsReading
from simulator.connect.scenario import populate_static
from simulator.connect.server import connect_in_thread
from simulator.connect.state import SimCluster
from tests.support.brokers import FakeBrokers
from tests.support.daemon_harness import running_daemon
from tests.support.scrape import Scrape

CONNECTORS, TASKS = 1000, 8
# One series per task, four per connector, one more per connector for offsets.
BUDGET = 13_000


def _series(s: Scrape) -> Counter[str]:
    return Counter({name: len(samples) for name, samples in s.families.items()})


async def test_1000_connectors_x_8_tasks_with_everything_on_fit_the_budget_in_current_mode() -> None:
    sim_cluster = SimCluster(version="3.9.1", worker_count=2)
    populate_static(sim_cluster, CONNECTORS, TASKS)
    with connect_in_thread(sim_cluster) as sim:
        config = build_config(
            {
                "web": {"listen_address": "127.0.0.1:0"},
                "metrics": {"state_series": "current"},
                "clusters": [
                    {
                        "name": "prod",
                        "urls": sim.urls,
                        "poll_interval": "5s",
                        "offsets_interval": "1s",
                        "offsets_max_rate": 1000,
                        "offsets_concurrency": 16,
                        "kafka": {"bootstrap_servers": "127.0.0.1:9"},
                    }
                ],
            }
        )
        brokers: FakeBrokers | None = None

        def setup(daemon: object) -> None:
            nonlocal brokers
            reader = daemon.plug(OffsetsPlug).offsets.readers["prod"]  # type: ignore[attr-defined]
            brokers = FakeBrokers({}, {})
            reader.brokers = brokers

        async with running_daemon(config, setup) as ex:
            snap = await _first_snapshot(ex)
            sinks = [c for c in snap.connectors if c.type == "sink"]
            sources = [c for c in snap.connectors if c.type == "source"]
            assert brokers is not None and sinks and sources
            topics = sorted({t for c in sinks if c.sink is not None for t in c.sink.topics})
            brokers.topic_counts.update(dict.fromkeys(topics, 1))
            brokers.ends.update({(t, 0): 1000 for t in topics})
            for i, c in enumerate(sinks):  # caught up, but one in a hundred 10 records behind
                assert c.sink is not None
                behind = 10 if i % 100 == 0 else 0
                brokers.groups[c.sink.group_id] = {(t, 0): 1000 - behind for t in c.sink.topics}

            def every_connector_read(changed: bool) -> bool:
                reading = ex.daemon.store.view.reading(OffsetsReading)
                found = reading.clusters.get("prod") if reading is not None else None
                if found is None or len(found.connectors) < len(sinks) + len(sources):
                    return False
                return not changed or all(o.last_change is not None for o in found.connectors.values())

            await _until(lambda: every_connector_read(False), "every connector's offsets read")
            # Every connector moves once, so each has its change timestamp, as in a live estate.
            for c in sources:
                sim_cluster.set_offsets(c.name, [{"partition": {"source": c.name}, "offset": {"position": 1}}])
            brokers.ends.update({(t, 0): 2000 for t in topics})
            for group, committed in brokers.groups.items():
                brokers.groups[group] = {p: o + 1000 for p, o in committed.items()}
            await _until(lambda: every_connector_read(True), "every connector's change seen")
            scrape = await ex.scrape()
            topics_of_sinks = [(c.name, t) for c in sinks if c.sink is not None for t in c.sink.topics]
            lagging = sum(len(c.sink.topics) for i, c in enumerate(sinks) if i % 100 == 0 and c.sink is not None)
    series = _series(scrape)
    total = sum(series.values())
    report = ", ".join(f"{n} {name}" for name, n in series.most_common(12))
    assert total <= BUDGET, f"{total} series: {report}"
    # What the budget is made of: the task states, then four per connector, then offsets.
    assert series["kafka_connect_task_state"] == CONNECTORS * TASKS
    for per_connector in (
        "kafka_connect_connector_state",
        "kafka_connect_connector_info",
        "kafka_connect_connector_health",
        "kafka_connect_connector_offsets_last_change_timestamp_seconds",
    ):
        assert series[per_connector] == CONNECTORS, per_connector
    assert series["kafka_connect_sink_committed_offsets_total"] == len(topics_of_sinks)
    # Said only where they say something: tasks.max where it differs from the task count (every connector here
    # has its 8 tasks), tasks on lost workers, lag and transitions where non-zero; partition counts not at all.
    assert series["kafka_connect_connector_tasks_max"] == 0
    assert series["kafka_connect_connector_tasks_on_lost_workers"] == 0
    assert series["kafka_connect_connector_offset_partitions"] == 0
    assert series["kafka_connect_sink_lag_records"] == lagging
    assert all(v > 0 for _, v in scrape.samples("kafka_connect_state_transitions_total"))
    print(f"\n{total} series at {CONNECTORS} x {TASKS}: {report}")


async def _first_snapshot(ex: object) -> object:
    daemon = ex.daemon  # type: ignore[attr-defined]
    await _until(lambda: "prod" in daemon.store.view.clusters and daemon.store.view.clusters["prod"].up, "a poll")
    return daemon.store.view.clusters["prod"]


async def _until(predicate: object, what: str, timeout: float = 120.0) -> None:
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.1)
