"""The simulated Connect cluster answers like connect-rest.md says a real distributed worker does.

Everything goes over real HTTP on loopback (httpx against the aiohttp listeners).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from structlog.testing import capture_logs

from exporter.model import CONNECT_CONNECTOR_STATES, CONNECT_TASK_STATES
from simulator.connect.scenario import CATALOG, Scenario, populate_static
from simulator.connect.server import SimConnectServer, SimThread, connect_in_thread
from simulator.connect.state import (
    FAILED,
    MSG_NO_LEADER,
    MSG_REBALANCE_EXPECTED,
    MSG_STALE_CONFIG,
    PAUSED,
    RESTARTING,
    RUNNING,
    STOPPED,
    UNASSIGNED,
    RebalanceMode,
    SimCluster,
)
from simulator.faults import Fault
from tests.support.daemon_harness import quick_config, running_daemon

ROOT = Path(__file__).resolve().parents[2]
JDBC_SINK = "io.confluent.connect.jdbc.JdbcSinkConnector"

MakeSim = Callable[..., SimThread]


@pytest.fixture
def make_sim() -> Iterator[MakeSim]:
    """Start a simulated cluster in a thread: ``make_sim(version=..., workers=..., credentials=...)``."""
    with ExitStack() as stack:

        def make(version: str = "3.9.0", workers: int = 2, populate: bool = True, **server_kw: Any) -> SimThread:
            cluster = SimCluster(version, workers)
            if populate:
                cluster.add_connector("jdbc-sink", "sink", class_name=JDBC_SINK, tasks_max=2)
                cluster.add_connector("file-source", "source", tasks_max=1)
            return stack.enter_context(connect_in_thread(cluster, **server_kw))

        yield make


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def err(status: int, message: str | None) -> dict[str, Any]:
    return {"error_code": status, "message": message}


def worker_ids(sim: SimThread) -> set[str]:
    return {u.removeprefix("http://") for u in sim.urls}


# -- root, health -----------------------------------------------------------------------------------------------


def test_root_reports_version_commit_and_cluster_id(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim()
    r = http.get(sim.urls[1] + "/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"version": "3.9.0", "commit": "a1b2c3d4e5f60718", "kafka_cluster_id": "MkU3OEVBNTcwNTJENDM2Qk"}


def test_root_before_1_1_has_no_cluster_id(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim("1.0.2")
    assert http.get(sim.urls[0]).json() == {"version": "1.0.2", "commit": "a1b2c3d4e5f60718"}


def test_health_exists_since_3_9(make_sim: MakeSim, http: httpx.Client) -> None:
    r = http.get(make_sim("3.9.0").urls[0] + "/health")
    assert (r.status_code, r.json()) == (
        200,
        {"status": "healthy", "message": "Worker has completed startup and is ready to handle requests."},
    )
    r = http.get(make_sim("3.8.1").urls[0] + "/health")
    assert (r.status_code, r.json()) == (404, err(404, "HTTP 404 Not Found"))


def test_health_is_per_worker_starting_503_unhealthy_500(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim("4.3.1", workers=3)
    sim.cluster.set_health(1, "starting")
    sim.cluster.set_health(2, "unhealthy")
    answers = [http.get(u + "/health") for u in sim.urls]
    assert [(r.status_code, r.json()["status"]) for r in answers] == [
        (200, "healthy"),
        (503, "starting"),
        (500, "unhealthy"),
    ]
    assert answers[2].json()["message"].startswith("Worker was unable to handle this request")
    assert all(http.get(u + "/").status_code == 200 for u in sim.urls)  # a stuck herder still answers GET /
    with pytest.raises(ValueError, match="health is one of"):
        sim.cluster.set_health(0, "sick")


@pytest.mark.parametrize("name", ["C:\\path\\sink", "50% sample"])
def test_names_with_backslash_or_percent_are_created_but_not_addressable(
    make_sim: MakeSim, http: httpx.Client, name: str
) -> None:
    """Jetty refuses %5C and %25 in a path with its own 400 page, before any resource or auth filter."""
    sim = make_sim(populate=False, credentials={"u": "p"})
    auth = ("u", "p")
    created = http.post(
        sim.urls[0] + "/connectors",
        json={"name": name, "config": {"connector.class": "FileStreamSink", "topics": "t"}},
        auth=auth,
    )
    assert created.status_code == 201
    assert name in http.get(sim.urls[0] + "/connectors", auth=auth).json()
    encoded = quote(name, safe="")
    assert "%5C" in encoded or "%25" in encoded
    for method, path in (("GET", ""), ("GET", "/status"), ("POST", "/restart"), ("PUT", "/pause")):
        for creds in (auth, None):
            r = http.request(method, f"{sim.urls[0]}/connectors/{encoded}{path}", auth=creds)
            assert r.status_code == 400, (method, path, r.text)
            assert r.headers["content-type"].startswith("text/html")
    # the same name without encoded characters would have been fine
    assert http.get(sim.urls[0] + "/connectors/nothing-here", auth=auth).status_code == 404


# -- routing ----------------------------------------------------------------------------------------------------


def test_unknown_route_wrong_method_and_media_type(make_sim: MakeSim, http: httpx.Client) -> None:
    url = make_sim().urls[0]
    # Real 3.9.2 and 4.3.1: Jersey's routing errors carry the JSON body but no Content-Type, and no Allow.
    r = http.get(url + "/no/such/thing")
    assert (r.status_code, json.loads(r.content)) == (404, err(404, "HTTP 404 Not Found"))
    assert "content-type" not in r.headers
    r = http.delete(url + "/connectors")
    assert (r.status_code, json.loads(r.content)) == (405, err(405, "HTTP 405 Method Not Allowed"))
    assert "content-type" not in r.headers and "allow" not in r.headers
    r = http.post(url + "/connectors", content=b"name=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (r.status_code, r.json()) == (415, err(415, "HTTP 415 Unsupported Media Type"))
    # A non-integer task id matches the resource, then fails Integer conversion: a JSON 404.
    for bad in ("one", "1.5", "99999999999"):
        r = http.get(url + f"/connectors/jdbc-sink/tasks/{bad}/status")
        assert (r.status_code, r.json()) == (404, err(404, "HTTP 404 Not Found")), bad
        assert r.headers["content-type"] == "application/json"
    assert http.post(url + "/connectors/jdbc-sink/tasks/x/restart").status_code == 404
    assert http.get(url + "/connectors/jdbc-sink/tasks/+1/status").json()["id"] == 1
    # Trailing slashes match, HEAD has no body.
    assert http.get(url + "/connectors/").json() == ["jdbc-sink", "file-source"]
    r = http.head(url + "/connectors")
    assert r.status_code == 200 and r.content == b""


# -- connectors collection and expand ---------------------------------------------------------------------------


def test_expand_status_and_info_shapes(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim()
    sim.cluster.fail_task("jdbc-sink", 1)
    body = http.get(sim.urls[0] + "/connectors", params=[("expand", "status"), ("expand", "info")]).json()
    assert set(body) == {"jdbc-sink", "file-source"}
    status, info = body["jdbc-sink"]["status"], body["jdbc-sink"]["info"]
    assert set(status) == {"name", "connector", "tasks", "type"}
    assert status["type"] == "sink" and status["connector"]["state"] == RUNNING
    assert "trace" not in status["connector"]
    assert [t["id"] for t in status["tasks"]] == [0, 1]
    assert status["tasks"][0].keys() == {"id", "state", "worker_id"}
    failed = status["tasks"][1]
    assert failed["state"] == FAILED
    assert failed["trace"].startswith(
        "org.apache.kafka.connect.errors.ConnectException: "
        "Exiting WorkerSinkTask due to unrecoverable exception.\n\tat "
    )
    assert {status["connector"]["worker_id"]} | {t["worker_id"] for t in status["tasks"]} <= worker_ids(sim)
    assert info == {
        "name": "jdbc-sink",
        "config": {"connector.class": JDBC_SINK, "tasks.max": "2", "name": "jdbc-sink", "topics": "jdbc-sink-in"},
        "tasks": [{"connector": "jdbc-sink", "task": 0}, {"connector": "jdbc-sink", "task": 1}],
        "type": "sink",
    }


def test_expand_quirks(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim()
    url = sim.urls[0] + "/connectors"
    # A comma list is one unknown expansion: every connector maps to {}.
    assert http.get(url + "?expand=status,info").json() == {"jdbc-sink": {}, "file-source": {}}
    # No status yet: left out of expand=status, kept by expand=info alone.
    sim.cluster.set_no_status("file-source")
    assert set(http.get(url + "?expand=status&expand=info").json()) == {"jdbc-sink"}
    assert set(http.get(url + "?expand=info").json()) == {"jdbc-sink", "file-source"}
    r = http.get(sim.urls[0] + "/connectors/file-source/status")
    assert (r.status_code, r.json()) == (404, err(404, "No status found for connector file-source"))
    # A connector that vanished mid-request has info null.
    sim.cluster.set_no_status("file-source", missing=False)
    sim.cluster.set_info_vanished("jdbc-sink")
    body = http.get(url + "?expand=status&expand=info").json()
    assert body["jdbc-sink"]["info"] is None and body["jdbc-sink"]["status"]["name"] == "jdbc-sink"


def test_expand_is_ignored_before_2_3(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim("2.2.1")
    r = http.get(sim.urls[0] + "/connectors?expand=status&expand=info")
    assert r.json() == ["jdbc-sink", "file-source"]


def test_type_appears_in_1_0(make_sim: MakeSim, http: httpx.Client) -> None:
    old = make_sim("0.11.0.3").urls[0]
    assert "type" not in http.get(old + "/connectors/jdbc-sink").json()
    assert "type" not in http.get(old + "/connectors/jdbc-sink/status").json()
    new = make_sim("1.0.0").urls[0]
    assert http.get(new + "/connectors/jdbc-sink/status").json()["type"] == "sink"


def test_unknown_future_state_passes_through(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim()
    sim.cluster.set_state("jdbc-sink", "DEGRADING")
    sim.cluster.set_state("jdbc-sink", "WARMING_UP", task=0)
    body = http.get(sim.urls[0] + "/connectors/jdbc-sink/status").json()
    assert body["connector"]["state"] == "DEGRADING"
    assert body["tasks"][0]["state"] == "WARMING_UP"


def test_status_carries_plugin_version_since_4_1(make_sim: MakeSim, http: httpx.Client) -> None:
    """Real 4.3.1 (KIP-891): connector and every task state have "version" after worker_id; null while a task
    is RESTARTING, the old version in the 202 restart plan. Real 3.9.2 has no such key."""
    sim = make_sim("4.3.1")
    url = sim.urls[0] + "/connectors"
    sim.cluster.fail_task("file-source", 0)
    status = http.get(url + "/file-source/status").json()
    assert list(status["connector"]) == ["state", "worker_id", "version"]
    assert status["connector"]["version"] == "4.3.1"  # FileStream plugins have the Kafka version
    assert list(status["tasks"][0]) == ["id", "state", "worker_id", "version", "trace"]
    jdbc = http.get(url, params=[("expand", "status")]).json()["jdbc-sink"]["status"]
    assert {jdbc["connector"]["version"]} | {t["version"] for t in jdbc["tasks"]} == {"10.7.6"}
    assert http.get(url + "/jdbc-sink/tasks/0/status").json()["version"] == "10.7.6"
    plan = http.post(url + "/file-source/restart?includeTasks=true&onlyFailed=true").json()
    assert plan["tasks"][0]["state"] == RESTARTING and plan["tasks"][0]["version"] == "4.3.1"
    task = http.get(url + "/file-source/status").json()["tasks"][0]
    assert task == {"id": 0, "state": RESTARTING, "worker_id": task["worker_id"], "version": None}
    old = make_sim("3.9.2").urls[0] + "/connectors"
    status = http.get(old + "/jdbc-sink/status").json()
    assert set(status["connector"]) == {"state", "worker_id"} and all("version" not in t for t in status["tasks"])


def test_status_lingers_briefly_after_delete(make_sim: MakeSim, http: httpx.Client) -> None:
    """Real 3.9.2/4.3.1: right after DELETE, /status still answers 200 with the last state and type "unknown",
    then 404 (about 0.1-1 s later; here: the next tick). The expanded list drops the connector at once."""
    sim = make_sim()
    url = sim.urls[0] + "/connectors"
    sim.cluster.pause("file-source")
    assert http.delete(url + "/file-source").status_code == 204
    status = http.get(url + "/file-source/status").json()
    assert (status["type"], status["connector"]["state"]) == ("unknown", PAUSED)
    assert [t["state"] for t in status["tasks"]] == [PAUSED]
    assert set(http.get(url, params=[("expand", "status")]).json()) == {"jdbc-sink"}
    assert http.get(url + "/file-source").status_code == 404
    sim.cluster.tick()
    r = http.get(url + "/file-source/status")
    assert (r.status_code, r.json()) == (404, err(404, "No status found for connector file-source"))
    # Re-creating the name right away shows the new connector, not the old record.
    sim.cluster.delete("jdbc-sink")
    sim.cluster.add_connector("jdbc-sink", "sink", class_name=JDBC_SINK, tasks_max=1)
    assert http.get(url + "/jdbc-sink/status").json()["type"] == "sink"


def test_create_answers_201_with_no_tasks_on_4_x(make_sim: MakeSim, http: httpx.Client) -> None:
    url = make_sim("4.3.1").urls[0]
    cfg = {"connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector", "topic": "t"}
    r = http.post(url + "/connectors", json={"name": "src", "config": cfg})
    assert r.status_code == 201 and r.headers["location"] == url + "/connectors/src"
    assert r.json() == {"name": "src", "config": {**cfg, "name": "src"}, "tasks": [], "type": "source"}


# -- single-connector reads -------------------------------------------------------------------------------------


def test_single_connector_reads(make_sim: MakeSim, http: httpx.Client) -> None:
    url = make_sim().urls[0] + "/connectors"
    assert http.get(url + "/jdbc-sink/config").json()["connector.class"] == JDBC_SINK
    tasks = http.get(url + "/jdbc-sink/tasks").json()
    assert [t["id"] for t in tasks] == [{"connector": "jdbc-sink", "task": 0}, {"connector": "jdbc-sink", "task": 1}]
    assert tasks[0]["config"]["task.class"] == "io.confluent.connect.jdbc.JdbcSinkTask"
    assert set(http.get(url + "/jdbc-sink/tasks-config").json()) == {"jdbc-sink-0", "jdbc-sink-1"}
    r = http.get(url + "/jdbc-sink/tasks/1/status")
    assert r.status_code == 200 and r.json()["id"] == 1 and r.json()["state"] == RUNNING
    for path in ("/nope", "/nope/config", "/nope/tasks", "/nope/tasks-config", "/nope/offsets"):
        r = http.get(url + path)
        assert (r.status_code, r.json()) == (404, err(404, "Connector nope not found")), path
    r = http.get(url + "/nope/status")
    assert (r.status_code, r.json()) == (404, err(404, "No status found for connector nope"))
    r = http.get(url + "/jdbc-sink/tasks/7/status")
    assert (r.status_code, r.json()) == (404, err(404, "No status found for task jdbc-sink-7"))


def test_names_are_percent_decoded(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim()
    sim.cluster.add_connector("orders sink ü", "sink")
    r = http.get(sim.urls[0] + "/connectors/orders%20sink%20%C3%BC/status")
    assert r.status_code == 200 and r.json()["name"] == "orders sink ü"


def test_tasks_config_is_gone_in_4_x(make_sim: MakeSim, http: httpx.Client) -> None:
    # Real 4.3.1: removed (KIP-970), a Jersey routing 404 without Content-Type; real 3.9.2 still serves it.
    r = http.get(make_sim("4.3.1").urls[0] + "/connectors/jdbc-sink/tasks-config")
    assert (r.status_code, json.loads(r.content)) == (404, err(404, "HTTP 404 Not Found"))
    assert "content-type" not in r.headers
    r = http.get(make_sim("3.9.2").urls[0] + "/connectors/jdbc-sink/tasks-config")
    assert r.status_code == 200 and set(r.json()) == {"jdbc-sink-0", "jdbc-sink-1"}


def test_tasks_config_since_2_8_and_offsets_since_3_5(make_sim: MakeSim, http: httpx.Client) -> None:
    url = make_sim("2.7.2").urls[0] + "/connectors/jdbc-sink"
    assert http.get(url + "/tasks-config").json() == err(404, "HTTP 404 Not Found")
    assert http.get(url + "/offsets").json() == err(404, "HTTP 404 Not Found")
    url = make_sim("3.5.0").urls[0] + "/connectors/jdbc-sink"
    offsets = http.get(url + "/offsets").json()["offsets"]
    assert offsets[0]["partition"] == {"kafka_topic": "jdbc-sink-in", "kafka_partition": 0}


def test_topics(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim()
    url = sim.urls[0] + "/connectors"
    assert http.get(url + "/jdbc-sink/topics").json() == {"jdbc-sink": {"topics": ["jdbc-sink-in"]}}
    assert http.get(url + "/ghost/topics").json() == {"ghost": {"topics": []}}  # no existence check
    r = http.put(url + "/jdbc-sink/topics/reset")
    assert (r.status_code, r.content) == (202, b"")
    assert http.get(url + "/jdbc-sink/topics").json() == {"jdbc-sink": {"topics": []}}
    sim.cluster.topic_tracking = False
    r = http.get(url + "/jdbc-sink/topics")
    assert (r.status_code, r.json()) == (403, err(403, "Topic tracking is disabled."))
    assert http.get(make_sim("2.4.1").urls[0] + "/connectors/jdbc-sink/topics").status_code == 404


def test_connector_plugins(make_sim: MakeSim, http: httpx.Client) -> None:
    url = make_sim().urls[0] + "/connector-plugins"
    only = http.get(url).json()
    assert {p["type"] for p in only} == {"source", "sink"}
    assert {"class": JDBC_SINK, "type": "sink", "version": "10.7.6"} in only
    everything = http.get(url + "?connectorsOnly=false").json()
    assert {"transformation", "converter", "header_converter", "predicate"} <= {p["type"] for p in everything}
    # "undefined" versions are left out.
    assert {"class": "org.apache.kafka.connect.json.JsonConverter", "type": "converter"} in everything
    assert {
        p["type"] for p in http.get(make_sim("3.1.2").urls[0] + "/connector-plugins?connectorsOnly=false").json()
    } == {
        "source",
        "sink",
    }
    assert all(p.keys() == {"class"} for p in http.get(make_sim("0.10.2.2").urls[0] + "/connector-plugins").json())


# -- writes -----------------------------------------------------------------------------------------------------


def test_create_connector(make_sim: MakeSim, http: httpx.Client) -> None:
    url = make_sim().urls[0]
    body = {"name": " new-sink ", "config": {"connector.class": "JdbcSinkConnector", "tasks.max": 3, "topics": "t"}}
    r = http.post(url + "/connectors", json=body)
    assert r.status_code == 201
    assert r.headers["location"] == url + "/connectors/new-sink"  # absolute, like Jersey's
    assert r.json() == {
        "name": "new-sink",
        "config": {"connector.class": "JdbcSinkConnector", "tasks.max": "3", "topics": "t", "name": "new-sink"},
        "tasks": [],
        "type": "sink",
    }
    status = http.get(url + "/connectors/new-sink/status").json()
    assert [t["state"] for t in status["tasks"]] == [RUNNING] * 3
    r = http.post(url + "/connectors", json=body)
    assert (r.status_code, r.json()) == (409, err(409, "Connector new-sink already exists"))


def test_create_connector_errors(make_sim: MakeSim, http: httpx.Client) -> None:
    url = make_sim().urls[0] + "/connectors"
    r = http.post(url, json={"name": "a", "config": {"name": "b", "connector.class": "FileStreamSink"}})
    assert (r.status_code, r.json()) == (
        400,
        err(400, "Connector name configuration (b) doesn't match connector name in the URL (a)"),
    )
    r = http.post(url, json={"name": "a", "config": {"topics": "x"}})
    assert (r.status_code, r.json()) == (
        400,
        err(400, "Connector config {topics=x, name=a} contains no connector type"),
    )
    r = http.post(url, json={"name": "a", "config": {"connector.class": "FileStreamSink", "tasks.max": "0"}})
    assert r.status_code == 400
    assert r.json()["message"] == (
        "Connector configuration is invalid and contains the following 1 error(s):\n"
        "Invalid value 0 for configuration tasks.max: Value must be at least 1\n"
        "You can also find the above list of errors at the endpoint "
        "`/connector-plugins/{connectorType}/config/validate`"
    )
    r = http.post(url, json={"name": "a", "config": {"connector.class": "com.example.Nope"}})
    assert r.status_code == 500  # 3.x; 4.x says 400
    assert r.json()["message"].startswith("Failed to find any class that implements Connector and which name matches")
    r = http.post(url, content=b"", headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()) == (500, err(500, None))  # a null entity: NullPointerException
    r = http.post(url, content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 500 and r.json()["message"].startswith("Unexpected character")


def test_unknown_class_is_400_on_4_0(make_sim: MakeSim, http: httpx.Client) -> None:
    url = make_sim("4.0.0").urls[0] + "/connectors"
    r = http.post(url, json={"name": "a", "config": {"connector.class": "com.example.Nope"}})
    assert r.status_code == 400


def test_initial_state_since_3_7(make_sim: MakeSim, http: httpx.Client) -> None:
    body = {"name": "p", "config": {"connector.class": "FileStreamSource", "tasks.max": "2"}, "initial_state": "paused"}
    url = make_sim("3.7.0").urls[0]
    assert http.post(url + "/connectors", json=body).status_code == 201
    status = http.get(url + "/connectors/p/status").json()
    assert status["connector"]["state"] == PAUSED and [t["state"] for t in status["tasks"]] == [PAUSED, PAUSED]
    body["name"] = "s"
    body["initial_state"] = "STOPPED"
    http.post(url + "/connectors", json=body)
    assert http.get(url + "/connectors/s/status").json()["tasks"] == []
    url = make_sim("3.6.2").urls[0]
    http.post(url + "/connectors", json=body)
    assert http.get(url + "/connectors/s/status").json()["connector"]["state"] == RUNNING


def test_put_and_patch_config(make_sim: MakeSim, http: httpx.Client) -> None:
    url = make_sim().urls[0] + "/connectors"
    cfg = {"connector.class": "FileStreamSource", "tasks.max": "1", "topic": "x"}
    r = http.put(url + "/created/config", json=cfg)
    assert r.status_code == 201 and r.headers["location"] == url + "/created" and r.json()["tasks"] == []
    r = http.put(url + "/created/config", json={**cfg, "tasks.max": "3"})
    assert r.status_code == 200
    assert r.json()["tasks"] == [{"connector": "created", "task": 0}]  # the tasks that existed before
    assert len(http.get(url + "/created").json()["tasks"]) == 3
    r = http.put(url + "/created/config", json={**cfg, "name": "other"})
    assert (r.status_code, r.json()) == (
        400,
        err(400, "Connector name configuration (other) doesn't match connector name in the URL (created)"),
    )
    r = http.patch(url + "/created/config", json={"topic": None, "tasks.max": "1"})
    assert r.status_code == 200 and "topic" not in r.json()["config"]
    r = http.patch(url + "/nope/config", json={"a": "b"})
    assert (r.status_code, r.json()) == (404, err(404, "Connector nope not found"))
    r = http.patch(make_sim("3.7.1").urls[0] + "/connectors/jdbc-sink/config", json={"a": "b"})
    assert r.status_code == 405


def test_delete(make_sim: MakeSim, http: httpx.Client) -> None:
    url = make_sim().urls[0] + "/connectors"
    r = http.delete(url + "/jdbc-sink")
    assert (r.status_code, r.content) == (204, b"")
    assert http.get(url).json() == ["file-source"]
    r = http.delete(url + "/jdbc-sink")
    assert (r.status_code, r.json()) == (404, err(404, "Connector jdbc-sink not found"))


def test_pause_resume(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim()
    url = sim.urls[0] + "/connectors"
    sim.cluster.fail_task("jdbc-sink", 0)
    r = http.put(url + "/jdbc-sink/pause")
    assert (r.status_code, r.content) == (202, b"")
    status = http.get(url + "/jdbc-sink/status").json()
    # A FAILED task stays FAILED until restarted.
    assert status["connector"]["state"] == PAUSED and [t["state"] for t in status["tasks"]] == [FAILED, PAUSED]
    assert http.put(url + "/jdbc-sink/pause").status_code == 202  # idempotent
    assert http.put(url + "/jdbc-sink/resume").status_code == 202
    status = http.get(url + "/jdbc-sink/status").json()
    assert status["connector"]["state"] == RUNNING and [t["state"] for t in status["tasks"]] == [FAILED, RUNNING]
    for action in ("pause", "resume", "stop"):
        r = http.put(url + f"/nope/{action}")
        assert (r.status_code, r.json()) == (404, err(404, "Unknown connector nope")), action


def test_stop_since_3_5(make_sim: MakeSim, http: httpx.Client) -> None:
    url = make_sim().urls[0] + "/connectors"
    r = http.put(url + "/jdbc-sink/stop")
    assert (r.status_code, r.content) == (204, b"")
    status = http.get(url + "/jdbc-sink/status").json()
    assert status["connector"]["state"] == STOPPED and status["tasks"] == []
    assert http.get(url + "/jdbc-sink").json()["tasks"] == []
    assert http.put(url + "/jdbc-sink/resume").status_code == 202
    status = http.get(url + "/jdbc-sink/status").json()
    assert status["connector"]["state"] == RUNNING and [t["state"] for t in status["tasks"]] == [RUNNING, RUNNING]
    r = http.put(make_sim("3.4.1").urls[0] + "/connectors/jdbc-sink/stop")
    assert (r.status_code, r.json()) == (404, err(404, "HTTP 404 Not Found"))


# -- restarts ---------------------------------------------------------------------------------------------------


def test_restart_plan_then_tick(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim()
    url = sim.urls[0] + "/connectors/jdbc-sink"
    sim.cluster.fail_task("jdbc-sink", 1)
    old_trace = http.get(url + "/status").json()["tasks"][1]["trace"]
    r = http.post(url + "/restart?includeTasks=true&onlyFailed=true")
    assert r.status_code == 202
    plan = r.json()
    assert plan["connector"]["state"] == RUNNING  # not failed, onlyFailed: left alone
    assert [t["state"] for t in plan["tasks"]] == [RUNNING, RESTARTING]
    assert plan["tasks"][1]["trace"] == old_trace  # the old trace is carried over into the plan
    status = http.get(url + "/status").json()
    assert status["tasks"][1] == {"id": 1, "state": RESTARTING, "worker_id": plan["tasks"][1]["worker_id"]}
    sim.cluster.tick()
    assert [t["state"] for t in http.get(url + "/status").json()["tasks"]] == [RUNNING, RUNNING]


def test_restart_plan_with_persistent_fault_fails_again(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim()
    url = sim.urls[0] + "/connectors/jdbc-sink"
    sim.cluster.fail_task("jdbc-sink", 0, persistent=True)
    assert http.post(url + "/restart?includeTasks=true&onlyFailed=true").status_code == 202
    assert http.get(url + "/status").json()["tasks"][0]["state"] == RESTARTING
    sim.cluster.tick()
    task = http.get(url + "/status").json()["tasks"][0]
    assert task["state"] == FAILED and "WorkerSinkTask" in task["trace"]


def test_restart_include_tasks_restarts_everything(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim()
    plan = http.post(sim.urls[0] + "/connectors/jdbc-sink/restart?includeTasks=true").json()
    assert plan["connector"]["state"] == RESTARTING and [t["state"] for t in plan["tasks"]] == [RESTARTING] * 2
    plan = http.post(sim.urls[0] + "/connectors/file-source/restart?onlyFailed=true").json()
    assert plan["connector"]["state"] == RUNNING and [t["state"] for t in plan["tasks"]] == [RUNNING]


def test_plain_restart_restarts_only_the_connector(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim()
    url = sim.urls[0] + "/connectors/jdbc-sink"
    sim.cluster.fail_connector("jdbc-sink")
    sim.cluster.fail_task("jdbc-sink", 1)
    r = http.post(url + "/restart?includeTasks=false&onlyFailed=false")
    assert (r.status_code, r.content) == (204, b"")
    status = http.get(url + "/status").json()
    assert status["connector"]["state"] == RUNNING and "trace" not in status["connector"]
    assert [t["state"] for t in status["tasks"]] == [RUNNING, FAILED]


def test_restart_params_are_ignored_before_3_0(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim("2.8.2")
    url = sim.urls[0] + "/connectors/jdbc-sink"
    sim.cluster.fail_task("jdbc-sink", 1)
    r = http.post(url + "/restart?includeTasks=true&onlyFailed=true")
    assert (r.status_code, r.content) == (204, b"")
    assert [t["state"] for t in http.get(url + "/status").json()["tasks"]] == [RUNNING, FAILED]
    # The per-task restart is what old workers need.
    assert http.post(url + "/tasks/1/restart").status_code == 204
    assert [t["state"] for t in http.get(url + "/status").json()["tasks"]] == [RUNNING, RUNNING]


def test_restart_404s(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim()
    url = sim.urls[0] + "/connectors"
    for q in ("", "?includeTasks=true&onlyFailed=true"):
        r = http.post(url + "/nope/restart" + q)
        assert (r.status_code, r.json()) == (404, err(404, "Unknown connector: nope")), q
    r = http.post(url + "/nope/tasks/0/restart")
    assert (r.status_code, r.json()) == (404, err(404, "Unknown connector: nope"))
    r = http.post(url + "/jdbc-sink/tasks/5/restart")
    assert (r.status_code, r.json()) == (404, err(404, "Unknown task: jdbc-sink-5"))
    sim.cluster.set_no_status("jdbc-sink")
    r = http.post(url + "/jdbc-sink/restart?includeTasks=true")
    assert (r.status_code, r.json()) == (404, err(404, "Status for connector jdbc-sink not found"))


def test_task_restart_with_persistent_fault(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim()
    url = sim.urls[0] + "/connectors/jdbc-sink"
    sim.cluster.fail_task("jdbc-sink", 0, persistent=True)
    assert http.post(url + "/tasks/0/restart").status_code == 204
    assert http.get(url + "/tasks/0/status").json()["state"] == FAILED
    sim.cluster.set_persistent_fault("jdbc-sink", 0, None)
    assert http.post(url + "/tasks/0/restart").status_code == 204
    assert http.get(url + "/tasks/0/status").json() == {
        "id": 0,
        "state": RUNNING,
        "worker_id": sim.cluster.owner("jdbc-sink", 0),
    }
    assert sim.cluster.owner("jdbc-sink", 0) in worker_ids(sim)


# -- rebalances -------------------------------------------------------------------------------------------------


def test_rebalance_409s_writes_500s_reads_and_spares_status(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim()
    url = sim.urls[0] + "/connectors"
    sim.cluster.set_rebalancing(True)
    writes = [
        http.post(url, json={"name": "x", "config": {"connector.class": "FileStreamSource"}}),
        http.put(url + "/x/config", json={"connector.class": "FileStreamSource"}),
        http.delete(url + "/jdbc-sink"),
        http.post(url + "/jdbc-sink/restart"),
        http.post(url + "/jdbc-sink/restart?includeTasks=true&onlyFailed=true"),
        http.post(url + "/jdbc-sink/tasks/0/restart"),
        http.put(url + "/jdbc-sink/stop"),
    ]
    for r in writes:
        assert (r.status_code, r.json()) == (409, err(409, MSG_STALE_CONFIG)), r.request.url
    for path in ("/jdbc-sink", "/jdbc-sink/config", "/jdbc-sink/tasks"):
        r = http.get(url + path)
        assert (r.status_code, r.json()) == (500, err(500, MSG_REBALANCE_EXPECTED)), path
    assert http.get(url + "?expand=status&expand=info").status_code == 200
    assert http.get(url + "/jdbc-sink/status").status_code == 200
    assert http.get(url + "/jdbc-sink/tasks/0/status").status_code == 200
    assert http.put(url + "/jdbc-sink/pause").status_code == 202  # not herder-backed
    sim.cluster.set_rebalancing(True, RebalanceMode.NO_LEADER)
    r = http.delete(url + "/jdbc-sink")
    assert (r.status_code, r.json()) == (409, err(409, MSG_NO_LEADER))
    assert http.get(url + "/jdbc-sink").status_code == 200
    sim.cluster.set_rebalancing(False)
    assert http.delete(url + "/jdbc-sink").status_code == 204


# -- workers ----------------------------------------------------------------------------------------------------


def _owners(http: httpx.Client, url: str) -> list[tuple[str, str]]:
    s = http.get(url + "/connectors/jdbc-sink/status").json()
    return [(s["connector"]["state"], s["connector"]["worker_id"])] + [(t["state"], t["worker_id"]) for t in s["tasks"]]


def test_stopped_worker_goes_unassigned_then_reassigned(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim()
    gone = sim.urls[1].removeprefix("http://")
    before = _owners(http, sim.urls[0])
    assert any(w == gone for _, w in before)
    sim.stop_worker(1)
    with pytest.raises(httpx.ConnectError):
        http.get(sim.urls[1])
    after = _owners(http, sim.urls[0])
    assert [s for s, w in after if w == gone] and all(s == UNASSIGNED for s, w in after if w == gone)
    sim.cluster.tick()
    assert all(s == RUNNING and w != gone for s, w in _owners(http, sim.urls[0]))
    sim.start_worker(1)
    assert http.get(sim.urls[1]).status_code == 200


def test_killed_worker_keeps_stale_status_until_tick(make_sim: MakeSim, http: httpx.Client) -> None:
    # Real 3.9.2/4.3.1: a SIGKILLed worker's connectors and tasks stay RUNNING under its worker_id until the
    # rebalance (~12 s with scheduled.rebalance.max.delay.ms=10000); then everything moves, STOPPED ones too.
    sim = make_sim()
    gone = sim.urls[1].removeprefix("http://")
    sim.cluster.add_connector("parked", "source", state=STOPPED)
    while sim.cluster.owner("parked") != gone:  # round-robin: recreate until it sits on the victim
        sim.cluster.delete("parked")
        sim.cluster.add_connector("parked", "source", state=STOPPED)
    before = _owners(http, sim.urls[0])
    assert [s for s, w in before if w == gone] and all(s == RUNNING for s, _ in before)
    sim.kill_worker(1)
    assert _owners(http, sim.urls[0]) == before  # nobody wrote anything yet
    sim.cluster.tick()
    assert all(s == RUNNING and w != gone for s, w in _owners(http, sim.urls[0]))
    parked = http.get(sim.urls[0] + "/connectors/parked/status").json()
    assert parked["connector"] == {"state": STOPPED, "worker_id": sim.urls[0].removeprefix("http://")}


# -- faults -----------------------------------------------------------------------------------------------------


def test_fault_refuse_and_recover_on_same_port(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim()
    url = sim.urls[0]
    sim.set_fault(0, Fault.refuse())
    with pytest.raises(httpx.ConnectError):
        http.get(url)
    assert http.get(sim.urls[1]).status_code == 200
    sim.set_fault(0, None)
    assert sim.urls[0] == url and http.get(url).status_code == 200


def test_fault_hang_and_delay(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim()
    sim.set_fault(0, Fault.hang())
    with pytest.raises(httpx.ReadTimeout):
        http.get(sim.urls[0], timeout=0.3)
    sim.set_fault(0, Fault.slow(0.3))
    start = time.monotonic()
    assert http.get(sim.urls[0]).status_code == 200
    assert time.monotonic() - start >= 0.3
    with pytest.raises(httpx.ReadTimeout):
        http.get(sim.urls[0], timeout=0.1)


@pytest.mark.parametrize(
    ("status", "message"),
    [(500, "Request timed out"), (502, "HTTP 502 Bad Gateway"), (503, "HTTP 503 Service Unavailable"),
     (409, MSG_STALE_CONFIG)],
)  # fmt: skip
def test_fault_status(make_sim: MakeSim, http: httpx.Client, status: int, message: str) -> None:
    sim = make_sim()
    sim.set_fault(1, Fault.http_status(status))
    r = http.get(sim.urls[1] + "/connectors")
    assert (r.status_code, r.json()) == (status, err(status, message))
    assert http.get(sim.urls[0] + "/connectors").status_code == 200


def test_fault_path_filter_and_times(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim()
    sim.set_fault(0, Fault.http_status(503, path="/connectors", times=2))
    assert http.get(sim.urls[0] + "/").status_code == 200
    assert [http.get(sim.urls[0] + "/connectors").status_code for _ in range(3)] == [503, 503, 200]


def test_fault_broken_bodies(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim()
    url = sim.urls[0] + "/connectors?expand=status"
    sim.set_fault(0, Fault.malformed_json())
    r = http.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        r.json()
    sim.set_fault(0, Fault.truncated_json())
    r = http.get(url)
    full = http.get(sim.urls[1] + "/connectors?expand=status").content
    assert r.status_code == 200 and 0 < len(r.content) < len(full)
    with pytest.raises(json.JSONDecodeError):
        r.json()
    sim.set_fault(0, Fault.disconnect())
    with pytest.raises(httpx.RemoteProtocolError):
        http.get(url)
    sim.set_fault(0, Fault.wrong_content_type())
    r = http.get(url)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")


def test_fault_huge_body(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim()
    sim.set_fault(0, Fault.huge_body())
    with http.stream("GET", sim.urls[0] + "/connectors") as r:
        assert int(r.headers["content-length"]) >= 50 * 1024 * 1024
        head = b""
        for chunk in r.iter_bytes():
            head += chunk
            if len(head) >= 1024:
                break  # a careful client stops reading here
        assert head.startswith(b'["xxx')
    sim.set_fault(0, Fault.huge_body(size=2 * 1024 * 1024, chunked=True))
    r = http.get(sim.urls[0] + "/connectors")
    assert "content-length" not in r.headers and len(r.content) >= 2 * 1024 * 1024
    assert len(r.json()) >= 2


def test_fault_foreign_cluster_only_changes_root(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim()
    sim.set_fault(1, Fault.foreign_cluster("OtherClusterId"))
    assert http.get(sim.urls[1] + "/").json()["kafka_cluster_id"] == "OtherClusterId"
    assert http.get(sim.urls[0] + "/").json()["kafka_cluster_id"] == "MkU3OEVBNTcwNTJENDM2Qk"
    assert http.get(sim.urls[1] + "/connectors").json() == ["jdbc-sink", "file-source"]


def _assert_real_401(r: httpx.Response) -> None:
    """What real 3.9.2 and 4.3.1 workers with BasicAuthSecurityRestExtension answer: bare text labelled JSON."""
    assert (r.status_code, r.text) == (401, "User cannot access the resource.")
    assert r.headers["content-type"] == "application/json"
    assert "www-authenticate" not in r.headers
    with pytest.raises(json.JSONDecodeError):
        r.json()


def test_fault_unauthorized(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim()
    sim.set_fault(0, Fault.unauthorized())
    _assert_real_401(http.get(sim.urls[0] + "/connectors"))


def test_latency_and_request_log(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim(latency=0.2)
    start = time.monotonic()
    http.get(sim.urls[1] + "/connectors", params=[("expand", "status"), ("expand", "info")])
    assert time.monotonic() - start >= 0.2
    [req] = sim.requests()
    assert (req.worker, req.method, req.path, req.query) == (
        1,
        "GET",
        "/connectors",
        (("expand", "status"), ("expand", "info")),
    )
    sim.clear_requests()
    sim.set_latency(0)
    assert sim.requests() == []


# -- basic auth -------------------------------------------------------------------------------------------------


def test_basic_auth(make_sim: MakeSim, http: httpx.Client) -> None:
    sim = make_sim(credentials={"admin": "s3cret"})
    url = sim.urls[0]
    for path in ("/", "/health", "/connectors"):
        _assert_real_401(http.get(url + path))
    assert http.get(url + "/", auth=("admin", "wrong")).status_code == 401
    assert http.get(url + "/", headers={"Authorization": "Basic !!!"}).status_code == 401
    assert http.get(url + "/connectors", auth=("admin", "s3cret")).json() == ["jdbc-sink", "file-source"]
    assert http.get(url + "/nowhere").status_code == 404  # the filter runs after resource matching


def test_basic_auth_with_empty_credentials_lets_everyone_in(make_sim: MakeSim, http: httpx.Client) -> None:
    assert http.get(make_sim(credentials={}).urls[0] + "/").status_code == 200


# -- async use, scenario, CLI ---------------------------------------------------------------------------------


async def test_async_server_in_the_test_loop() -> None:
    cluster = SimCluster("3.8.0", worker_count=3)
    cluster.add_connector("a", "sink")
    async with SimConnectServer(cluster) as server, httpx.AsyncClient() as client:
        assert len(set(server.urls)) == 3
        status = (await client.get(server.urls[2] + "/connectors/a/status")).json()
        assert status["connector"]["worker_id"] in {u.removeprefix("http://") for u in server.urls}
        await server.set_fault(2, Fault.refuse())
        with pytest.raises(httpx.ConnectError):
            await client.get(server.urls[2])


def _story(seed: int, steps: int) -> tuple[list[str], list[tuple[str, str, list[str]]]]:
    cluster = SimCluster()
    scenario = Scenario(cluster, seed=seed)
    events = [e for _ in range(steps) for e in scenario.step()]
    final = [
        (n, cluster.connector(n).state, [t.state for t in cluster.connector(n).tasks])
        for n in cluster.connector_names()
    ]
    return events, final


def test_scenario_is_deterministic_and_eventful() -> None:
    events, final = _story(7, 60)
    assert (events, final) == _story(7, 60)
    assert events != _story(8, 60)[0]
    assert any("FAILED" in e for e in events) and any("restarted" in e for e in events)
    assert any("paused" in e for e in events) and any("created" in e or "deleted" in e for e in events)
    for _, state, tasks in final:
        assert state in CONNECT_CONNECTOR_STATES
        assert set(tasks) <= set(CONNECT_TASK_STATES)
    cluster = SimCluster()
    Scenario(cluster)
    assert len(cluster.connector_names()) == 12
    assert {cluster.connector(n).type for n in cluster.connector_names()} == {"source", "sink"}
    assert {t.class_name for t in CATALOG[:12]} <= set(
        cluster.connector(n).class_name for n in cluster.connector_names()
    )


def test_populate_static() -> None:
    cluster = SimCluster()
    populate_static(cluster, 300, 3, failed_ratio=0.1)
    assert len(cluster.connector_names()) == 300
    states = [t.state for n in cluster.connector_names() for t in cluster.connector(n).tasks]
    assert len(states) == 900 and 40 < states.count(FAILED) < 140


def test_cli_serves_static_cluster_until_sigterm(http: httpx.Client) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--workers", "2", "--connectors", "25", "--tasks", "2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        urls = [proc.stdout.readline().strip() for _ in range(2)]
        assert all(u.startswith("http://127.0.0.1:") for u in urls)
        body = http.get(urls[1] + "/connectors?expand=status&expand=info").json()
        assert len(body) == 25 and all(len(v["status"]["tasks"]) == 2 for v in body.values())
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


# -- the exporter against the real workers' quirks, as the simulator reproduces them ------------------------------


async def test_exporter_reads_4_x_status_versions_and_the_json_labelled_401() -> None:
    """Real 4.3.1 adds "version" to every connector/task state (null while RESTARTING) and the basic-auth 401
    is bare text labelled application/json: the exporter ignores the key and reports the 401's text."""
    cluster = SimCluster("4.3.1", 2)
    cluster.add_connector("src", "source", tasks_max=2)
    cluster.add_connector("sink", "sink", tasks_max=1)
    cluster.fail_task("src", 1)
    cluster.restart_connector_and_tasks("sink", include_tasks=True, only_failed=False)  # RESTARTING, version null
    password = "Tr0ub4dor-and-3"
    with connect_in_thread(cluster, credentials={"monitor": password}) as sim:
        good = {"basic": {"username": "monitor", "password": password}}
        async with running_daemon(quick_config({"c": sim.urls}, auth=good)) as ex:
            s = await ex.wait_for(lambda s: s.value("kafka_connect_up", connect_cluster="c") == 1.0, what="up")
            assert s.current_state("kafka_connect_task_state", connector="src", task="0") == RUNNING
            assert s.current_state("kafka_connect_task_state", connector="src", task="1") == FAILED
            assert s.current_state("kafka_connect_task_state", connector="sink", task="0") == RESTARTING
            assert s.current_state("kafka_connect_connector_state", connector="sink") == RESTARTING
            assert s.value("kafka_connect_exporter_poll_errors_total", connect_cluster="c", reason="bad_response") == 0
            [(worker, _)] = s.samples("kafka_connect_worker_info", worker=sim.urls[0])
            assert worker["version"] == "4.3.1"

        bad = {"basic": {"username": "monitor", "password": "not-" + password}}
        with capture_logs() as logs:
            async with running_daemon(quick_config({"c": sim.urls}, auth=bad)) as ex:
                s = await ex.next_polls("c", 2)
                page = (await ex.client.get(ex.base + "/")).text
    assert s.value("kafka_connect_up", connect_cluster="c") == 0.0
    assert {v for _, v in s.samples("kafka_connect_worker_up", connect_cluster="c")} == {0.0}
    assert s.samples("kafka_connect_connector_state") == []
    failures = [e for e in logs if e.get("event") == "poll_failed"]
    assert failures and all(e["status"] == 401 for e in failures)
    # The first line of the non-JSON body is the message, not a JSON decoding error.
    assert {e["error"] for e in failures} == {"HTTP 401: User cannot access the resource."}
    assert {e["reason"] for e in failures} == {"http_status"}
    assert "HTTP 401: User cannot access the resource." in page
    assert password not in repr(logs) + s.text + page
