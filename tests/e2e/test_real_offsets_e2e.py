"""Is data moving? The offsets scenario against real Kafka Connect and a real broker, with a real Prometheus.

A FileStreamSource feeds a FileStreamSink that writes into a named pipe nobody reads: once the pipe's buffer is
full the sink is RUNNING but blocked, its committed offsets stay put and its lag grows. The exporter (with
``clusters[].kafka`` for lag) starts after the sink has stopped committing, so Prometheus never sees its offsets
change and ``KafkaConnectSinkStalled`` must go pending (``for:`` shortened as in every e2e run). A second sink
from the same topic writes to a file while the test keeps appending lines, so offsets move too: every query of
the "throughput and lag" row (committed records/s, lag, time since offsets last changed) must return data.
A third source, marked as writing a heartbeat topic every second, writes nothing after its first line: it is
RUNNING but silent, and ``KafkaConnectSourceSilent`` must go pending in the same phase.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from exporter.families import SINK_COMMITTED_OFFSETS
from tests.e2e import report
from tests.e2e.coverage import OFFSETS_PANEL_FAMILIES
from tests.e2e.evaluate import Evaluation, Expect, Phase, evaluate, missing_alerts, wait_for_alerts
from tests.e2e.grafana import Dashboard
from tests.e2e.prometheus import PrometheusServer, wait_for
from tests.e2e.world import exporter_process, real_kafka
from tests.integration.kafka.rest import FILE_SINK, FILE_SOURCE, wait_until
from tests.support.artifacts import DASHBOARDS, RULE_FILES, metric_names

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CLUSTER = "real-offsets"
PHASE_TIMEOUT = 120.0


@dataclass
class OffsetsRun:
    prom: PrometheusServer
    phases: list[Phase]
    expected: list[Expect]


def committed(base: str, sink: str) -> int | None:
    offsets = httpx.get(f"{base}/connectors/{sink}/offsets", timeout=5).json().get("offsets", [])
    return sum(o["offset"]["kafka_offset"] for o in offsets if o.get("offset")) if offsets else None


@pytest.fixture(scope="module")
def stalled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OffsetsRun]:
    workdir = tmp_path_factory.mktemp("e2e-offsets")
    with real_kafka(request, workdir, "real-offsets") as env:
        version = env.version
        source, pipe = workdir / "in.txt", workdir / "out.pipe"
        feeder: threading.Thread | None = None
        os.mkfifo(pipe)
        reader = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)  # lets the sink open it; never read
        try:
            source.write_text("".join(f"first {i}\n" for i in range(10)), encoding="utf-8")
            with env.connect.rest(0) as rest:
                rest.create_connector(
                    "feed-src", {"connector.class": FILE_SOURCE, "file": str(source), "topic": "feed"}
                )
                (workdir / "quiet.txt").write_text("beat\n", encoding="utf-8")
                rest.create_connector(
                    "quiet-src", {"connector.class": FILE_SOURCE, "file": str(workdir / "quiet.txt"), "topic": "beat"}
                )
                rest.create_connector(
                    "stuck-sink", {"connector.class": FILE_SINK, "file": str(pipe), "topics": "feed", "tasks.max": "1"}
                )
                rest.wait_for_state("stuck-sink", "RUNNING", task_state="RUNNING", tasks=1)
                base = env.connect.urls[0]
                wait_until(lambda: committed(base, "stuck-sink") == 10, timeout=60, what="the first records committed")
                with source.open("a", encoding="utf-8") as f:  # ~600 KiB: far beyond the pipe's buffer
                    f.writelines(f"{i} {'x' * 200}\n" for i in range(3000))

                def settled() -> bool:
                    before = committed(base, "stuck-sink")
                    time.sleep(3.0)  # three offset flush intervals of the harness's workers
                    return before is not None and before == committed(base, "stuck-sink") and before < 3010

                wait_until(settled, timeout=90, interval=0.1, what="the sink to block and stop committing")
                rest.create_connector(
                    "moving-sink",
                    {
                        "connector.class": FILE_SINK,
                        "file": str(workdir / "out.txt"),
                        "topics": "feed",
                        "tasks.max": "1",
                    },
                )
                rest.wait_for_state("moving-sink", "RUNNING", task_state="RUNNING", tasks=1)
                rest.wait_for_state("quiet-src", "RUNNING", task_state="RUNNING", tasks=1)
            config = {
                "clusters": [
                    {
                        "name": CLUSTER,
                        "urls": env.connect.urls,
                        "poll_interval": "1s",
                        "offsets_interval": "1s",
                        "offsets_max_rate": 20,
                        "kafka": {"bootstrap_servers": env.broker.bootstrap, "request_timeout": "5s"},
                        # quiet-src's topic is its heartbeat: expected every second, flat after its first line.
                        "source_topics": {
                            "interval": "1s",
                            "silent_min": "3s",
                            "heartbeats": [{"connector": "quiet-src", "topic": "beat", "interval": "1s"}],
                        },
                    }
                ]
            }
            feeding = threading.Event()

            def feed() -> None:  # records keep arriving: the moving sink commits them, the stuck one lags further
                i = 0
                while not feeding.wait(0.5):
                    with source.open("a", encoding="utf-8") as f:
                        f.write(f"more {i}\n")
                    i += 1

            feeder = threading.Thread(target=feed, daemon=True)
            feeder.start()
            with (
                exporter_process("offsets", workdir, config) as exporter,
                PrometheusServer(workdir / "prometheus", [exporter.address], RULE_FILES) as prom,
            ):
                wait_for(lambda: list(prom.targets_up().values()) == ["up"], 30, "Prometheus to scrape the exporter")
                run = OffsetsRun(
                    prom,
                    [],
                    [
                        Expect(
                            "KafkaConnectSinkStalled",
                            "stalled",
                            {"connect_cluster": CLUSTER, "connector": "stuck-sink"},
                        ),
                        Expect(
                            "KafkaConnectSourceSilent",
                            "stalled",
                            {"connect_cluster": CLUSTER, "connector": "quiet-src", "topic": "beat"},
                        ),
                    ],
                )
                run.phases.append(Phase("stalled", time.time()))
                wait_for_alerts(prom, run.expected, run.phases[-1], PHASE_TIMEOUT)
                took = run.phases[-1].end - run.phases[-1].start
                report.add(f"real Kafka {version} offsets: stalled sink pending in {took:.0f}s")
                # The alert may go pending at once; the phase lasts until Prometheus also has a committed rate (two
                # samples of a moving counter), so the dashboard's rate() queries have data inside it.
                moving = f'rate({SINK_COMMITTED_OFFSETS.sample_name}{{connect_cluster="{CLUSTER}"}}[30s]) > 0'
                wait_for(lambda: prom.query(moving) or None, 60, "a committed records/s in Prometheus")
                run.phases[-1].end = time.time()
                yield run
        finally:
            if feeder is not None:
                feeding.set()
                feeder.join(5)
            os.close(reader)


def test_sink_stalled_and_source_silent_go_pending_for_real_connectors(stalled: OffsetsRun) -> None:
    problems = missing_alerts(stalled.prom, stalled.expected, stalled.phases)
    assert not problems, "\n".join(problems)


def test_throughput_and_lag_panels_return_data_for_real_workers_and_brokers(stalled: OffsetsRun) -> None:
    evaluation: Evaluation = evaluate(
        stalled.prom,
        [Dashboard.load(p) for p in DASHBOARDS],
        stalled.phases,
        only={"connect_cluster": CLUSTER},
        # Managed connectors' panels (the Confluent Cloud dashboard also shows managed sinks' lag) have no cluster
        # here; tests/e2e/test_dashboards_alerts_e2e.py proves them against the simulated Cloud.
        want=lambda t: bool(metric_names(t.expr) & OFFSETS_PANEL_FAMILIES) and "Confluent Cloud" not in t.dashboard,
    )
    assert len(evaluation.results) >= 3, "the throughput and lag queries were not found"
    assert not evaluation.problems(), "\n".join(evaluation.problems())
