"""Connect API v1 ``GET …/connectors?expand=id,info,status`` answers → model ``Connector`` objects.

The answer is an object keyed by connector name (ccloud-api.md B.2). Every expansion is optional,
unknown fields are ignored and states pass through as sent, so a state the API adds later (or one
the docs use but the enum lacks, such as RESTARTING) is exported, never dropped.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from exporter.cloud.query import BadResponse
from exporter.model import Connector, Task


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse_connector(name: str, entry: Any) -> Connector:
    if not isinstance(entry, dict):
        raise BadResponse(f"connector {name!r}: expected an object")
    status = entry.get("status")
    if not isinstance(status, dict):
        raise BadResponse(f"connector {name!r}: no status")
    conn = status.get("connector")
    if not isinstance(conn, dict) or not isinstance(conn.get("state"), str):
        raise BadResponse(f"connector {name!r}: status.connector.state missing")
    tasks: list[Task] = []
    raw_tasks = status.get("tasks") or []
    if not isinstance(raw_tasks, list):
        raise BadResponse(f"connector {name!r}: status.tasks is not a list")
    for t in raw_tasks:
        if not isinstance(t, dict) or not isinstance(t.get("state"), str):
            raise BadResponse(f"connector {name!r}: a task has no state")
        tid = t.get("id")
        if isinstance(tid, bool) or not isinstance(tid, int):
            raise BadResponse(f"connector {name!r}: task id {tid!r} is not an integer")
        tasks.append(
            Task(id=tid, state=t["state"], worker_id=_str(t.get("worker_id")) or "", trace=_str(t.get("msg")) or None)
        )
    if len({t.id for t in tasks}) != len(tasks):  # would be a duplicate series and fail the whole scrape
        raise BadResponse(f"connector {name!r}: the same task id appears twice")
    info = entry.get("info")
    raw_config = info.get("config") if isinstance(info, dict) else None
    config: dict[str, Any] = raw_config if isinstance(raw_config, dict) else {}
    tasks_max: int | None = None
    try:
        tasks_max = int(str(config["tasks.max"])) if config.get("tasks.max") is not None else None
    except ValueError:
        tasks_max = None
    id_obj = entry.get("id")
    connector_id = _str(id_obj.get("id")) if isinstance(id_obj, dict) else None
    # The type lives in status.type; info.config.type in the docs' examples is not reliable (B.2 quirks).
    ctype = _str(status.get("type")) or _str(config.get("type")) or "unknown"
    return Connector(
        name=name,
        type=ctype,
        class_name=_str(config.get("connector.class")),
        state=conn["state"],
        worker_id=_str(conn.get("worker_id")) or "",
        tasks=tuple(sorted(tasks, key=lambda t: t.id)),
        tasks_max=tasks_max,
        trace=_str(conn.get("trace")) or None,
        connector_id=connector_id,
    )


def parse_expanded(data: Any, only_ids: Collection[str] = ()) -> tuple[tuple[Connector, ...], list[str]]:
    """Connectors (filtered to ``only_ids`` when given) and problems with single entries (skipped)."""
    if not isinstance(data, dict):
        raise BadResponse(f"expected an object keyed by connector name, got {type(data).__name__}")
    out: list[Connector] = []
    problems: list[str] = []
    for name, entry in data.items():
        try:
            connector = parse_connector(str(name), entry)
        except BadResponse as exc:
            problems.append(str(exc))
            continue
        if only_ids and connector.connector_id not in only_ids:
            continue
        out.append(connector)
    return tuple(sorted(out, key=lambda c: c.name)), problems
