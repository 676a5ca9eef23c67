"""Failure intelligence in the running daemon: the families on /metrics and the fleet view on /."""

from __future__ import annotations

from simulator.connect.server import SimThread
from simulator.connect.state import PAUSED, java_trace
from tests.support.daemon_harness import quick_config, running_daemon

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
