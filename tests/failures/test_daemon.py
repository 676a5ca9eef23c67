"""Failure intelligence in the running daemon: the families on /metrics and the fleet view on /."""

from __future__ import annotations

import pytest

from simulator.connect.server import SimThread, connect_in_thread
from simulator.connect.state import PAUSED, SimCluster, java_trace
from tests.support.daemon_harness import quick_config, running_daemon
from tests.support.scrape import Scrape

CONNECT_EXC = "org.apache.kafka.connect.errors.ConnectException"


async def test_failures_transitions_and_health_on_metrics_and_the_status_page(sim: SimThread) -> None:
    cluster = sim.cluster
    cluster.add_connector("orders-sink", "sink", tasks_max=2)
    cluster.add_connector("audit-src", "source", state=PAUSED)
    cluster.add_connector("ok-src", "source")
    async with running_daemon(quick_config({"c": sim.urls})) as ex:
        await ex.wait_for(lambda s: s.value("kafka_connect_connector_health", connector="ok-src") == 1, what="health")
        cluster.fail_task(
            "orders-sink",
            1,
            trace=java_trace(CONNECT_EXC, "id 4711 failed", ("a.B.c(B.java:1)",), ("java.sql.SQLException", "x")),
        )
        s = await ex.wait_for(
            lambda s: s.value("kafka_connect_failure_info", connector="orders-sink", task="1") == 1, what="failure"
        )
        ((labels, _),) = s.samples("kafka_connect_failure_info")
        assert labels == {
            "connect_cluster": "c",
            "connector": "orders-sink",
            "task": "1",
            "exception": CONNECT_EXC,
            "root_cause": "java.sql.SQLException",
        }
        since = s.value("kafka_connect_failed_since_timestamp_seconds", connector="orders-sink", task="1")
        assert since is not None and since > 1e9
        assert s.value("kafka_connect_state_transitions_total", connector="orders-sink", to_state="FAILED") == 1
        assert s.label_values("kafka_connect_connector_health", "health", connector="orders-sink") == {"degraded"}
        assert s.label_values("kafka_connect_connector_health", "health", connector="audit-src") == {"paused"}
        assert s.label_values("kafka_connect_connector_health", "health", connector="ok-src") == {"healthy"}
        assert len(s.samples("kafka_connect_connector_health")) == 3  # current value only: one per connector

        await ex.next_polls("c", 3)
        s = await ex.scrape()
        assert s.value("kafka_connect_failed_since_timestamp_seconds", connector="orders-sink", task="1") == since

        page = (await ex.client.get(ex.base + "/")).text
        assert page.index("Fleet health") < page.index("<h2>Clusters</h2>")  # the fleet view leads
        assert "ConnectException ← SQLException" in page and "RUNNING → FAILED" in page

        cluster.restart_task("orders-sink", 1)
        s = await ex.wait_for(
            lambda s: s.samples("kafka_connect_failure_info") == [], what="recovery to clear the failure"
        )
        assert s.samples("kafka_connect_failed_since_timestamp_seconds") == []
        assert s.value("kafka_connect_state_transitions_total", connector="orders-sink", to_state="FAILED") == 1
        assert s.value("kafka_connect_state_transitions_total", connector="orders-sink", to_state="RUNNING") == 1
        assert s.label_values("kafka_connect_connector_health", "health", connector="orders-sink") == {"healthy"}


@pytest.mark.parametrize("version", ["2.8.2", "3.9.0"])
async def test_a_task_that_fails_again_after_every_restart_counts_a_failure_per_restart(version: str) -> None:
    """Every accepted restart is followed by exactly one more transition to FAILED, whether a poll catches the
    restarted task RESTARTING (3.9: the restart plan finishes on the simulator's tick) or only FAILED again (2.8:
    the task restart is synchronous and fails again before the next poll): KafkaConnectConnectorFlapping fires."""
    cluster = SimCluster(version=version, worker_count=2)
    with connect_in_thread(cluster) as sim:
        await _fails_after_every_restart(sim)


async def _fails_after_every_restart(sim: SimThread) -> None:
    sim.cluster.add_connector("orders-sink", "sink", tasks_max=1)
    autoheal = {
        "mode": "enforce",
        "grace_period": "0.5s",
        "backoff": {"initial": "0.5s", "max": "0.5s", "jitter": 0},
        "max_attempts": 50,
        "stable_period": "1h",
    }
    async with running_daemon(quick_config({"c": sim.urls}, autoheal=autoheal)) as ex:
        await ex.wait_for(lambda s: s.current_state("kafka_connect_task_state", connector="orders-sink") == "RUNNING")
        sim.cluster.fail_task("orders-sink", 0, persistent=True)  # every restart fails again

        def restarts(s: Scrape) -> float:
            return (
                s.value(
                    "kafka_connect_autoheal_restarts_total", connector="orders-sink", kind="task", outcome="accepted"
                )
                or 0.0
            )

        def failures(s: Scrape) -> float:
            return s.value("kafka_connect_state_transitions_total", connector="orders-sink", to_state="FAILED") or 0.0

        # The first failure (RUNNING -> FAILED) is one; each restart folded in by the next poll adds one. The
        # simulator finishes a restart on its tick: one tick per poll, bounded by poll rounds, not seconds.
        for _ in range(300):
            sim.cluster.tick()
            s = await ex.next_polls("c", 1)
            if restarts(s) >= 3 and failures(s) == restarts(s) + 1:
                break
        else:
            raise AssertionError(f"restarts {restarts(s)}, transitions to FAILED {failures(s)}")
    assert failures(s) >= 4
    assert (s.value("kafka_connect_state_transitions_total", connector="orders-sink", to_state="RUNNING") or 0) + (
        s.value("kafka_connect_state_transitions_total", connector="orders-sink", to_state="RESTARTING") or 0
    ) >= restarts(s)
