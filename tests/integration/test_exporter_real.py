"""The exporter, run as its real CLI process, against real Kafka Connect workers of every pinned version."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support import Scrape, parse_exposition

from .kafka.harness import ConnectCluster, KafkaEnvironment, free_port
from .kafka.rest import FILE_SINK, FILE_SOURCE, ConnectRest, wait_until

pytestmark = pytest.mark.integration


def _exporter_argv() -> list[str]:
    script = Path(sys.executable).with_name("kafka-connect-exporter")
    return [str(script)] if script.exists() else [sys.executable, "-m", "exporter"]


@contextmanager
def exporter(urls: list[str], log: Path) -> Iterator[str]:
    """Run the exporter CLI polling ``urls`` every second; yields its base URL; stops it by PID."""
    port = free_port()
    argv = [*_exporter_argv(), "--connect.poll-interval", "1s", "--web.listen-address", f"127.0.0.1:{port}"]
    for url in urls:
        argv += ["--connect.url", url]
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0, f"exporter exited with {proc.returncode}:\n{log.read_text()[-3000:]}"


def wait_scrape(base: str, predicate: Callable[[Scrape], bool], what: str, timeout: float = 60.0) -> Scrape:
    def probe() -> Scrape | None:
        resp = httpx.get(f"{base}/metrics", timeout=5)
        if resp.status_code != 200:
            return None
        scrape = parse_exposition(resp.text)
        return scrape if predicate(scrape) else None

    return wait_until(probe, timeout=timeout, interval=0.5, what=what)


def _pipeline(rest: ConnectRest, tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_text("one\n", encoding="utf-8")
    rest.create_connector("exp-source", {"connector.class": FILE_SOURCE, "file": str(src), "topic": "exp-lines"})
    rest.create_connector(
        "exp-sink",
        {"connector.class": FILE_SINK, "file": str(tmp_path / "out.txt"), "topics": "exp-lines", "tasks.max": "1"},
    )


def test_exporter_reports_the_real_cluster(
    kafka_env: KafkaEnvironment, connect: ConnectCluster, connect_rest: ConnectRest, tmp_path: Path
) -> None:
    _pipeline(connect_rest, tmp_path)
    for name in ("exp-source", "exp-sink"):
        connect_rest.wait_for_state(name, "RUNNING", task_state="RUNNING", tasks=1)

    with exporter(connect.urls, tmp_path / "exporter.log") as base:
        s = wait_scrape(
            base,
            lambda s: all(
                s.current_state("kafka_connect_task_state", connector=n, task="0") == "RUNNING"
                for n in ("exp-source", "exp-sink")
            ),
            "both connectors' tasks RUNNING in /metrics",
        )
    assert s.value("kafka_connect_up", connect_cluster="default") == 1.0
    for url in connect.urls:
        assert s.value("kafka_connect_worker_up", worker=url) == 1.0
        [(labels, _)] = s.samples("kafka_connect_worker_info", worker=url)
        assert labels["version"] == kafka_env.version
        assert labels["commit"] == kafka_env.server_info["commit"]
        assert labels["kafka_cluster_id"] == kafka_env.server_info["kafka_cluster_id"]
    for name, kind, cls in (("exp-source", "source", FILE_SOURCE), ("exp-sink", "sink", FILE_SINK)):
        assert s.current_state("kafka_connect_connector_state", connector=name) == "RUNNING"
        [(info, _)] = s.samples("kafka_connect_connector_info", connector=name)
        assert (info["connector_type"], info["connector_class"]) == (kind, cls)
        assert info["worker_id"] in connect.worker_ids
        assert s.value("kafka_connect_connector_tasks", connector=name) == 1.0
        assert s.value("kafka_connect_connector_tasks_by_state", connector=name, state="RUNNING") == 1.0
        assert s.label_values("kafka_connect_task_state", "worker_id", connector=name) <= set(connect.worker_ids)
    plugins = {lbl["plugin_class"]: lbl for lbl, _ in s.samples("kafka_connect_plugin_info")}
    assert plugins[FILE_SOURCE]["version"] == kafka_env.version
    assert plugins[FILE_SINK]["plugin_type"] == "sink"


def test_exporter_follows_lifecycle_and_forgets_deleted_connectors(
    connect: ConnectCluster, connect_rest: ConnectRest, tmp_path: Path
) -> None:
    _pipeline(connect_rest, tmp_path)
    name = "exp-source"
    connect_rest.wait_for_state(name, "RUNNING", task_state="RUNNING", tasks=1)
    with exporter(connect.urls, tmp_path / "exporter.log") as base:
        wait_scrape(
            base, lambda s: s.current_state("kafka_connect_connector_state", connector=name) == "RUNNING", "RUNNING"
        )
        connect_rest.pause(name)
        wait_scrape(
            base,
            lambda s: (
                s.current_state("kafka_connect_connector_state", connector=name) == "PAUSED"
                and s.current_state("kafka_connect_task_state", connector=name, task="0") == "PAUSED"
            ),
            "PAUSED connector and task",
        )
        connect_rest.stop(name)
        s = wait_scrape(
            base,
            lambda s: (
                s.current_state("kafka_connect_connector_state", connector=name) == "STOPPED"
                and s.value("kafka_connect_connector_tasks", connector=name) == 0.0
            ),
            "STOPPED connector without tasks",
        )
        assert s.samples("kafka_connect_task_state", connector=name) == []
        connect_rest.delete(name)
        s = wait_scrape(
            base,
            lambda s: not any(name == lbl.get("connector") for series in s.families.values() for lbl, _ in series),
            "every series of the deleted connector gone",
        )
        assert s.current_state("kafka_connect_connector_state", connector="exp-sink") == "RUNNING"


def test_exporter_sees_a_killed_worker(connect: ConnectCluster, tmp_path: Path) -> None:
    with exporter(connect.urls, tmp_path / "exporter.log") as base:
        wait_scrape(
            base,
            lambda s: all(s.value("kafka_connect_worker_up", worker=u) == 1.0 for u in connect.urls),
            "both workers up",
        )
        dead = connect.urls[1]
        connect.kill_worker(1)
        s = wait_scrape(base, lambda s: s.value("kafka_connect_worker_up", worker=dead) == 0.0, "killed worker down")
        assert s.value("kafka_connect_worker_up", worker=connect.urls[0]) == 1.0
        assert s.value("kafka_connect_up", connect_cluster="default") == 1.0  # the survivor still answers
        connect.start_worker(1)
        wait_scrape(base, lambda s: s.value("kafka_connect_worker_up", worker=dead) == 1.0, "restarted worker up")
