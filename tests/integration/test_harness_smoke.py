"""Smoke tests of the real-Kafka harness, and of the REST shapes the exporter and simulator rely on.

Where the real worker and docs/reference (connect-rest.md) disagree, these tests pin the real behaviour.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from .kafka.harness import ConnectCluster, KafkaEnvironment, port_in_use
from .kafka.rest import FILE_SOURCE, ConnectRest, file_sink, file_source, wait_until

pytestmark = pytest.mark.integration


def _state_keys(version: tuple[int, int, int]) -> set[str]:
    # KIP-891: since 4.1 connector and task states carry the running plugin "version".
    return {"state", "worker_id", "version"} if version >= (4, 1, 0) else {"state", "worker_id"}


def _file_pipeline(rest: ConnectRest, tmp_path: Path, prefix: str) -> tuple[Path, Path]:
    source_file, sink_file = tmp_path / "in.txt", tmp_path / "out.txt"
    file_source(rest, f"{prefix}-source", source_file, f"{prefix}-lines", "alpha\nbeta\n")
    file_sink(rest, f"{prefix}-sink", sink_file, f"{prefix}-lines")
    return source_file, sink_file


def test_workers_report_the_pinned_version(kafka_env: KafkaEnvironment, connect: ConnectCluster) -> None:
    infos = []
    for i in range(2):
        with connect.rest(i) as rest:
            infos.append(rest.server_info())
    for info in infos:
        assert set(info) == {"version", "commit", "kafka_cluster_id"}
        assert info["version"] == kafka_env.version
        assert re.fullmatch(r"[0-9a-f]{16}", info["commit"])
    assert infos[0]["kafka_cluster_id"] == infos[1]["kafka_cluster_id"]
    assert len(set(connect.worker_ids)) == 2
    assert all(wid.startswith("127.0.0.1:") for wid in connect.worker_ids)


def test_file_source_and_sink_run_and_move_data(
    connect: ConnectCluster, connect_rest: ConnectRest, tmp_path: Path, kafka_version: tuple[int, int, int]
) -> None:
    source_file, sink_file = _file_pipeline(connect_rest, tmp_path, "smoke")
    for name in ("smoke-source", "smoke-sink"):
        st = connect_rest.wait_for_state(name, "RUNNING", task_state="RUNNING", tasks=1)
        assert st["connector"]["worker_id"] in connect.worker_ids
        assert st["tasks"][0]["worker_id"] in connect.worker_ids

    # Real records flow: file -> source task -> Kafka -> sink task -> file.
    wait_until(
        lambda: sink_file.exists() and sink_file.read_text(encoding="utf-8") == "alpha\nbeta\n",
        timeout=60,
        what="sink file to receive the source lines",
    )
    with source_file.open("a", encoding="utf-8") as fh:
        fh.write("gamma\n")
    wait_until(lambda: sink_file.read_text(encoding="utf-8").endswith("gamma\n"), timeout=60, what="appended line")

    expanded = connect_rest.connectors_expanded("status", "info")
    assert set(expanded) == {"smoke-source", "smoke-sink"}
    for name, entry in expanded.items():
        kind = "source" if name.endswith("source") else "sink"
        assert set(entry) == {"status", "info"}
        status, info = entry["status"], entry["info"]
        assert set(status) == {"name", "connector", "tasks", "type"}
        assert status["name"] == name and status["type"] == kind
        assert set(status["connector"]) == _state_keys(kafka_version)
        assert status["connector"]["state"] == "RUNNING"
        assert [set(t) for t in status["tasks"]] == [{"id"} | _state_keys(kafka_version)]
        assert status["tasks"][0]["id"] == 0
        if kafka_version >= (4, 1, 0):
            assert status["connector"]["version"] == status["tasks"][0]["version"] == ".".join(map(str, kafka_version))
        assert set(info) == {"name", "config", "tasks", "type"}
        assert info["type"] == kind and info["config"]["name"] == name
        assert info["tasks"] == [{"connector": name, "task": 0}]

    # A comma-joined expand is one unknown value: every connector maps to an empty object.
    resp = connect_rest.request("GET", "/connectors", params={"expand": "status,info"})
    assert resp.status_code == 200
    assert resp.json() == {"smoke-source": {}, "smoke-sink": {}}


def test_lifecycle_through_rest(connect_rest: ConnectRest, tmp_path: Path) -> None:
    _file_pipeline(connect_rest, tmp_path, "life")
    name = "life-source"
    connect_rest.wait_for_state(name, "RUNNING", task_state="RUNNING", tasks=1)

    connect_rest.pause(name)
    connect_rest.wait_for_state(name, "PAUSED", task_state="PAUSED", tasks=1)
    connect_rest.resume(name)
    connect_rest.wait_for_state(name, "RUNNING", task_state="RUNNING", tasks=1)

    connect_rest.stop(name)
    stopped = connect_rest.wait_for_state(name, "STOPPED", tasks=0)
    assert stopped["tasks"] == []
    connect_rest.resume(name)
    connect_rest.wait_for_state(name, "RUNNING", task_state="RUNNING", tasks=1)

    plan = connect_rest.restart(name, include_tasks=True)
    assert plan is not None
    assert plan["connector"]["state"] == "RESTARTING"
    assert [t["state"] for t in plan["tasks"]] == ["RESTARTING"]
    connect_rest.wait_for_state(name, "RUNNING", task_state="RUNNING", tasks=1)
    assert connect_rest.restart(name) is None  # plain restart: 204, no body
    connect_rest.restart_task(name, 0)
    connect_rest.wait_for_state(name, "RUNNING", task_state="RUNNING", tasks=1)

    connect_rest.delete(name)
    wait_until(lambda: name not in connect_rest.connectors(), timeout=30, what=f"{name} deleted")
    # The status store catches up with the delete a little later than the config store.
    gone = wait_until(
        lambda: connect_rest.request("GET", f"/connectors/{name}/status").status_code == 404 or None,
        timeout=30,
        what=f"{name} status to disappear",
    )
    assert gone is True


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/connectors/nope", "Connector nope not found"),
        ("GET", "/connectors/nope/status", "No status found for connector nope"),
        ("PUT", "/connectors/nope/pause", "Unknown connector nope"),
        ("POST", "/connectors/nope/restart", "Unknown connector: nope"),
        ("GET", "/no-such-route", "HTTP 404 Not Found"),
    ],
)
def test_not_found_bodies(connect_rest: ConnectRest, method: str, path: str, message: str) -> None:
    resp = connect_rest.request(method, path)
    assert resp.status_code == 404
    assert resp.json() == {"error_code": 404, "message": message}
    # Jersey's own 404 for an unknown route carries no Content-Type; the resource 404s are JSON.
    expected_type = None if path == "/no-such-route" else "application/json"
    assert resp.headers.get("content-type") == expected_type


def test_basic_auth_cluster(auth_connect: ConnectCluster, kafka_env: KafkaEnvironment) -> None:
    assert auth_connect.group_id != kafka_env.connect.group_id
    with auth_connect.rest(0) as rest:
        assert rest.server_info()["version"] == kafka_env.version
        assert any(p["class"] == FILE_SOURCE for p in rest.plugins())
    url = auth_connect.url
    for auth in (None, ("kce-test", "wrong-password"), ("nobody", "x")):
        resp = httpx.get(f"{url}/connectors", auth=auth, timeout=10)
        assert resp.status_code == 401
        # Real worker: a bare string labelled as JSON (not valid JSON), and no WWW-Authenticate challenge.
        assert resp.text == "User cannot access the resource."
        assert resp.headers.get("content-type") == "application/json"
        assert "www-authenticate" not in resp.headers


def test_kill_worker_and_bring_it_back(connect: ConnectCluster) -> None:
    victim = connect.processes[1]
    assert victim is not None and victim.proc is not None
    port, worker_id = connect.ports[1], connect.worker_ids[1]
    connect.kill_worker(1)
    assert victim.proc.returncode == -signal.SIGKILL
    assert not port_in_use(port)
    with connect.rest(0) as rest:
        assert isinstance(rest.connectors(), list)  # the survivor keeps serving
    connect.start_worker(1)
    assert connect.worker_ids[1] == worker_id
    with connect.rest(1) as rest:
        info: dict[str, Any] = rest.server_info()
    assert info["version"] == connect.version
