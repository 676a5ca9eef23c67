"""Offsets and lag against real Kafka Connect workers and a real broker, every pinned version.

A FileStreamSource reads a file the test appends lines to; a FileStreamSink writes its topic out. After N lines,
the sink's committed offsets counter grows by exactly N and its lag returns to 0. A sink writing into a named
pipe nobody reads is RUNNING but blocked: its lag grows while its committed offsets stay where they were.
The harness's workers flush offsets every second (``offset.flush.interval.ms=1000``), so commits follow within
seconds, not the default minute.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from exporter.offsets.brokers import BrokerOffsets
from exporter.offsets.config import KafkaConfig
from tests.support.scrape import Scrape

from .cli_exporter import Exporter, exporter, wait_scrape
from .kafka.harness import ConnectCluster, KafkaEnvironment
from .kafka.rest import ConnectRest, file_sink, file_source, wait_until

pytestmark = pytest.mark.integration

COMMITTED = "kafka_connect_sink_committed_offsets_total"
LAG = "kafka_connect_sink_lag_records"


@contextmanager
def offsets_exporter(tmp_path: Path, env: KafkaEnvironment) -> Iterator[Exporter]:
    config = tmp_path / "exporter.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "clusters": [
                    {
                        "name": "real",
                        "urls": env.connect.urls,
                        "poll_interval": "1s",
                        "offsets_interval": "1s",
                        "offsets_max_rate": 20,
                        "kafka": {"bootstrap_servers": env.broker.bootstrap, "request_timeout": "5s"},
                    }
                ]
            }
        ),
        encoding="utf-8",
    )
    with exporter(tmp_path / "exporter.log", config=config) as ex:
        yield ex


def append(path: Path, lines: list[str]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)


def value(s: Scrape, name: str, connector: str, topic: str) -> float | None:
    return s.value(name, connector=connector, topic=topic)


def pipeline(rest: ConnectRest, source_file: Path, sink_file: Path, topic: str, prefix: str) -> tuple[str, str]:
    source, sink = f"{prefix}-src", f"{prefix}-sink"
    file_source(rest, source, source_file, topic, text="")  # the tests append the records
    file_sink(rest, sink, sink_file, topic)
    rest.wait_for_state(source, "RUNNING", task_state="RUNNING", tasks=1)
    rest.wait_for_state(sink, "RUNNING", task_state="RUNNING", tasks=1)
    return source, sink


def test_committed_offsets_grow_by_exactly_n_and_lag_returns_to_zero(
    connect: ConnectCluster, connect_rest: ConnectRest, kafka_env: KafkaEnvironment, tmp_path: Path
) -> None:
    topic = f"moving-{uuid.uuid4().hex[:8]}"
    source_file, sink_file = tmp_path / "in.txt", tmp_path / "out.txt"
    _, sink = pipeline(connect_rest, source_file, sink_file, topic, "moving")
    with offsets_exporter(tmp_path, kafka_env) as ex:
        append(source_file, [f"warm-up {i}" for i in range(5)])
        before = wait_scrape(
            ex,
            lambda s: value(s, COMMITTED, sink, topic) == 5 and value(s, LAG, sink, topic) == 0,
            "the first 5 records committed, no lag",
        )
        assert before.value("kafka_connect_kafka_up", connect_cluster="real") == 1
        n = 137
        append(source_file, [f"record {i}" for i in range(n)])
        after = wait_scrape(
            ex,
            lambda s: (value(s, COMMITTED, sink, topic) or 0) >= 5 + n and value(s, LAG, sink, topic) == 0,
            f"{n} more records committed and the lag back to 0",
        )
        grown = (value(after, COMMITTED, sink, topic) or 0) - (value(before, COMMITTED, sink, topic) or 0)
        assert grown == n
        assert after.value("kafka_connect_connector_offset_partitions", connector=sink) == 1
        assert (after.value("kafka_connect_connector_offsets_last_change_timestamp_seconds", connector=sink) or 0) > 0
        assert len(sink_file.read_text(encoding="utf-8").splitlines()) == 5 + n
        assert "offsets unchanged for" in ex.page()


def test_a_running_sink_blocked_on_a_pipe_shows_lag_growing_and_offsets_unchanged(
    connect: ConnectCluster, connect_rest: ConnectRest, kafka_env: KafkaEnvironment, tmp_path: Path
) -> None:
    topic = f"blocked-{uuid.uuid4().hex[:8]}"
    source_file, pipe = tmp_path / "in.txt", tmp_path / "out.pipe"
    os.mkfifo(pipe)
    # Our read end lets the sink open the pipe for writing; we never read, so ~64 KiB later its writes block.
    reader = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)
    try:
        _, sink = pipeline(connect_rest, source_file, pipe, topic, "blocked")
        with offsets_exporter(tmp_path, kafka_env) as ex:
            append(source_file, [f"first {i}" for i in range(10)])
            wait_scrape(ex, lambda s: value(s, COMMITTED, sink, topic) == 10, "the first 10 records committed")
            filler = "x" * 200
            append(source_file, [f"{i} {filler}" for i in range(3000)])  # ~600 KiB: far beyond the pipe's buffer
            blocked = wait_scrape(
                ex,
                lambda s: (value(s, LAG, sink, topic) or 0) > 1000,
                "the sink to fall behind",
            )

            def settled() -> Scrape | None:
                # Commits stop once put() blocks: the same committed value over 3 flush intervals.
                first = ex.scrape()
                time.sleep(3.0)
                second = ex.scrape()
                c1, c2 = value(first, COMMITTED, sink, topic), value(second, COMMITTED, sink, topic)
                return second if c1 == c2 else None

            stuck = wait_until(settled, timeout=60, interval=0.1, what="the committed offsets to stop moving")
            committed = value(stuck, COMMITTED, sink, topic)
            lag = value(stuck, LAG, sink, topic) or 0
            assert committed is not None and committed < 10 + 3000 and lag >= 1
            append(source_file, [f"more {i}" for i in range(500)])
            grown = wait_scrape(
                ex, lambda s: (value(s, LAG, sink, topic) or 0) >= lag + 500, "the lag to grow by the new records"
            )
            assert value(grown, COMMITTED, sink, topic) == committed
            assert grown.current_state("kafka_connect_connector_state", connector=sink) == "RUNNING"
            assert grown.current_state("kafka_connect_task_state", connector=sink, task="0") == "RUNNING"
            assert blocked.value("kafka_connect_kafka_up", connect_cluster="real") == 1
    finally:
        os.close(reader)  # the blocked write fails (EPIPE) and the task can be deleted


STRING = "org.apache.kafka.connect.storage.StringConverter"
JSON = "org.apache.kafka.connect.json.JsonConverter"
RULES = Path(__file__).resolve().parents[2] / "alerts" / "kafka-connect.rules.yml"


def stalled_alert_fires_on(s: Scrape, connector: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """promtool's verdict on KafkaConnectSinkStalled for the connector's series exactly as scraped, held for 30
    minutes: the shipped rule, fed what the real exporter serves (no Prometheus waits 20 minutes in a test)."""
    names = (COMMITTED, LAG, "kafka_connect_connector_state")
    series = []
    for name in names:
        for labels, v in s.samples(name, connector=connector):
            if name == "kafka_connect_connector_state" and v != 1:
                continue
            text = ", ".join(f'{k}="{val}"' for k, val in sorted({**labels, "job": "kce", "instance": "x"}.items()))
            series.append({"series": f"{name}{{{text}}}", "values": f"{v:g}x30"})
    lag = sum(v for _, v in s.samples(LAG, connector=connector))
    test = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {
                        "eval_time": "25m",
                        "alertname": "KafkaConnectSinkStalled",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "job": "kce",
                                    "instance": "x",
                                    "connect_cluster": "real",
                                    "connector": connector,
                                    "severity": "warning",
                                },
                                "exp_annotations": {
                                    "summary": f"Sink {connector} in real is RUNNING but not committing",
                                    "description": (
                                        f"Sink connector {connector} in Connect cluster real is RUNNING, has {lag:g}"
                                        " records of lag and has not committed any offsets for at least 15 minutes."
                                        " It is most likely blocked on the system it writes to."
                                    ),
                                    "runbook_url": "https://github.com/kafka-connect-exporter/kafka-connect-exporter"
                                    "/blob/main/docs/runbooks.md#kafkaconnectsinkstalled",
                                },
                            }
                        ],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "stalled.test.yml"
    path.write_text(yaml.safe_dump(test), encoding="utf-8")
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: run `make tools` (Debian package prometheus)"
    assert lag > 0
    return subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, check=False)


def test_sinks_that_never_committed_lag_by_every_record_in_their_topic_and_are_reported_stalled(
    connect: ConnectCluster, connect_rest: ConnectRest, kafka_env: KafkaEnvironment, tmp_path: Path
) -> None:
    """Two sinks that never commit while their topic holds N records: one whose task fails in start() (a file in
    a missing directory: the connector RUNNING, never consuming), one whose task fails on the first record (plain
    strings read by a JsonConverter that wants an envelope). Their lag is N, not 0; the first is what
    KafkaConnectSinkStalled fires for; both are "never committed" on the status page."""
    topic = f"never-{uuid.uuid4().hex[:8]}"
    n = 240
    source_file = tmp_path / "in.txt"
    text = "".join(f"line {i}\n" for i in range(n))
    file_source(connect_rest, "never-src", source_file, topic, text=text, **{"value.converter": STRING})
    file_sink(connect_rest, "never-starts", tmp_path / "missing-dir" / "out.txt", topic)
    file_sink(
        connect_rest,
        "never-commits",
        tmp_path / "out.txt",
        topic,
        **{"value.converter": JSON, "value.converter.schemas.enable": "true"},
    )
    connect_rest.wait_for_state("never-starts", "RUNNING", task_state="FAILED", tasks=1)
    connect_rest.wait_for_state("never-commits", "RUNNING", task_state="FAILED", tasks=1)
    with offsets_exporter(tmp_path, kafka_env) as ex:
        s = wait_scrape(
            ex,
            lambda s: value(s, LAG, "never-starts", topic) == n and value(s, LAG, "never-commits", topic) == n,
            f"lag {n} (every record of the topic) for both sinks",
        )
        for sink in ("never-starts", "never-commits"):
            assert value(s, COMMITTED, sink, topic) == 0  # progress from nothing, there for rate() and the alert
            assert s.value("kafka_connect_connector_offset_partitions", connector=sink) == 0
            assert [h["health"] for h, _ in s.samples("kafka_connect_connector_health", connector=sink)] == ["failed"]
        assert s.current_state("kafka_connect_connector_state", connector="never-starts") == "RUNNING"
        page = ex.page()
        assert page.count("never committed") >= 2
        verdict = stalled_alert_fires_on(s, "never-starts", tmp_path)
        assert verdict.returncode == 0, verdict.stdout + verdict.stderr


def test_sinks_are_read_from_their_consumer_groups_and_agree_with_the_workers(
    connect: ConnectCluster, connect_rest: ConnectRest, kafka_env: KafkaEnvironment, tmp_path: Path
) -> None:
    """With ``clusters[].kafka`` a sink's committed offsets come from its consumer group (``connect-<name>``, or
    ``consumer.override.group.id``): the same numbers the workers' ``GET /connectors/{c}/offsets`` gives."""
    topic = f"groups-{uuid.uuid4().hex[:8]}"
    source_file = tmp_path / "in.txt"
    n = 57
    file_source(connect_rest, "groups-src", source_file, topic, text="".join(f"r{i}\n" for i in range(n)))
    file_sink(connect_rest, "groups-default", tmp_path / "a.txt", topic)
    file_sink(connect_rest, "groups-own", tmp_path / "b.txt", topic, **{"consumer.override.group.id": "team-b"})
    for name in ("groups-default", "groups-own"):
        connect_rest.wait_for_state(name, "RUNNING", task_state="RUNNING", tasks=1)
    with offsets_exporter(tmp_path, kafka_env) as ex:
        s = wait_scrape(
            ex,
            lambda s: all(value(s, COMMITTED, c, topic) == n for c in ("groups-default", "groups-own")),
            f"both sinks' {n} records committed, read from their groups",
        )
        for name in ("groups-default", "groups-own"):
            assert value(s, LAG, name, topic) == 0
            worker_says = connect_rest.request("GET", f"/connectors/{name}/offsets").json()["offsets"]
            assert sum(e["offset"]["kafka_offset"] for e in worker_says) == n
    groups = BrokerOffsets(KafkaConfig(bootstrap_servers=[kafka_env.broker.bootstrap], request_timeout=5.0))
    assert asyncio.run(groups.committed("team-b")) == {(topic, 0): n}
    assert asyncio.run(groups.committed("connect-groups-default")) == {(topic, 0): n}
    assert asyncio.run(groups.committed(f"nobody-{uuid.uuid4().hex}")) == {}  # an unknown group: nothing committed
