"""Pure parsers from Kafka Connect REST JSON (already decoded) to the snapshot model.

Shapes follow ``connect-rest.md`` §1. Unknown keys are ignored and unknown states kept as-is; anything
that is not the documented shape raises ``BadResponse`` with a message that says what was wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from sys import intern
from typing import Any

from exporter.model import Connector, Plugin, SinkSubscription, Task


class BadResponse(ValueError):
    """The body was decoded but is not the shape the Connect REST API documents."""


def _str(obj: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise BadResponse(f"{where}: missing {key!r}")
        return None
    if not isinstance(value, str):
        raise BadResponse(f"{where}: {key!r} is {type(value).__name__}, expected a string")
    return value


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise BadResponse(f"{where}: expected an object, got {type(value).__name__}")
    return value


def parse_server_info(data: Any) -> tuple[str, str | None, str | None]:
    """``GET /`` → (version, commit, kafka_cluster_id). kafka_cluster_id only exists since 1.1.0."""
    obj = _mapping(data, "GET /")
    version = _str(obj, "version", "GET /")
    assert version is not None
    return (
        version,
        _str(obj, "commit", "GET /", required=False),
        _str(obj, "kafka_cluster_id", "GET /", required=False),
    )


def parse_task(data: Any, where: str) -> Task:
    # Fast path for the documented shape (tens of thousands of tasks per cycle); anything else takes the
    # checked path below, which says what is wrong.
    if type(data) is dict:
        tid, state, wid, trace = data.get("id"), data.get("state"), data.get("worker_id"), data.get("trace")
        version = data.get("version")
        if (
            type(tid) is int
            and tid >= 0
            and type(state) is str
            and (wid is None or type(wid) is str)
            and (trace is None or type(trace) is str)
            and (version is None or type(version) is str)
        ):
            # States, worker ids and versions repeat across tens of thousands of tasks: share one string each.
            return Task(
                id=tid,
                state=intern(state),
                worker_id=intern(wid) if wid else "",
                trace=trace,
                version=intern(version) if version else None,
            )
    obj = _mapping(data, where)
    tid = obj.get("id")
    if isinstance(tid, bool) or not isinstance(tid, int) or tid < 0:
        raise BadResponse(f"{where}: task id {tid!r} is not a non-negative integer")
    state = _str(obj, "state", where)
    assert state is not None
    return Task(
        id=tid,
        state=state,
        worker_id=_str(obj, "worker_id", where, required=False) or "",
        trace=_str(obj, "trace", where, required=False),
        version=_version(obj),
    )


def parse_connector(name: str, status: Any, info: Any) -> Connector:
    """One connector from its ConnectorStateInfo and (possibly null) ConnectorInfo."""
    where = f"connector {name!r}"
    st = _mapping(status, f"{where} status")
    conn = _mapping(st.get("connector"), f"{where} status.connector")
    state = _str(conn, "state", f"{where} status.connector")
    assert state is not None
    raw_tasks = st.get("tasks", [])
    if not isinstance(raw_tasks, list):
        raise BadResponse(f"{where}: status.tasks is {type(raw_tasks).__name__}, expected a list")
    tasks = tuple(sorted((parse_task(t, f"{where} task") for t in raw_tasks), key=lambda t: t.id))
    if len({t.id for t in tasks}) != len(tasks):
        raise BadResponse(f"{where}: the same task id appears twice")

    class_name: str | None = None
    tasks_max: int | None = None
    info_type: str | None = None
    heartbeat: float | None = None
    config: Any = None
    if info is not None:  # null when the connector vanished while the worker built the response
        inf = _mapping(info, f"{where} info")
        config = inf.get("config")
        if isinstance(config, dict):
            cls = config.get("connector.class")
            class_name = cls if isinstance(cls, str) else None
            tasks_max = _parse_tasks_max(config.get("tasks.max"))
            ms = _parse_tasks_max(config.get("heartbeat.interval.ms"))  # the same non-negative integer rules
            heartbeat = ms / 1000.0 if ms else None
        info_type = inf.get("type") if isinstance(inf.get("type"), str) else None
    ctype = st.get("type") if isinstance(st.get("type"), str) else info_type
    sink = sink_subscription(name, config) if ctype == "sink" and isinstance(config, dict) else None
    return Connector(
        name=name,
        type=intern(ctype) if ctype else "unknown",
        class_name=intern(class_name) if class_name else class_name,
        state=intern(state),
        worker_id=intern(_str(conn, "worker_id", f"{where} status.connector", required=False) or ""),
        trace=_str(conn, "trace", f"{where} status.connector", required=False),
        tasks=tasks,
        tasks_max=tasks_max,
        version=_version(conn),
        heartbeat_interval=heartbeat,
        sink=sink,
    )


def sink_subscription(name: str, config: Mapping[str, Any]) -> SinkSubscription:
    """A sink's topics and consumer group from its config (Connect's SinkUtils.consumerGroupId and
    SinkConnectorConfig): ``topics`` is a comma-separated list, ``topics.regex`` a Java regex."""
    raw_topics = config.get("topics")
    topics = tuple(t.strip() for t in raw_topics.split(",") if t.strip()) if isinstance(raw_topics, str) else ()
    regex = config.get("topics.regex")
    group = config.get("consumer.override.group.id")
    reset = config.get("consumer.override.auto.offset.reset")
    return SinkSubscription(
        group_id=group.strip() if isinstance(group, str) and group.strip() else f"connect-{name}",
        topics=topics,
        topics_regex=regex if isinstance(regex, str) and regex.strip() else None,
        offset_reset=reset.strip().lower() if isinstance(reset, str) and reset.strip() else "earliest",
    )


def _version(obj: Mapping[str, Any]) -> str | None:
    # KIP-891's plugin version is informative: a value of another type is dropped, never the connector.
    value = obj.get("version")
    return intern(value) if isinstance(value, str) and value else None


def _parse_tasks_max(value: Any) -> int | None:
    # Config values are strings in Connect; a broken one must not hide the connector itself.
    if isinstance(value, str):
        text = value.strip()
        # isdigit() alone lets "²" and 5,000-digit strings through to int(), which raises.
        return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def parse_expanded(data: Any) -> tuple[tuple[Connector, ...], list[str]]:
    """``GET /connectors?expand=status&expand=info`` → (connectors, problems).

    A malformed entry is skipped and described in ``problems`` rather than failing the whole cycle, so one
    odd connector never hides the others. Connectors without a status are simply absent (KIP-465).
    """
    obj = _mapping(data, "GET /connectors?expand")
    connectors: list[Connector] = []
    problems: list[str] = []
    for name, entry in obj.items():
        if not isinstance(entry, dict) or "status" not in entry:
            problems.append(f"connector {name!r}: expand entry has no status")
            continue
        try:
            connectors.append(parse_connector(name, entry["status"], entry.get("info")))
        except BadResponse as exc:
            problems.append(str(exc))
    connectors.sort(key=lambda c: c.name)
    return tuple(connectors), problems


def parse_connector_names(data: Any) -> list[str]:
    if not isinstance(data, list) or not all(isinstance(n, str) for n in data):
        raise BadResponse("GET /connectors: expected a list of connector names")
    return list(data)


def parse_plugins(data: Any) -> tuple[Plugin, ...]:
    if not isinstance(data, list):
        raise BadResponse("GET /connector-plugins: expected a list")
    plugins = []
    for i, item in enumerate(data):
        obj = _mapping(item, f"GET /connector-plugins[{i}]")
        cls = _str(obj, "class", f"GET /connector-plugins[{i}]")
        assert cls is not None
        plugins.append(
            Plugin(
                class_name=cls,
                type=_str(obj, "type", f"plugin {cls}", required=False) or "unknown",
                version=_str(obj, "version", f"plugin {cls}", required=False),
            )
        )
    # One worker may list a plugin twice (several plugin paths); a duplicate series would break the scrape.
    unique = {(p.class_name, p.type, p.version): p for p in plugins}
    return tuple(sorted(unique.values(), key=lambda p: (p.class_name, p.type, p.version or "")))
