"""Connectors for the failure tests: a sink on one worker, with a task in each given state."""

from __future__ import annotations

from exporter.model import Connector, Task


def conn(name: str, state: str, *tasks: str, tasks_max: int | None = None) -> Connector:
    return Connector(
        name=name,
        type="sink",
        class_name=None,
        state=state,
        worker_id="w:1",
        tasks=tuple(Task(i, s, "w:1") for i, s in enumerate(tasks)),
        tasks_max=tasks_max,
    )
