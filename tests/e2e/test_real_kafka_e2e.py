"""The same proof against real Apache Kafka Connect workers (one version, the newest whose jars are cached).

Real broker, real 2-worker Connect cluster (tests/integration/kafka harness), the exporter as a process, a real
Prometheus. Scenarios, one after the other:

- ``running``: a FileStreamSource with tasks.max=2 (it creates one task: fewer than tasks.max), a paused one,
  and a FileStreamSink whose output directory does not exist (its task fails with a real trace);
- ``worker-down``: worker 1 is killed (SIGKILL);
- ``cluster-down``: worker 0 is killed too.

Every Connect panel query (not the auto-heal or Confluent Cloud ones, which have no real counterpart here)
must return data for this cluster, and the task-failed, tasks-below-max, worker-down, work-on-lost-worker and
unreachable alerts must go pending or firing with the labels of what is broken.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tests.e2e import report
from tests.e2e.coverage import OFFSETS_PANEL_FAMILIES
from tests.e2e.evaluate import Evaluation, Expect, Phase, evaluate, missing_alerts, wait_for_alerts
from tests.e2e.grafana import Dashboard, Target
from tests.e2e.prometheus import PrometheusServer, wait_for
from tests.e2e.world import exporter_process, real_kafka
from tests.integration.kafka.rest import FILE_SINK, FILE_SOURCE, wait_until
from tests.support.artifacts import DASHBOARDS, RULE_FILES, metric_names

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CLUSTER = "real"
PHASE_TIMEOUT = 120.0  # a killed worker's tasks are reported stale until the group notices


def connect_target(t: Target) -> bool:
    """Panels about self-managed Connect (not auto-heal or Confluent Cloud, absent from this cluster; not the
    throughput and lag row, which needs moving sinks and brokers: tests/e2e/test_real_offsets_e2e.py)."""
    if t.dashboard == "Kafka Connect / Confluent Cloud connectors":
        return False
    if 'health="unknown"' in t.expr:  # no real connector can be held in a passing state; the simulated run has one
        return False
    names = metric_names(t.expr)
    if names & OFFSETS_PANEL_FAMILIES:
        return False
    return not any(n.startswith(("kafka_connect_autoheal_", "kafka_connect_cloud_")) for n in names)


@dataclass
class RealRun:
    prom: PrometheusServer
    phases: list[Phase]
    expected: list[Expect]
    version: str


@pytest.fixture(scope="module")
def real(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealRun]:
    workdir = tmp_path_factory.mktemp("e2e-real")
    began = time.monotonic()
    with real_kafka(request, workdir, "real-kafka") as env:
        version = env.version
        source = workdir / "lines.txt"
        source.write_text("alpha\nbeta\n", encoding="utf-8")
        with env.connect.rest(0) as rest:
            rest.create_connector(
                "lines-src", {"connector.class": FILE_SOURCE, "file": str(source), "topic": "lines", "tasks.max": "2"}
            )
            rest.create_connector(
                "broken-sink",
                {
                    "connector.class": FILE_SINK,
                    "file": str(workdir / "missing-dir" / "out.txt"),
                    "topics": "lines",
                    "tasks.max": "1",
                },
            )
            rest.create_connector(
                "paused-src", {"connector.class": FILE_SOURCE, "file": str(source), "topic": "paused", "tasks.max": "1"}
            )
            rest.pause("paused-src")
            # A healthy sink and a STOPPED source, so every fleet-health panel but one has a real connector to
            # count (an "unknown" connector, in a passing state such as UNASSIGNED, cannot be held on purpose).
            rest.create_connector(
                "lines-sink",
                {"connector.class": FILE_SINK, "file": str(workdir / "out.txt"), "topics": "lines", "tasks.max": "1"},
            )
            rest.create_connector(
                "stopped-src",
                {"connector.class": FILE_SOURCE, "file": str(source), "topic": "stopped", "tasks.max": "1"},
            )
            rest.wait_for_state("stopped-src", "RUNNING")
            rest.stop("stopped-src")
            rest.wait_for_state("lines-src", "RUNNING", task_state="RUNNING", tasks=1)
            rest.wait_for_state("lines-sink", "RUNNING", task_state="RUNNING", tasks=1)
            rest.wait_for_state("paused-src", "PAUSED")
            rest.wait_for_state("stopped-src", "STOPPED")
            wait_until(
                lambda: [t["state"] for t in rest.status("broken-sink")["tasks"]] == ["FAILED"],
                timeout=60,
                what="the sink task to fail",
            )
        started = time.monotonic() - began
        config = {"clusters": [{"name": CLUSTER, "urls": env.connect.urls, "poll_interval": "1s"}]}
        with (
            exporter_process("real", workdir, config) as exporter,
            PrometheusServer(workdir / "prometheus", [exporter.address], RULE_FILES) as prom,
        ):
            wait_for(lambda: list(prom.targets_up().values()) == ["up"], 30, "Prometheus to scrape the exporter")
            c = {"connect_cluster": CLUSTER}
            run = RealRun(
                prom,
                [],
                [
                    Expect("KafkaConnectTaskFailed", "running", {**c, "connector": "broken-sink", "task": "0"}),
                    Expect("KafkaConnectConnectorTasksBelowMax", "running", {**c, "connector": "lines-src"}),
                    Expect("KafkaConnectWorkerDown", "worker-down", {**c, "worker": env.connect.urls[1]}),
                    # Pending within seconds, while Connect still reports the killed worker's work RUNNING.
                    Expect(
                        "KafkaConnectWorkOnLostWorker", "worker-down", {**c, "worker_id": env.connect.worker_ids[1]}
                    ),
                    Expect("KafkaConnectClusterUnreachable", "cluster-down", c),
                ],
                version,
            )

            def phase(name: str, begin: Callable[[], object] = lambda: None) -> None:
                run.phases.append(Phase(name, time.time()))
                begin()
                wait_for_alerts(prom, [e for e in run.expected if e.phase == name], run.phases[-1], PHASE_TIMEOUT)

            phase("running")
            phase("worker-down", lambda: env.connect.kill_worker(1))  # SIGKILL: a crash, no graceful leave
            phase("cluster-down", lambda: env.connect.kill_worker(0))
            report.add(
                f"real Kafka {version} ({env.server_info.get('version')}): broker and 2 workers up in {started:.0f}s; "
                + ", ".join(f"{p.name} {p.end - p.start:.0f}s" for p in run.phases)
            )
            yield run


def test_alerts_fire_for_real_workers(real: RealRun) -> None:
    problems = missing_alerts(real.prom, real.expected, real.phases)
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def real_dashboards(real: RealRun) -> Evaluation:
    dashboards = [Dashboard.load(p) for p in DASHBOARDS]
    evaluation = evaluate(real.prom, dashboards, real.phases, only={"connect_cluster": CLUSTER}, want=connect_target)
    results = evaluation.results
    report.add(
        f"real Kafka dashboards: {len(results)} Connect queries, {sum(r.ok for r in results)} return data "
        "for the real cluster"
    )
    return evaluation


def test_every_connect_panel_query_returns_data_for_real_workers(real_dashboards: Evaluation) -> None:
    results = real_dashboards.results
    assert len(results) >= 40, len(results)
    problems = real_dashboards.problems()
    assert not problems, f"{len(problems)} of {len(results)} queries return nothing for real Kafka Connect:\n" + (
        "\n".join(problems)
    )


def test_connector_dashboard_lists_each_real_connector(real_dashboards: Evaluation) -> None:
    tries = real_dashboards.tries.get("Kafka Connect / Connector")
    assert tries, "the connector dashboard was not evaluated"
    assert {b["connector"] for _, bindings in tries for b in bindings} >= {"lines-src", "broken-sink"}
