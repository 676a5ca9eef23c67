"""A seeded, deterministic story for a simulated Connect cluster: the demo's moving picture and bench fixtures.

``Scenario.step()`` advances the story by one beat: tasks fail with realistic traces (some faults outlast a
restart for a few steps), operators restart, pause, stop, resume, delete and create connectors, and tasks
get shuffled by rebalances. The same seed always tells the same story.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from simulator.connect.state import (
    FAILED,
    PAUSED,
    RUNNING,
    STOPPED,
    UNASSIGNED,
    ConnectRestError,
    SimCluster,
    connector_trace,
    task_trace,
)
from simulator.connector import TargetState


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    type: str
    class_name: str
    tasks_max: int
    config: dict[str, str] = field(default_factory=dict)
    causes: tuple[tuple[str, str], ...] = ()  # "Caused by:" lines its failures show


_JDBC_DOWN = ("java.sql.SQLException", "Connection refused")
_PG_DUP = (
    "org.postgresql.util.PSQLException",
    'ERROR: duplicate key value violates unique constraint "customers_pkey"',
)
_S3_DENIED = (
    "software.amazon.awssdk.services.s3.model.S3Exception",
    "Access Denied (Service: S3, Status Code: 403, Request ID: 8Q2JX1T7KZ3Y4M5N)",
)
_ES_TIMEOUT = ("java.net.SocketTimeoutException", "30,000 milliseconds timeout on connection http-outgoing-3")
_DBZ_BINLOG = (
    "io.debezium.DebeziumException",
    "Client requested master to start replication from position > file size",
)
_DBZ_SLOT = ("org.postgresql.util.PSQLException", 'ERROR: replication slot "debezium" is active for PID 4711')
_MM2_ACL = ("org.apache.kafka.common.errors.TopicAuthorizationException", "Not authorized to access topics: [orders]")
_FILE = ("java.nio.file.AccessDeniedException", "/var/log/audit/audit.log")
_AVRO = ("org.apache.kafka.common.errors.SerializationException", "Unknown magic byte!")

_MYSQL = "io.debezium.connector.mysql.MySqlConnector"
_PG = "io.debezium.connector.postgresql.PostgresConnector"
_JDBC_SRC = "io.confluent.connect.jdbc.JdbcSourceConnector"
_JDBC_SINK = "io.confluent.connect.jdbc.JdbcSinkConnector"
_S3 = "io.confluent.connect.s3.S3SinkConnector"
_ES = "io.confluent.connect.elasticsearch.ElasticsearchSinkConnector"
_FILE_SRC = "org.apache.kafka.connect.file.FileStreamSourceConnector"
_FILE_SINK = "org.apache.kafka.connect.file.FileStreamSinkConnector"
_MM2 = "org.apache.kafka.connect.mirror.MirrorSourceConnector"
_MM2_CP = "org.apache.kafka.connect.mirror.MirrorCheckpointConnector"
_MM2_HB = "org.apache.kafka.connect.mirror.MirrorHeartbeatConnector"

CATALOG: tuple[Template, ...] = (
    Template("orders-jdbc-source", "source", _JDBC_SRC, 2, {"topic.prefix": "pg-", "table.whitelist": "orders"},
             (_JDBC_DOWN, _AVRO)),
    Template("inventory-mysql-cdc", "source", _MYSQL, 1, {"topic.prefix": "inventory"}, (_DBZ_BINLOG, _JDBC_DOWN)),
    Template("payments-postgres-cdc", "source", _PG, 1, {"topic.prefix": "payments"}, (_DBZ_SLOT,)),
    Template("clickstream-file-source", "source", _FILE_SRC, 1,
             {"file": "/data/clickstream.log", "topic": "clickstream"}, (_FILE,)),
    Template("audit-file-sink", "sink", _FILE_SINK, 1, {"file": "/var/log/audit/audit.log", "topics": "audit"},
             (_FILE,)),
    Template("orders-s3-sink", "sink", _S3, 4, {"topics": "orders,order-lines", "s3.bucket.name": "lake-raw"},
             (_S3_DENIED, _AVRO)),
    Template("customers-jdbc-sink", "sink", _JDBC_SINK, 2, {"topics": "customers"}, (_PG_DUP, _JDBC_DOWN)),
    Template("search-es-sink", "sink", _ES, 3, {"topics": "products,reviews"}, (_ES_TIMEOUT, _AVRO)),
    Template("mirror-eu-source", "source", _MM2, 3,
             {"source.cluster.alias": "eu", "target.cluster.alias": "us", "topics": "orders.*"}, (_MM2_ACL,)),
    Template("mirror-eu-checkpoint", "source", _MM2_CP, 1,
             {"source.cluster.alias": "eu", "target.cluster.alias": "us"}, (_MM2_ACL,)),
    Template("mirror-eu-heartbeat", "source", _MM2_HB, 1,
             {"source.cluster.alias": "eu", "target.cluster.alias": "us"}, ()),
    Template("metrics-s3-sink", "sink", _S3, 2, {"topics": "metrics", "s3.bucket.name": "lake-metrics"},
             (_S3_DENIED,)),
    # Spares: created later in the story.
    Template("shipments-jdbc-source", "source", _JDBC_SRC, 2, {"topic.prefix": "pg-", "table.whitelist": "shipments"},
             (_JDBC_DOWN,)),
    Template("returns-jdbc-sink", "sink", _JDBC_SINK, 1, {"topics": "returns"}, (_PG_DUP,)),
    Template("archive-s3-sink", "sink", _S3, 3, {"topics": "archive", "s3.bucket.name": "lake-archive"},
             (_S3_DENIED,)),
)  # fmt: skip


def _trace(t: Template, rng: random.Random, connector: bool = False) -> str:
    cause = rng.choice(t.causes) if t.causes else None
    return connector_trace(cause) if connector else task_trace(t.type, cause)


class Scenario:
    """Tells a reproducible story on ``cluster``. Call ``step()`` every few seconds; it returns what happened."""

    def __init__(self, cluster: SimCluster, seed: int = 42, connectors: int = 12) -> None:
        self.cluster = cluster
        self.rng = random.Random(seed)  # noqa: S311 - a reproducible story, not security
        self.steps = 0
        self.templates = {t.name: t for t in CATALOG}
        self._baseline = [t.name for t in CATALOG[: max(1, min(connectors, len(CATALOG)))]]
        self._faults: dict[tuple[str, int | None], int] = {}  # (connector, task or None) -> step it heals at
        with cluster.lock:
            for name in self._baseline:
                self._create(self.templates[name])

    def _create(self, t: Template) -> None:
        self.cluster.add_connector(t.name, t.type, class_name=t.class_name, tasks_max=t.tasks_max, config=t.config)

    def step(self) -> list[str]:
        """One beat of the story (also one ``cluster.tick()``). Returns human-readable events."""
        with self.cluster.lock:
            self.steps += 1
            self.cluster.tick()
            events: list[str] = []
            self._heal_faults(events)
            self._operator_restarts(events)
            roll = self.rng.random
            if roll() < 0.35:
                self._fail_task(events)
            if roll() < 0.06:
                self._fail_connector(events)
            if roll() < 0.08:
                self._pause(events)
            if roll() < 0.25:
                self._resume(events)
            if roll() < 0.04 and self.cluster.supports("3.5.0"):
                self._stop(events)
            if roll() < 0.05:
                self._rebalance_task(events)
            if roll() < 0.04:
                self._delete(events)
            if roll() < 0.15:
                self._create_missing(events)
            return events

    # -- beats ---------------------------------------------------------------------------------------------------

    def _names(self) -> list[str]:
        return sorted(self.cluster.connector_names())

    def _template(self, name: str) -> Template:
        return self.templates[name]

    def _fail_task(self, events: list[str]) -> None:
        candidates = [
            (n, t.id)
            for n in self._names()
            for t in self.cluster.connector(n).tasks
            if t.state == RUNNING and n in self.templates
        ]
        if not candidates:
            return
        name, task = self.rng.choice(candidates)
        persistent = self.rng.random() < 0.4
        trace = _trace(self._template(name), self.rng)
        self.cluster.fail_task(name, task, trace=trace, persistent=persistent)
        why = trace.split("Caused by: ", 1)[-1].splitlines()[0]
        if persistent:
            lasts = self.rng.randint(3, 6)
            self._faults[(name, task)] = self.steps + lasts
            events.append(f"task {name}-{task} FAILED, fault persists for {lasts} steps ({why})")
        else:
            events.append(f"task {name}-{task} FAILED ({why})")

    def _fail_connector(self, events: list[str]) -> None:
        candidates = [n for n in self._names() if self.cluster.connector(n).state == RUNNING and n in self.templates]
        if candidates:
            name = self.rng.choice(candidates)
            self.cluster.fail_connector(name, trace=_trace(self._template(name), self.rng, connector=True))
            events.append(f"connector {name} FAILED")

    def _heal_faults(self, events: list[str]) -> None:
        for key, heals_at in sorted(self._faults.items(), key=lambda kv: (kv[0][0], kv[0][1] or -1)):
            if self.steps < heals_at:
                continue
            del self._faults[key]
            name, task = key
            if name in self.cluster.connector_names():
                try:
                    self.cluster.set_persistent_fault(name, task, None)
                except KeyError:
                    continue  # the task went away with a stop or a reconfiguration
                events.append(f"the cause of {name}-{task} failing is fixed; a restart will now succeed")

    def _operator_restarts(self, events: list[str]) -> None:
        """Someone notices now and then: a slow human, so an auto-healer visibly does better."""
        for name in self._names():
            c = self.cluster.connector(name)
            try:
                if c.state == FAILED and self.rng.random() < 0.15:
                    self.cluster.restart_connector(name)
                    events.append(f"operator restarted connector {name} -> {c.state}")
                for t in list(c.tasks):
                    if t.state == FAILED and self.rng.random() < 0.1:
                        self.cluster.restart_task(name, t.id)
                        events.append(f"operator restarted task {name}-{t.id} -> {t.state}")
            except ConnectRestError as e:  # e.g. a rebalance a test started
                events.append(f"operator could not restart {name}: {e.message}")

    def _pause(self, events: list[str]) -> None:
        candidates = [n for n in self._names() if self.cluster.connector(n).target is TargetState.STARTED]
        if candidates:
            name = self.rng.choice(candidates)
            self.cluster.pause(name)
            events.append(f"operator paused {name}")

    def _resume(self, events: list[str]) -> None:
        candidates = [n for n in self._names() if self.cluster.connector(n).state in (PAUSED, STOPPED)]
        if candidates:
            name = self.rng.choice(candidates)
            self.cluster.resume(name)
            events.append(f"operator resumed {name}")

    def _stop(self, events: list[str]) -> None:
        candidates = [n for n in self._names() if self.cluster.connector(n).target is TargetState.STARTED]
        if candidates:
            name = self.rng.choice(candidates)
            self.cluster.stop(name)
            events.append(f"operator stopped {name} (tasks removed)")

    def _rebalance_task(self, events: list[str]) -> None:
        candidates = [(n, t.id) for n in self._names() for t in self.cluster.connector(n).tasks if t.state == RUNNING]
        if candidates:
            name, task = self.rng.choice(candidates)
            self.cluster.set_state(name, UNASSIGNED, task=task)
            events.append(f"rebalance: task {name}-{task} UNASSIGNED until the next step")

    def _delete(self, events: list[str]) -> None:
        names = self._names()
        if len(names) > 6:
            name = self.rng.choice(names)
            self.cluster.delete(name)
            self._faults = {k: v for k, v in self._faults.items() if k[0] != name}
            events.append(f"operator deleted {name}")

    def _create_missing(self, events: list[str]) -> None:
        present = set(self.cluster.connector_names())
        missing = [t for t in CATALOG if t.name not in present]
        if missing and len(present) < len(self._baseline) + 2:
            t = self.rng.choice(missing)
            self._create(t)
            events.append(f"operator created {t.name} ({t.class_name.rsplit('.', 1)[-1]}, {t.tasks_max} tasks)")


async def drive(scenario: Scenario, interval: float, log: Callable[[str], None] | None = None) -> None:
    """Step ``scenario`` every ``interval`` seconds until cancelled."""
    while True:
        await asyncio.sleep(interval)
        for event in scenario.step():
            if log is not None:
                log(event)


def populate_static(
    cluster: SimCluster, connectors: int, tasks: int, *, seed: int = 0, failed_ratio: float = 0.01
) -> None:
    """A large, still cluster for benchmarks: ``connectors`` connectors of ``tasks`` tasks each, built from the
    catalog's classes; about ``failed_ratio`` of the tasks FAILED and 2% of the connectors PAUSED."""
    rng = random.Random(seed)  # noqa: S311 - reproducible fixtures, not security
    with cluster.lock:
        for i in range(connectors):
            t = CATALOG[i % len(CATALOG)]
            name = f"{t.name}-{i:05d}"
            state = PAUSED if rng.random() < 0.02 else RUNNING
            cluster.add_connector(name, t.type, class_name=t.class_name, tasks_max=tasks, config=t.config, state=state)
            for task in range(tasks):
                if rng.random() < failed_ratio:
                    cluster.fail_task(name, task, trace=_trace(t, rng))
