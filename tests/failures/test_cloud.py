"""Confluent Cloud managed connectors: their error states and messages map into the same failure families."""

from __future__ import annotations

from exporter.cloud.source import CloudSource
from exporter.failures.reading import FailuresReading
from exporter.failures.tracker import FailureTracker
from exporter.store import Store
from simulator.cloud.server import CloudSimulator
from simulator.cloud.state import CloudState
from tests.cloud.sim import CLUSTER, ENV, LKC, SECRET, T0, Published, make_config
from tests.support.clocks import ManualClock

CONFIG_ERRORS = "There were some errors with your configuration:\ntopics: Provided Kafka ApiKey is invalid\n"


async def test_cloud_status_snapshots_step_the_tracker() -> None:
    clock = ManualClock(T0)
    state = CloudState(clock=clock.time, api_secret=SECRET)
    state.add_cluster(ENV, LKC)
    state.add_connector(ENV, LKC, "s3-sink", type="sink", connector_id="lcc-s3", state="RUNNING", tasks=["RUNNING"])
    state.add_connector(ENV, LKC, "pg-src", connector_id="lcc-pg", state="FAILED", tasks=["SYSTEM_ERROR"])
    sim = CloudSimulator(state)
    await sim.start()
    store = Store()
    store.derive(FailureTracker().step)
    source = Published(CloudSource(make_config(sim.url), clock), store)
    try:
        await source.poll_status(CLUSTER)
        clock.advance(60)
        state.set_state(
            ENV,
            LKC,
            "s3-sink",
            "DEGRADED",
            tasks=[("USER_ACTIONABLE_ERROR", "org.apache.kafka.connect.errors.DataException: bad record 4711")],
            trace=CONFIG_ERRORS,
        )
        await source.poll_status(CLUSTER)
    finally:
        await source.aclose()
        await sim.stop()
    reading = store.view.reading(FailuresReading)
    assert reading is not None
    got = {(f.connector, f.task, f.state, f.exception, f.root_cause) for f in reading.clusters[CLUSTER].failures}
    assert got == {
        ("pg-src", None, "FAILED", "unknown", "SYSTEM_ERROR"),  # no class in the text: the tasks' error state
        ("pg-src", 0, "SYSTEM_ERROR", "unknown", "SYSTEM_ERROR"),
        (
            "s3-sink",
            0,
            "USER_ACTIONABLE_ERROR",
            "org.apache.kafka.connect.errors.DataException",
            "org.apache.kafka.connect.errors.DataException",
        ),
    }
    assert dict(reading.clusters[CLUSTER].transitions) == {
        ("s3-sink", "DEGRADED"): 1,
        ("s3-sink", "USER_ACTIONABLE_ERROR"): 1,
    }
    since = {(f.connector, f.task): f.since for f in reading.clusters[CLUSTER].failures}
    assert since[("pg-src", 0)] < since[("s3-sink", 0)]  # failed-since is the first poll that saw each
