"""KIP-891 running plugin versions in connector and task statuses (Kafka 4.1+)."""

from __future__ import annotations

from typing import Any

from exporter.connect.parse import parse_connector


def _status(connector_version: Any, *task_versions: Any) -> dict[str, Any]:
    conn: dict[str, Any] = {"state": "RUNNING", "worker_id": "127.0.0.1:8083"}
    if connector_version != "absent":
        conn["version"] = connector_version
    tasks = []
    for i, v in enumerate(task_versions):
        task: dict[str, Any] = {"id": i, "state": "RUNNING", "worker_id": "127.0.0.1:8083"}
        if v != "absent":
            task["version"] = v
        tasks.append(task)
    return {"name": "cdc", "connector": conn, "tasks": tasks, "type": "source"}


def test_the_versions_a_real_4_3_worker_sends() -> None:
    c = parse_connector("cdc", _status("3.6.1.Final", "3.6.1.Final", "3.6.1.Final"), None)
    assert c.version == "3.6.1.Final"
    assert [t.version for t in c.tasks] == ["3.6.1.Final", "3.6.1.Final"]
    assert c.task_versions == ("3.6.1.Final",)


def test_a_rolling_upgrade_lists_both_task_versions_and_restarting_tasks_none() -> None:
    c = parse_connector("cdc", _status("3.6.1.Final", "3.6.1.Final", None, "3.5.0.Final"), None)
    assert c.task_versions == ("3.5.0.Final", "3.6.1.Final")
    assert c.tasks[1].version is None


def test_older_workers_and_odd_values_give_no_version_but_keep_the_connector() -> None:
    assert parse_connector("cdc", _status("absent", "absent"), None).version is None
    odd = parse_connector("cdc", _status(7, {"v": 1}, ""), None)
    assert odd.version is None and odd.task_versions == () and len(odd.tasks) == 2
