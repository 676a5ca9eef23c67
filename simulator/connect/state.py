"""In-memory state of a simulated Kafka Connect cluster (distributed mode). No I/O happens here.

The REST layer (``simulator.connect.rest``) turns this state into exactly what a real worker answers, as
written down in the Connect REST reference (connect-rest.md). Tests drive the state through the methods below
(fail a task, start a rebalance, lose a worker, ...) and the simulation moves on only when ``tick()`` is
called, so every test is deterministic.

All public methods take ``self.lock`` (re-entrant): the HTTP servers may run in another thread
(``connect_in_thread``) while a test changes the state.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from simulator.connector import SimConnector, SimTask, TargetState

UNASSIGNED = "UNASSIGNED"
RUNNING = "RUNNING"
PAUSED = "PAUSED"
FAILED = "FAILED"
RESTARTING = "RESTARTING"
STOPPED = "STOPPED"

Json = Any  # what json.dumps accepts; the shapes are the entities of connect-rest.md §1


class RebalanceMode(StrEnum):
    """How a rebalance shows up on the write endpoints (connect-rest.md §0, forwarding)."""

    STALE_CONFIG = "stale_config"  # RebalanceNeededException: 409 on writes, 500 on non-forwarding reads
    NO_LEADER = "no_leader"  # forwardUrl == null: 409 on writes that need the leader


MSG_STALE_CONFIG = (
    "Cannot complete request momentarily due to stale configuration (typically caused by a concurrent config change)"
)
MSG_NO_LEADER = (
    "Cannot complete request momentarily due to no known leader URL, likely because a rebalance was underway."
)
MSG_REBALANCE_EXPECTED = "Request cannot be completed because a rebalance is expected"


class ConnectRestError(Exception):
    """An error a worker answers with ``{"error_code": status, "message": message}``."""

    def __init__(self, status: int, message: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_version(version: str) -> tuple[int, int, int]:
    """``"3.9.0"`` -> (3, 9, 0); ``"0.10.2.1"`` -> (0, 10, 2); suffixes such as ``-SNAPSHOT``/``-ccs`` ignored."""
    parts = [int(p) for p in re.findall(r"\d+", version.split("-", 1)[0])[:3]]
    while len(parts) < 3:
        parts.append(0)
    return parts[0], parts[1], parts[2]


@dataclass(frozen=True, slots=True)
class PluginSpec:
    class_name: str
    type: str  # source | sink | converter | header_converter | transformation | predicate
    version: str = "undefined"  # "undefined" is omitted from the JSON (NoVersionFilter)


def default_plugins(kafka_version: str) -> tuple[PluginSpec, ...]:
    """A realistic plugin path: Apache Kafka's own plugins plus some popular third-party connectors."""
    v = kafka_version
    return (
        PluginSpec("io.confluent.connect.elasticsearch.ElasticsearchSinkConnector", "sink", "14.1.1"),
        PluginSpec("io.confluent.connect.jdbc.JdbcSinkConnector", "sink", "10.7.6"),
        PluginSpec("io.confluent.connect.jdbc.JdbcSourceConnector", "source", "10.7.6"),
        PluginSpec("io.confluent.connect.s3.S3SinkConnector", "sink", "10.5.13"),
        PluginSpec("io.debezium.connector.mysql.MySqlConnector", "source", "2.7.3.Final"),
        PluginSpec("io.debezium.connector.postgresql.PostgresConnector", "source", "2.7.3.Final"),
        PluginSpec("org.apache.kafka.connect.file.FileStreamSinkConnector", "sink", v),
        PluginSpec("org.apache.kafka.connect.file.FileStreamSourceConnector", "source", v),
        PluginSpec("org.apache.kafka.connect.mirror.MirrorCheckpointConnector", "source", v),
        PluginSpec("org.apache.kafka.connect.mirror.MirrorHeartbeatConnector", "source", v),
        PluginSpec("org.apache.kafka.connect.mirror.MirrorSourceConnector", "source", v),
        PluginSpec("org.apache.kafka.connect.converters.ByteArrayConverter", "converter"),
        PluginSpec("org.apache.kafka.connect.json.JsonConverter", "converter"),
        PluginSpec("org.apache.kafka.connect.storage.StringConverter", "converter"),
        PluginSpec("org.apache.kafka.connect.storage.SimpleHeaderConverter", "header_converter"),
        PluginSpec("org.apache.kafka.connect.transforms.InsertField$Value", "transformation", v),
        PluginSpec("org.apache.kafka.connect.transforms.RegexRouter", "transformation", v),
        PluginSpec("org.apache.kafka.connect.transforms.predicates.TopicNameMatches", "predicate", v),
    )


# ---------------------------------------------------------------------------------------------------------------
# Realistic Java stack traces (Throwable.printStackTrace() text, as AbstractHerder#trace stores it).

_SINK_FRAMES = (
    "org.apache.kafka.connect.runtime.WorkerSinkTask.deliverMessages(WorkerSinkTask.java:636)",
    "org.apache.kafka.connect.runtime.WorkerSinkTask.poll(WorkerSinkTask.java:345)",
    "org.apache.kafka.connect.runtime.WorkerSinkTask.iteration(WorkerSinkTask.java:247)",
    "org.apache.kafka.connect.runtime.WorkerSinkTask.execute(WorkerSinkTask.java:216)",
    "org.apache.kafka.connect.runtime.WorkerTask.doRun(WorkerTask.java:226)",
    "org.apache.kafka.connect.runtime.WorkerTask.run(WorkerTask.java:281)",
    "java.base/java.util.concurrent.Executors$RunnableAdapter.call(Executors.java:539)",
    "java.base/java.util.concurrent.FutureTask.run(FutureTask.java:264)",
    "java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:1136)",
    "java.base/java.util.concurrent.ThreadPoolExecutor$Worker.run(ThreadPoolExecutor.java:635)",
    "java.base/java.lang.Thread.run(Thread.java:840)",
)
_SOURCE_FRAMES = (
    "org.apache.kafka.connect.runtime.errors.RetryWithToleranceOperator.execAndHandleError"
    "(RetryWithToleranceOperator.java:244)",
    "org.apache.kafka.connect.runtime.errors.RetryWithToleranceOperator.execute(RetryWithToleranceOperator.java:166)",
    "org.apache.kafka.connect.runtime.AbstractWorkerSourceTask.convertTransformedRecord"
    "(AbstractWorkerSourceTask.java:524)",
    "org.apache.kafka.connect.runtime.AbstractWorkerSourceTask.sendRecords(AbstractWorkerSourceTask.java:403)",
    "org.apache.kafka.connect.runtime.AbstractWorkerSourceTask.execute(AbstractWorkerSourceTask.java:367)",
    "org.apache.kafka.connect.runtime.WorkerTask.doRun(WorkerTask.java:226)",
    "org.apache.kafka.connect.runtime.WorkerTask.run(WorkerTask.java:281)",
    "java.base/java.lang.Thread.run(Thread.java:840)",
)
_SOURCE_SEND_FRAMES = (
    "org.apache.kafka.connect.runtime.AbstractWorkerSourceTask.maybeThrowProducerSendException"
    "(AbstractWorkerSourceTask.java:334)",
    "org.apache.kafka.connect.runtime.AbstractWorkerSourceTask.execute(AbstractWorkerSourceTask.java:359)",
    "org.apache.kafka.connect.runtime.WorkerTask.doRun(WorkerTask.java:226)",
    "org.apache.kafka.connect.runtime.WorkerTask.run(WorkerTask.java:281)",
    "java.base/java.lang.Thread.run(Thread.java:840)",
)
_SOURCE_POLL_FRAMES = (
    "org.apache.kafka.connect.runtime.AbstractWorkerSourceTask.poll(AbstractWorkerSourceTask.java:488)",
    "org.apache.kafka.connect.runtime.AbstractWorkerSourceTask.execute(AbstractWorkerSourceTask.java:360)",
    "org.apache.kafka.connect.runtime.WorkerTask.doRun(WorkerTask.java:226)",
    "org.apache.kafka.connect.runtime.WorkerTask.run(WorkerTask.java:281)",
    "java.base/java.lang.Thread.run(Thread.java:840)",
)
# Causes a source task meets while converting a record: errors.tolerance=none stops it in the error handler.
_DATA_CAUSES = frozenset(
    {"org.apache.kafka.connect.errors.DataException", "org.apache.kafka.common.errors.SerializationException"}
)
_CONNECTOR_FRAMES = (
    "org.apache.kafka.connect.runtime.WorkerConnector.doStart(WorkerConnector.java:198)",
    "org.apache.kafka.connect.runtime.WorkerConnector.start(WorkerConnector.java:173)",
    "org.apache.kafka.connect.runtime.WorkerConnector.doTransitionTo(WorkerConnector.java:373)",
    "org.apache.kafka.connect.runtime.WorkerConnector.doRun(WorkerConnector.java:143)",
    "org.apache.kafka.connect.runtime.WorkerConnector.run(WorkerConnector.java:121)",
    "java.base/java.lang.Thread.run(Thread.java:840)",
)


def java_trace(
    exception: str,
    message: str,
    frames: Iterable[str],
    cause: tuple[str, str] | None = None,
) -> str:
    """A stack trace in ``Throwable.printStackTrace()`` form: header, ``\\tat`` frames, ``Caused by:``."""
    lines = [f"{exception}: {message}"]
    lines.extend(f"\tat {f}" for f in frames)
    if cause is not None:
        lines.append(f"Caused by: {cause[0]}: {cause[1]}")
        lines.append("\t... 11 more")
    return "\n".join(lines) + "\n"


def task_trace(kind: str, cause: tuple[str, str] | None = None) -> str:
    """A realistic FAILED-task trace for a ``sink`` or ``source`` task.

    A source task's default failure is transient (producer sends timed out); a data cause gives the error
    handler's "Tolerance exceeded" trace, any other cause the task's own exception.
    """
    if kind == "sink":
        return java_trace(
            "org.apache.kafka.connect.errors.ConnectException",
            "Exiting WorkerSinkTask due to unrecoverable exception.",
            _SINK_FRAMES,
            cause or ("java.sql.SQLException", "Connection refused"),
        )
    if cause is None:  # the default: the brokers went away (a restart heals it once they are back)
        return java_trace(
            "org.apache.kafka.connect.errors.ConnectException",
            "Unrecoverable exception from producer send callback",
            _SOURCE_SEND_FRAMES,
            (
                "org.apache.kafka.common.errors.TimeoutException",
                "Expiring 12 record(s) for orders-0: 120001 ms has passed",
            ),
        )
    if cause[0] in _DATA_CAUSES:  # a record the converter cannot handle (a restart meets it again)
        return java_trace(
            "org.apache.kafka.connect.errors.ConnectException",
            "Tolerance exceeded in error handler",
            _SOURCE_FRAMES,
            cause,
        )
    # The task's own poll() threw: connectors wrap the cause in a ConnectException that repeats its text.
    return java_trace(
        "org.apache.kafka.connect.errors.ConnectException", f"{cause[0]}: {cause[1]}", _SOURCE_POLL_FRAMES, cause
    )


def connector_trace(cause: tuple[str, str] | None = None) -> str:
    """A realistic FAILED-connector trace (the Connector#start call threw)."""
    return java_trace(
        "org.apache.kafka.connect.errors.ConnectException",
        "Failed to connect to and describe the database",
        _CONNECTOR_FRAMES,
        cause or ("java.net.ConnectException", "Connection refused"),
    )


# ---------------------------------------------------------------------------------------------------------------
# State

_HEALTH = {
    "healthy": (200, "Worker has completed startup and is ready to handle requests."),
    "starting": (503, "Worker is still starting up."),
    "unhealthy": (
        500,
        "Worker was unable to handle this request and may be unable to handle other requests.",
    ),
}


@dataclass(slots=True)
class SimWorker:
    index: int
    worker_id: str  # "host:port", set by the server once its listener is bound
    alive: bool = True
    health: str = "healthy"  # what GET /health (3.9+) reports: healthy | starting | unhealthy


def _state_for(target: TargetState) -> str:
    """The status a healthy (re)started connector or task reports for a target state."""
    if target is TargetState.PAUSED:
        return PAUSED
    if target is TargetState.STOPPED:
        return STOPPED
    return RUNNING


class SimCluster:
    """A Kafka Connect cluster in distributed mode, as its REST API shows it.

    ``version`` is what ``GET /`` reports; ``api_version`` (default: the same) decides which features exist,
    e.g. ``SimCluster(version="7.6.0-ccs", api_version="3.6.0")`` for Confluent Platform 7.6.
    """

    def __init__(
        self,
        version: str = "3.9.0",
        worker_count: int = 2,
        kafka_cluster_id: str = "MkU3OEVBNTcwNTJENDM2Qk",
        commit: str = "a1b2c3d4e5f60718",
        *,
        api_version: str | None = None,
        plugins: Iterable[PluginSpec] | None = None,
        topic_tracking: bool = True,
        topic_tracking_reset: bool = True,
    ) -> None:
        if worker_count < 1:
            raise ValueError("worker_count must be at least 1")
        self.lock = threading.RLock()
        self.version = version
        self.api = parse_version(api_version or version)
        self.kafka_cluster_id = kafka_cluster_id
        self.commit = commit
        self.workers = [SimWorker(i, f"127.0.0.1:{8083 + i}") for i in range(worker_count)]
        self.plugins: tuple[PluginSpec, ...] = tuple(plugins) if plugins is not None else default_plugins(version)
        self.topic_tracking = topic_tracking
        self.topic_tracking_reset = topic_tracking_reset
        self.rebalance: RebalanceMode | None = None
        self.ticks = 0
        self._connectors: dict[str, SimConnector] = {}
        # Deleted connectors whose status record is not gone yet: the real status store keeps answering
        # ``/connectors/{c}/status`` (type "unknown") for about a second after DELETE; the next tick() drops it.
        self._deleted: dict[str, SimConnector] = {}
        self._rr = 0  # round-robin cursor for assignments
        # GET /connectors/{c}/offsets answers set by tests (``set_offsets``); others get a fixed one.
        self._offsets: dict[str, list[dict[str, Json]]] = {}

    # -- versions ---------------------------------------------------------------------------------------------

    def supports(self, since: str) -> bool:
        """True when this cluster's API has a feature that appeared in Kafka ``since``."""
        return self.api >= parse_version(since)

    # -- workers ----------------------------------------------------------------------------------------------

    def set_worker_id(self, index: int, worker_id: str) -> None:
        with self.lock:
            self.workers[index].worker_id = worker_id

    def worker_id(self, index: int) -> str:
        with self.lock:
            return self.workers[index].worker_id

    def _live(self) -> list[int]:
        return [w.index for w in self.workers if w.alive]

    def _next_worker(self) -> int:
        live = self._live()
        if not live:
            return 0
        w = live[self._rr % len(live)]
        self._rr += 1
        return w

    def _owned_by_dead(self, worker: int) -> bool:
        return not self.workers[worker].alive

    def stop_worker(self, index: int) -> None:
        """Graceful shutdown: its connectors and tasks report UNASSIGNED (with its worker_id) until the next
        ``tick()`` reassigns them to live workers (WorkerConnector/WorkerTask ``onShutdown``)."""
        with self.lock:
            self.workers[index].alive = False
            for c in self._connectors.values():
                if c.worker == index and c.has_status and c.state != STOPPED:
                    c.state, c.trace, c.restart_pending = UNASSIGNED, None, False
                for t in c.tasks:
                    if t.worker == index and t.has_status:
                        t.state, t.trace, t.restart_pending = UNASSIGNED, None, False

    def kill_worker(self, index: int) -> None:
        """Crash: nothing is written, so statuses still name the dead worker until the next ``tick()``
        (the rebalance after the session timeout) reassigns its work."""
        with self.lock:
            self.workers[index].alive = False

    def start_worker(self, index: int) -> None:
        """The worker (re)joins; work is not moved back to it, only newly assigned work lands on it."""
        with self.lock:
            self.workers[index].alive = True

    # -- rebalance ----------------------------------------------------------------------------------------

    def set_rebalancing(self, on: bool = True, mode: RebalanceMode = RebalanceMode.STALE_CONFIG) -> None:
        """While on, herder-backed writes answer 409 and non-forwarding reads 500 (connect-rest.md §0)."""
        with self.lock:
            self.rebalance = mode if on else None

    # -- connectors: set-up --------------------------------------------------------------------------------

    def add_connector(
        self,
        name: str,
        type: str = "source",
        *,
        class_name: str | None = None,
        tasks_max: int = 1,
        config: Mapping[str, str] | None = None,
        state: str = RUNNING,
        topics: Iterable[str] | None = None,
    ) -> SimConnector:
        """Create a connector directly (no REST). ``state`` may be RUNNING, PAUSED, STOPPED, FAILED or any
        string; PAUSED/STOPPED also set the target state."""
        with self.lock:
            if name in self._connectors:
                raise ValueError(f"connector {name!r} exists")
            self._deleted.pop(name, None)
            if class_name is None:
                class_name = (
                    "org.apache.kafka.connect.file.FileStreamSinkConnector"
                    if type == "sink"
                    else "org.apache.kafka.connect.file.FileStreamSourceConnector"
                )
            cfg = {"connector.class": class_name, "tasks.max": str(tasks_max), "name": name}
            if type == "sink" and "topics" not in (config or {}) and "topics.regex" not in (config or {}):
                cfg["topics"] = f"{name}-in"
            cfg.update(config or {})
            cfg["name"] = name
            target = TargetState.STARTED
            if state == PAUSED:
                target = TargetState.PAUSED
            elif state == STOPPED:
                target = TargetState.STOPPED
            c = SimConnector(name=name, config=cfg, type=type, target=target, state=RUNNING, worker=0)
            c.topics = list(topics) if topics is not None else None
            self._connectors[name] = c
            self._start_connector(c)
            self._reconfigure_tasks(c)
            if state not in (RUNNING, PAUSED, STOPPED):
                self.set_state(name, state)
            return c

    def _start_connector(self, c: SimConnector) -> None:
        c.worker = self._next_worker()
        c.restart_pending = False
        if not self.workers[c.worker].alive:
            c.state, c.trace = UNASSIGNED, None
        elif c.fault is not None:
            c.state, c.trace = FAILED, c.fault
        else:
            c.state, c.trace = _state_for(c.target), None

    def _start_task(self, c: SimConnector, t: SimTask, same_worker: bool = False) -> None:
        if not same_worker or not self.workers[t.worker].alive:
            t.worker = self._next_worker()
        t.restart_pending = False
        if not self.workers[t.worker].alive:
            t.state, t.trace = UNASSIGNED, None
        elif t.fault is not None:
            t.state, t.trace = FAILED, t.fault
        else:
            t.state, t.trace = _state_for(c.target), None

    def _reconfigure_tasks(self, c: SimConnector) -> None:
        """Task configs follow tasks.max; a STOPPED connector has none (empty task config list)."""
        want = 0 if c.target is TargetState.STOPPED else c.tasks_max
        del c.tasks[want:]
        for i in range(len(c.tasks), want):
            t = SimTask(id=i, state=RUNNING, worker=0)
            self._start_task(c, t)
            c.tasks.append(t)

    # -- connectors: test controls -------------------------------------------------------------------------

    def _get(self, name: str) -> SimConnector:
        try:
            return self._connectors[name]
        except KeyError:
            raise KeyError(f"no connector {name!r}") from None

    def _task(self, name: str, task: int) -> SimTask:
        for t in self._get(name).tasks:
            if t.id == task:
                return t
        raise KeyError(f"no task {name}-{task}")

    def connector(self, name: str) -> SimConnector:
        """The live state object (read it under ``lock`` when another thread serves requests)."""
        with self.lock:
            return self._get(name)

    def owner(self, name: str, task: int | None = None) -> str:
        """The worker_id the status of the connector (or of one of its tasks) names."""
        with self.lock:
            obj = self._get(name) if task is None else self._task(name, task)
            return self.workers[obj.worker].worker_id

    def connector_names(self) -> list[str]:
        with self.lock:
            return list(self._connectors)

    def fail_connector(self, name: str, trace: str | None = None, persistent: bool = False) -> None:
        with self.lock:
            c = self._get(name)
            c.state, c.trace, c.restart_pending = FAILED, trace or connector_trace(), False
            c.fault = c.trace if persistent else None

    def fail_task(self, name: str, task: int, trace: str | None = None, persistent: bool = False) -> None:
        """FAILED with a realistic trace; ``persistent`` makes every restart fail again."""
        with self.lock:
            c = self._get(name)
            t = self._task(name, task)
            t.state, t.trace, t.restart_pending = FAILED, trace or task_trace(c.type), False
            t.fault = t.trace if persistent else None

    def set_persistent_fault(self, name: str, task: int | None = None, trace: str | None = None) -> None:
        """Make restarts of the connector (``task=None``) or of one task fail; ``trace=None`` heals it."""
        with self.lock:
            if task is None:
                self._get(name).fault = trace
            else:
                self._task(name, task).fault = trace

    def set_state(self, name: str, state: str, task: int | None = None, trace: str | None = None) -> None:
        """Report any state string, including ones Connect does not have yet (the target state is untouched)."""
        with self.lock:
            obj: SimConnector | SimTask = self._get(name) if task is None else self._task(name, task)
            obj.state, obj.trace, obj.restart_pending = state, trace, False

    def set_no_status(self, name: str, task: int | None = None, missing: bool = True) -> None:
        """No status record (yet): expand=status omits the connector, ``/status`` answers 404."""
        with self.lock:
            if task is None:
                self._get(name).has_status = not missing
            else:
                self._task(name, task).has_status = not missing

    def set_info_vanished(self, name: str, vanished: bool = True) -> None:
        """expand=info answers ``"info": null`` for this connector (it vanished mid-request)."""
        with self.lock:
            self._get(name).info_vanished = vanished

    def pause(self, name: str) -> None:
        """Target PAUSED. FAILED parts stay FAILED until restarted (docs/connect.html)."""
        with self.lock:
            c = self._get(name)
            c.target = TargetState.PAUSED
            self._apply_target(c)

    def resume(self, name: str) -> None:
        """Target STARTED; a STOPPED connector gets its tasks back (since 3.5)."""
        with self.lock:
            c = self._get(name)
            was_stopped = c.target is TargetState.STOPPED
            c.target = TargetState.STARTED
            if was_stopped:
                if c.has_status and c.state == STOPPED:
                    self._start_connector(c)
                self._reconfigure_tasks(c)
            self._apply_target(c)

    def stop(self, name: str) -> None:
        """Target STOPPED: the task configs are emptied, so ``tasks`` is ``[]`` (KIP-875)."""
        with self.lock:
            c = self._get(name)
            c.target = TargetState.STOPPED
            c.tasks.clear()
            if c.has_status and c.state != UNASSIGNED:
                c.state, c.trace, c.restart_pending = STOPPED, None, False

    def delete(self, name: str) -> None:
        with self.lock:
            self._forget(name)

    def _forget(self, name: str) -> None:
        """The config is gone at once; the status record lingers until tick(). Real 3.9.2/4.3.1 workers then
        answer the last written state (PAUSED, RUNNING, or UNASSIGNED once the worker stopped it) with
        ``"type": "unknown"``, since the type comes from the deleted config."""
        c = self._connectors.pop(name)
        if c.has_status:
            c.type = "unknown"
            self._deleted[name] = c

    def _apply_target(self, c: SimConnector) -> None:
        """Running parts follow the target state; FAILED, UNASSIGNED and RESTARTING parts do not."""
        new = _state_for(c.target)
        if c.state in (RUNNING, PAUSED, STOPPED):
            c.state = new
        for t in c.tasks:
            if t.state in (RUNNING, PAUSED):
                t.state = new

    # -- simulation -----------------------------------------------------------------------------------------

    def tick(self) -> None:
        """One step of time: pending restarts finish, work of dead workers and UNASSIGNED work is (re)assigned."""
        with self.lock:
            self.ticks += 1
            self._deleted.clear()
            live = self._live()
            for c in self._connectors.values():
                # A STOPPED connector moves too (seen on 3.9.2 and 4.3.1): STOPPED again, on a live worker.
                orphaned = self._owned_by_dead(c.worker)
                if c.restart_pending or (live and (orphaned or c.state == UNASSIGNED)):
                    c.has_status = True
                    self._start_connector(c)
                for t in c.tasks:
                    if t.restart_pending:
                        self._start_task(c, t, same_worker=True)
                    elif live and (self._owned_by_dead(t.worker) or t.state == UNASSIGNED):
                        t.has_status = True
                        self._start_task(c, t)

    # -- REST semantics (used by simulator.rest) ------------------------------------------------------

    def _check_rebalance(self, forwarded: bool) -> None:
        """Herder-backed requests during a rebalance (connect-rest.md §0, forwarding)."""
        if self.rebalance is RebalanceMode.STALE_CONFIG:
            if forwarded:
                raise ConnectRestError(409, MSG_STALE_CONFIG)
            raise ConnectRestError(500, MSG_REBALANCE_EXPECTED)
        if self.rebalance is RebalanceMode.NO_LEADER and forwarded:
            raise ConnectRestError(409, MSG_NO_LEADER if self.supports("2.6.0") else MSG_STALE_CONFIG)

    def server_info(self) -> dict[str, str]:
        with self.lock:
            out = {"version": self.version, "commit": self.commit}
            if self.supports("1.1.0"):
                out["kafka_cluster_id"] = self.kafka_cluster_id
            return out

    def _with_type(self, out: dict[str, Json], c: SimConnector) -> dict[str, Json]:
        if self.supports("1.0.0"):
            out["type"] = c.type
        return out

    def _info(self, c: SimConnector) -> dict[str, Json]:
        tasks = [{"connector": c.name, "task": t.id} for t in c.tasks]
        return self._with_type({"name": c.name, "config": dict(c.config), "tasks": tasks}, c)

    def _plugin_version(self, c: SimConnector, state: str) -> str | None:
        """KIP-891 (4.1+): the version of the running plugin; null while RESTARTING (seen on 4.3.1: the
        herder writes that record, not the worker that runs the plugin)."""
        if state == RESTARTING:
            return None
        plugin = self._find_plugin(c.class_name)
        return plugin.version if plugin is not None and plugin.version != "undefined" else None

    def _conn_state(self, c: SimConnector, keep_trace: bool = True) -> dict[str, Json]:
        out: dict[str, Json] = {"state": c.state, "worker_id": self.workers[c.worker].worker_id}
        if self.supports("4.1.0"):  # key order as the real worker writes it: state, worker_id, version, trace
            out["version"] = self._plugin_version(c, c.state)
        if c.trace and keep_trace:  # @JsonInclude(NON_EMPTY)
            out["trace"] = c.trace
        return out

    def _task_state(self, c: SimConnector, t: SimTask) -> dict[str, Json]:
        out: dict[str, Json] = {"id": t.id, "state": t.state, "worker_id": self.workers[t.worker].worker_id}
        if self.supports("4.1.0"):
            out["version"] = self._plugin_version(c, t.state)
        if t.trace:
            out["trace"] = t.trace
        return out

    def _status(self, c: SimConnector) -> dict[str, Json]:
        if not c.has_status:
            raise ConnectRestError(404, f"No status found for connector {c.name}")
        tasks = [self._task_state(c, t) for t in sorted(c.tasks, key=lambda t: t.id) if t.has_status]
        return self._with_type({"name": c.name, "connector": self._conn_state(c), "tasks": tasks}, c)

    def list_connectors(self) -> list[str]:
        with self.lock:
            return list(self._connectors)

    def expand(self, expansions: list[str]) -> dict[str, dict[str, Json]]:
        """``GET /connectors?expand=..``: unknown values (e.g. ``status,info``) are ignored; a connector whose
        status lookup throws NotFound is left out; info may be null (connect-rest.md §2)."""
        with self.lock:
            out: dict[str, dict[str, Json]] = {}
            for name, c in self._connectors.items():
                entry: dict[str, Json] = {}
                try:
                    for e in expansions:
                        if e == "status":
                            entry["status"] = self._status(c)
                        elif e == "info":
                            entry["info"] = None if c.info_vanished else self._info(c)
                except ConnectRestError:
                    continue
                out[name] = entry
            return out

    def _require(self, name: str, message: str) -> SimConnector:
        c = self._connectors.get(name)
        if c is None:
            raise ConnectRestError(404, message)
        return c

    def connector_info(self, name: str) -> dict[str, Json]:
        with self.lock:
            self._check_rebalance(forwarded=False)
            return self._info(self._require(name, f"Connector {name} not found"))

    def connector_config(self, name: str) -> dict[str, str]:
        with self.lock:
            self._check_rebalance(forwarded=False)
            return dict(self._require(name, f"Connector {name} not found").config)

    def connector_status(self, name: str) -> dict[str, Json]:
        with self.lock:
            c = self._connectors.get(name) or self._deleted.get(name)
            if c is None:
                raise ConnectRestError(404, f"No status found for connector {name}")
            return self._status(c)

    def task_configs(self, name: str) -> list[dict[str, Json]]:
        with self.lock:
            self._check_rebalance(forwarded=False)
            c = self._require(name, f"Connector {name} not found")
            return [{"id": {"connector": name, "task": t.id}, "config": self._task_config(c, t)} for t in c.tasks]

    def tasks_config(self, name: str) -> dict[str, dict[str, str]]:
        with self.lock:
            self._check_rebalance(forwarded=False)
            c = self._require(name, f"Connector {name} not found")
            return {f"{name}-{t.id}": self._task_config(c, t) for t in c.tasks}

    @staticmethod
    def _task_config(c: SimConnector, t: SimTask) -> dict[str, str]:
        cfg = {k: v for k, v in c.config.items() if k not in ("connector.class", "tasks.max", "name")}
        cfg["task.class"] = c.class_name.removesuffix("Connector") + "Task"
        return cfg

    def task_status(self, name: str, task: int) -> dict[str, Json]:
        with self.lock:
            c = self._connectors.get(name)
            if c is not None:
                for t in c.tasks:
                    if t.id == task and t.has_status:
                        return self._task_state(c, t)
            raise ConnectRestError(404, f"No status found for task {name}-{task}")

    def _topics_of(self, c: SimConnector) -> list[str]:
        if c.topics is not None:
            return list(c.topics)
        if not c.has_status or c.state != RUNNING:
            return []
        raw = c.config.get("topics") or c.config.get("topic") or c.config.get("kafka.topic") or ""
        return sorted({t.strip() for t in raw.split(",") if t.strip()})

    def active_topics(self, name: str) -> dict[str, Json]:
        with self.lock:
            if not self.topic_tracking:
                raise ConnectRestError(403, "Topic tracking is disabled.")
            c = self._connectors.get(name)
            return {name: {"topics": self._topics_of(c) if c is not None else []}}

    def reset_topics(self, name: str) -> None:
        with self.lock:
            if not self.topic_tracking:
                raise ConnectRestError(403, "Topic tracking is disabled.")
            if not self.topic_tracking_reset:
                raise ConnectRestError(403, "Topic tracking reset is disabled.")
            c = self._connectors.get(name)
            if c is not None:
                c.topics = []

    def set_offsets(self, name: str, entries: Iterable[Mapping[str, Json]]) -> None:
        """What ``GET /connectors/{name}/offsets`` lists from now on: ``{"partition": {…}, "offset": {…}|None}``
        entries (sinks: ``kafka_topic``/``kafka_partition`` and ``kafka_offset``)."""
        with self.lock:
            self._offsets[name] = [dict(e) for e in entries]

    def set_sink_offsets(self, name: str, committed: Mapping[tuple[str, int], int]) -> None:
        """A sink's committed offset per (topic, partition), in the shape Connect's SinkUtils writes."""
        self.set_offsets(
            name,
            [
                {"partition": {"kafka_topic": t, "kafka_partition": p}, "offset": {"kafka_offset": o}}
                for (t, p), o in sorted(committed.items())
            ],
        )

    def offsets(self, name: str) -> dict[str, Json]:
        with self.lock:
            self._check_rebalance(forwarded=False)
            c = self._require(name, f"Connector {name} not found")
            if name in self._offsets:
                return {"offsets": list(self._offsets[name])}
            if c.type == "sink":
                parts = [
                    {"partition": {"kafka_topic": topic, "kafka_partition": 0}, "offset": {"kafka_offset": 4711}}
                    for topic in self._topics_of(c)
                ]
            else:
                parts = [{"partition": {"source": c.name}, "offset": {"position": 4711}}]
            return {"offsets": parts}

    def connector_plugins(self, connectors_only: bool = True) -> list[dict[str, str]]:
        with self.lock:
            out: list[dict[str, str]] = []
            only = connectors_only or not self.supports("3.2.0")
            for p in self.plugins:
                if only and p.type not in ("source", "sink"):
                    continue
                entry = {"class": p.class_name}
                if self.supports("0.11.0"):
                    entry["type"] = p.type
                    if p.version != "undefined":
                        entry["version"] = p.version
                out.append(entry)
            return out

    # -- writes ---------------------------------------------------------------------------------------------

    def _validate(self, config: Mapping[str, str]) -> str:
        """The connector type, or the error AbstractHerder#validateConnectorConfig gives."""
        cls = config.get("connector.class")
        if cls is None:
            shown = ", ".join(f"{k}={v}" for k, v in config.items())
            raise ConnectRestError(400, f"Connector config {{{shown}}} contains no connector type")
        plugin = self._find_plugin(cls)
        if plugin is None:
            names = ", ".join(p.class_name for p in self.plugins if p.type in ("source", "sink"))
            # Kafka 3.x answers 500 for an unknown class, 4.x 400.
            raise ConnectRestError(
                400 if self.supports("4.0.0") else 500,
                f"Failed to find any class that implements Connector and which name matches {cls}, "
                f"available connectors are: {names}",
            )
        errors: list[str] = []  # ConfigException texts: "Invalid value <v> for configuration <k>: <why>"
        tm = config.get("tasks.max")
        if tm is not None:
            digits = tm.strip().lstrip("-").isdigit()
            if not digits or int(tm) < 1:
                why = "Value must be at least 1" if digits else "Not a number of type INT"
                errors.append(f"Invalid value {tm} for configuration tasks.max: {why}")
        if config.get("name", "") == "":
            errors.append("Invalid value  for configuration name: String may not be empty")
        if errors:
            raise ConnectRestError(
                400,
                f"Connector configuration is invalid and contains the following {len(errors)} error(s):\n"
                + "\n".join(errors)
                + "\nYou can also find the above list of errors at the endpoint "
                "`/connector-plugins/{connectorType}/config/validate`",
            )
        return plugin.type

    def _find_plugin(self, cls: str) -> PluginSpec | None:
        """Connect accepts the full class name, the simple name, or the simple name without "Connector"."""
        for p in self.plugins:
            if p.type not in ("source", "sink"):
                continue
            simple = p.class_name.rsplit(".", 1)[-1]
            if cls in (p.class_name, simple, simple.removesuffix("Connector")):
                return p
        return None

    def create_connector(self, name: str, config: dict[str, str], initial_state: str | None = None) -> dict[str, Json]:
        """POST /connectors; answers the ConnectorInfo (tasks not generated yet, so ``[]``)."""
        with self.lock:
            self._check_rebalance(forwarded=True)
            ctype = self._validate(config)
            if name in self._connectors:
                raise ConnectRestError(409, f"Connector {name} already exists")
            self._deleted.pop(name, None)
            target = TargetState.STARTED
            if initial_state is not None and self.supports("3.7.0"):
                target = TargetState(initial_state.upper())
            c = SimConnector(name=name, config=dict(config), type=ctype, target=target, state=RUNNING, worker=0)
            self._connectors[name] = c
            self._start_connector(c)
            info = self._info(c)
            self._reconfigure_tasks(c)
            return info

    def put_connector_config(self, name: str, config: dict[str, str]) -> tuple[bool, dict[str, Json]]:
        """PUT /connectors/{c}/config: (created, ConnectorInfo with the tasks that existed before)."""
        with self.lock:
            self._check_rebalance(forwarded=True)
            c = self._connectors.get(name)
            if c is None:
                return True, self.create_connector(name, config)
            ctype = self._validate(config)
            info_before = [{"connector": name, "task": t.id} for t in c.tasks]
            c.config, c.type = dict(config), ctype
            out = self._with_type({"name": name, "config": dict(c.config), "tasks": info_before}, c)
            self._reconfigure_tasks(c)
            return False, out

    def patch_connector_config(self, name: str, patch: Mapping[str, str | None]) -> dict[str, Json]:
        with self.lock:
            self._check_rebalance(forwarded=True)
            c = self._require(name, f"Connector {name} not found")
            merged = dict(c.config)
            for k, v in patch.items():
                if v is None:
                    merged.pop(k, None)
                else:
                    merged[k] = v
            merged["name"] = name
            return self.put_connector_config(name, merged)[1]

    def delete_connector(self, name: str) -> None:
        with self.lock:
            self._check_rebalance(forwarded=True)
            self._require(name, f"Connector {name} not found")
            self._forget(name)

    def rest_pause(self, name: str) -> None:
        with self.lock:  # not herder-backed: no rebalance check
            self._require(name, f"Unknown connector {name}")
            self.pause(name)

    def rest_resume(self, name: str) -> None:
        with self.lock:
            self._require(name, f"Unknown connector {name}")
            self.resume(name)

    def rest_stop(self, name: str) -> None:
        with self.lock:
            self._check_rebalance(forwarded=True)
            self._require(name, f"Unknown connector {name}")
            self.stop(name)

    def restart_connector(self, name: str) -> None:
        """Plain restart: only the Connector instance, synchronously (the callback waits for the start)."""
        with self.lock:
            self._check_rebalance(forwarded=True)
            c = self._require(name, f"Unknown connector: {name}")
            if c.target is TargetState.STOPPED:
                return
            self._start_connector(c)

    def restart_connector_and_tasks(self, name: str, include_tasks: bool, only_failed: bool) -> dict[str, Json]:
        """KIP-745 restart: RESTARTING is written now (no trace), the plan keeps the old traces, and the
        restart itself finishes on the next ``tick()``."""
        with self.lock:
            self._check_rebalance(forwarded=True)
            c = self._require(name, f"Unknown connector: {name}")
            if not c.has_status:
                raise ConnectRestError(404, f"Status for connector {name} not found")
            restart_conn = not only_failed or c.state == FAILED
            plan_conn = self._conn_state(c)
            if restart_conn:
                plan_conn["state"] = RESTARTING
            plan_tasks: list[dict[str, Json]] = []
            for t in sorted(c.tasks, key=lambda t: t.id):
                if not t.has_status:
                    continue
                ts = self._task_state(c, t)
                if include_tasks and (not only_failed or t.state == FAILED):
                    ts["state"] = RESTARTING
                    t.state, t.trace, t.restart_pending = RESTARTING, None, True
                plan_tasks.append(ts)
            if restart_conn:
                c.state, c.trace, c.restart_pending = RESTARTING, None, True
            return self._with_type({"name": name, "connector": plan_conn, "tasks": plan_tasks}, c)

    def restart_task(self, name: str, task: int) -> None:
        """Task restart: synchronous; FAILED again when the task has a persistent fault."""
        with self.lock:
            self._check_rebalance(forwarded=True)
            c = self._require(name, f"Unknown connector: {name}")
            for t in c.tasks:
                if t.id == task:
                    self._start_task(c, t, same_worker=True)
                    return
            raise ConnectRestError(404, f"Unknown task: {name}-{task}")

    def set_health(self, index: int, status: str) -> None:
        """``starting`` (503) or ``unhealthy`` (500, a stuck herder thread: it still answers GET /)."""
        if status not in _HEALTH:
            raise ValueError(f"health is one of {sorted(_HEALTH)}")
        with self.lock:
            self.workers[index].health = status

    def health(self, worker: int = 0) -> tuple[int, dict[str, str]]:
        """GET /health as worker ``worker`` answers it (connect-rest.md, Root). A real unhealthy worker answers
        after its 10 s health-check timeout; the simulator answers at once (probes tell the two apart anyway).
        """
        with self.lock:
            status = self.workers[worker].health
        code, message = _HEALTH[status]
        return code, {"status": status, "message": message}
