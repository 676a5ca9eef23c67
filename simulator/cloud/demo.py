"""The Confluent Cloud half of ``demo``: a simulated organisation with managed connectors in every
state the Connect API v1 reports, per-minute throughput with the documented ~3 minute delay (a tenth of each
minute arriving 5 minutes later still), sink lag, and a slow scenario that moves connectors between states.
Auto-heal is on: ``snowflake-sink`` fails with SYSTEM_ERROR now and then and is restarted; ``s3-archive``'s
USER_ACTIONABLE_ERROR is left alone; ``bigquery-sink`` is RUNNING with lag but receives nothing (stalled).
Real time, loopback only.
"""

from __future__ import annotations

import random
from typing import Any

from simulator.cloud.server import CloudSimulator
from simulator.cloud.state import CloudState

DEMO_ENV = "env-demo01"
DEMO_CLUSTER = "lkc-demo01"
DEMO_NAME = "ccloud-demo"
DEMO_KEY = "DEMOKEY000000001"
DEMO_SECRET = "demo-secret-not-a-real-one"  # noqa: S105 (the simulator's own fake credential)


def demo_state() -> CloudState:
    state = CloudState(api_key=DEMO_KEY, api_secret=DEMO_SECRET)
    state.late_share = 0.1  # a tenth of each minute arrives late: kafka_connect_cloud_late_total grows
    state.late_after = 300.0
    state.restart_delay = 20.0
    now = state.clock()
    created = now - 3600  # an hour of history, so counters move from the first poll
    specs: list[tuple[str, str, str, str, list[str], dict[str, float]]] = [
        (
            "orders-datagen",
            "source",
            "DatagenSource",
            "RUNNING",
            ["RUNNING"],
            {"sent_records": 600, "sent_bytes": 150_000},
        ),
        (
            "pg-cdc-customers",
            "source",
            "PostgresCdcSource",
            "RUNNING",
            ["RUNNING"],
            {"sent_records": 120, "sent_bytes": 60_000},
        ),
        (
            "s3-archive",
            "sink",
            "S3_SINK",
            "DEGRADED",
            ["RUNNING", "USER_ACTIONABLE_ERROR"],
            {"received_records": 400, "received_bytes": 90_000, "dead_letter_queue_records": 3},
        ),
        ("snowflake-sink", "sink", "SnowflakeSink", "FAILED", ["SYSTEM_ERROR"], {}),
        ("gcs-logs", "sink", "GcsSink", "PAUSED", ["STOPPED"], {}),
        ("bigquery-sink", "sink", "BigQueryStorageSink", "RUNNING", ["RUNNING"], {}),
        ("mongo-events", "source", "MongoDbAtlasSource", "PROVISIONING", [], {}),
    ]
    for name, ctype, cls, st, tasks, rates in specs:
        c = state.add_connector(
            DEMO_ENV,
            DEMO_CLUSTER,
            name,
            type=ctype,
            class_name=cls,
            state=st,
            tasks=tasks,
            rates=rates,
            created_at=created,
        )
        c.noise = True
    state.set_state(
        DEMO_ENV,
        DEMO_CLUSTER,
        "s3-archive",
        "DEGRADED",
        tasks=[("RUNNING", ""), ("USER_ACTIONABLE_ERROR", "Access Denied on bucket demo-archive")],
    )
    state.set_state(
        DEMO_ENV,
        DEMO_CLUSTER,
        "snowflake-sink",
        "FAILED",
        tasks=[("SYSTEM_ERROR", "Internal error, Confluent is working on it")],
        trace="Task failed: internal error",
    )
    # Lag per sink (consumer_lag_offsets of connect-<lcc id>): bigquery-sink's grows while it receives nothing.
    state.set_sink_lag(DEMO_ENV, DEMO_CLUSTER, "s3-archive", {"orders": 120, "payments": 15}, since=created)
    state.set_sink_lag(DEMO_ENV, DEMO_CLUSTER, "bigquery-sink", {"clicks": 2500}, since=created)
    return state


class CloudScenario:
    """Every step, maybe one change: a connector finishes provisioning, one degrades or recovers."""

    def __init__(self, state: CloudState, seed: int = 11) -> None:
        self.state = state
        self.rng = random.Random(seed)  # noqa: S311 (a demo, not cryptography)
        self.steps = 0

    def step(self) -> None:
        with self.state.lock:
            snowflake = self.state.connector(DEMO_ENV, DEMO_CLUSTER, "snowflake-sink")
            if snowflake.state == "RUNNING" and self.rng.random() < 0.02:  # fails again every few minutes
                self.state.set_state(
                    DEMO_ENV,
                    DEMO_CLUSTER,
                    "snowflake-sink",
                    "FAILED",
                    tasks=[("SYSTEM_ERROR", "Internal error, Confluent is working on it")],
                    trace="Task failed: internal error",
                )
            self.steps += 1  # bigquery-sink's lag keeps growing: records arrive, none are taken
            self.state.set_sink_lag(DEMO_ENV, DEMO_CLUSTER, "bigquery-sink", {"clicks": 2500 + 10 * self.steps})
        if self.rng.random() > 0.3:
            return
        with self.state.lock:
            mongo = self.state.connectors.get((DEMO_ENV, DEMO_CLUSTER, "mongo-events"))
            if mongo is not None and mongo.state == "PROVISIONING":
                self.state.set_state(DEMO_ENV, DEMO_CLUSTER, "mongo-events", "RUNNING", tasks=["RUNNING"])
                mongo.rates = {"sent_records": 50, "sent_bytes": 20_000}
                return
            s3 = self.state.connector(DEMO_ENV, DEMO_CLUSTER, "s3-archive")
            if s3.state == "DEGRADED":
                self.state.set_state(DEMO_ENV, DEMO_CLUSTER, "s3-archive", "RUNNING", tasks=["RUNNING", "RUNNING"])
            else:
                self.state.set_state(
                    DEMO_ENV,
                    DEMO_CLUSTER,
                    "s3-archive",
                    "DEGRADED",
                    tasks=[("RUNNING", ""), ("USER_ACTIONABLE_ERROR", "Access Denied on bucket demo-archive")],
                )


def demo_config(url: str, interval: float = 5.0) -> dict[str, Any]:
    """The ``confluent_cloud`` section pointing at the simulator (both APIs on one port)."""
    return {
        "api_key": DEMO_KEY,
        "api_secret": DEMO_SECRET,
        "api_url": url,
        "metrics_url": url,
        "environments": [{"id": DEMO_ENV, "clusters": [{"id": DEMO_CLUSTER, "name": DEMO_NAME}]}],
        "status_interval": interval,
        "metrics_interval": max(interval, 10.0),
        # snowflake-sink's SYSTEM_ERROR is restarted 30 s after it is seen; s3-archive's USER_ACTIONABLE_ERROR is not.
        "autoheal": {"mode": "enforce", "grace_period": "30s", "backoff": {"initial": "1m"}},
    }


async def start_demo_cloud() -> tuple[CloudSimulator, CloudScenario, str]:
    """Start the simulated Cloud API on loopback; returns it, its scenario and its URL."""
    state = demo_state()
    sim = CloudSimulator(state)
    url = await sim.start()
    return sim, CloudScenario(state), url
