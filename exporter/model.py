"""The snapshot model: plain, immutable data describing one cluster at the end of one poll cycle.

Sources (``exporter.connect``, ``exporter.cloud``) build snapshots; readers (metrics rendering, the healer,
the status page, readiness) only ever see these objects. Nothing here performs I/O.

States are kept as the strings the API sent: an unknown future state passes through untouched. The known ones
are listed here, once: the metric catalogue (``exporter.families``) declares its state-like families with them,
and the sources and steps that tell states apart read them from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType

FAILED = "FAILED"
RUNNING = "RUNNING"

# Kafka Connect states (AbstractStatus.State). RESTARTING since 3.0, STOPPED (connectors only) since 3.5.
CONNECT_CONNECTOR_STATES: tuple[str, ...] = ("UNASSIGNED", RUNNING, "PAUSED", FAILED, "RESTARTING", "STOPPED")
CONNECT_TASK_STATES: tuple[str, ...] = ("UNASSIGNED", RUNNING, "PAUSED", FAILED, "RESTARTING")
# Confluent Cloud managed connector states (Connect API v1, the Confluent Cloud API reference).
CLOUD_CONNECTOR_STATES: tuple[str, ...] = ("NONE", "PROVISIONING", RUNNING, "DEGRADED", FAILED, "PAUSED", "DELETED")
CLOUD_TASK_STATES: tuple[str, ...] = (RUNNING, FAILED, "PAUSED", "SYSTEM_ERROR", "USER_ACTIONABLE_ERROR")
# Task states of Confluent Cloud managed connectors that mean "failed".
CLOUD_ERROR_STATES: frozenset[str] = frozenset({"SYSTEM_ERROR", "USER_ACTIONABLE_ERROR"})
# GET /health of a worker (Kafka >= 3.9, KIP-1017, the Connect REST reference).
WORKER_HEALTH_STATES: tuple[str, ...] = ("healthy", "starting", "unhealthy")
# One answer per connector (exporter.failures.health derives it; the rules are in docs/metrics.md).
CONNECTOR_HEALTHS: tuple[str, ...] = ("healthy", "degraded", "failed", "paused", "stopped", "unknown")
# clusters[].autoheal.mode
AUTOHEAL_MODES: tuple[str, ...] = ("off", "dry-run", "enforce")


class SourceKind(StrEnum):
    CONNECT = "connect"  # a self-managed Kafka Connect cluster, polled over its worker REST API
    CLOUD = "ccloud"  # Confluent Cloud managed connectors of one Kafka cluster


class ErrorReason(StrEnum):
    """Why a request failed: the ``reason`` label of the error counters (docs/metrics.md).

    Every failed request meets one of the first four. The Cloud API error counter tells ``http_status`` apart
    by status (``for_status``); the poll error counter keeps it whole (``coarse``).
    """

    TIMEOUT = "timeout"  # connect, read or overall-cycle deadline exceeded
    CONNECT = "connect"  # connection refused, DNS, TLS handshake, reset
    HTTP_STATUS = "http_status"  # the target answered with a non-success status
    BAD_RESPONSE = "bad_response"  # the body was not what the API documents (not JSON, wrong shape, too big)
    UNAUTHORIZED = "unauthorized"  # 401: wrong or revoked key, or a cluster-scoped key
    FORBIDDEN = "forbidden"  # 403: key lacks the role (MetricsViewer, ConnectManager/…)
    RATE_LIMITED = "rate_limited"  # 429
    SERVER_ERROR = "server_error"  # 5xx
    CLIENT_ERROR = "client_error"  # any other 4xx: wrong environment or cluster id, rejected query

    @classmethod
    def for_status(cls, status: int) -> ErrorReason:
        """The status-specific reason of a non-success answer."""
        if status == 401:
            return cls.UNAUTHORIZED
        if status == 403:
            return cls.FORBIDDEN
        if status == 429:
            return cls.RATE_LIMITED
        if status >= 500:
            return cls.SERVER_ERROR
        return cls.CLIENT_ERROR

    @property
    def coarse(self) -> ErrorReason:
        """``http_status`` for any status-specific reason, the reason itself otherwise."""
        return self if self in _COARSE else ErrorReason.HTTP_STATUS


_COARSE = frozenset({ErrorReason.TIMEOUT, ErrorReason.CONNECT, ErrorReason.HTTP_STATUS, ErrorReason.BAD_RESPONSE})
# The ``reason`` values of the poll error counter, in the documented order.
ERROR_REASONS: tuple[str, ...] = tuple(r.value for r in ErrorReason if r.coarse is r)


@dataclass(frozen=True, slots=True)
class PollError:
    """One failed request, as a reader may show it. ``message`` never contains a secret."""

    reason: ErrorReason
    url: str
    message: str
    status: int | None = None


@dataclass(frozen=True, slots=True)
class Worker:
    """One configured worker URL and what ``GET /`` said of it this cycle."""

    url: str
    reachable: bool
    version: str | None = None
    commit: str | None = None
    kafka_cluster_id: str | None = None
    error: PollError | None = None


class WorkerState(StrEnum):
    """What probing a worker that the statuses name says of it (docs/metrics.md, "Workers named by the statuses")."""

    REACHABLE = "reachable"  # answered GET / this cycle (with the cluster's Kafka cluster id)
    LOST = "lost"  # answered before, not this cycle
    UNKNOWN = "unknown"  # never answered from here (maybe no route to worker addresses): never alerted on


# The GET /health status (Kafka >= 3.9) whose worker's work does not run; all of them: families.py.
UNHEALTHY = "unhealthy"


@dataclass(frozen=True, slots=True)
class NamedWorker:
    """A worker that a connector or task status names (``worker_id``, its advertised ``host:port``), the work
    the statuses assign to it, and what probing it said this cycle."""

    worker_id: str
    state: WorkerState
    tasks: int = 0
    connectors: int = 0
    version: str | None = None
    health: str | None = None  # one of WORKER_HEALTH_STATES; None before 3.9 or when not reachable
    error: PollError | None = None

    @property
    def impaired(self) -> bool:
        """Its work does not run: lost, or alive with a stuck herder (``unhealthy``)."""
        return self.state is WorkerState.LOST or self.health == UNHEALTHY


@dataclass(frozen=True, slots=True)
class SinkSubscription:
    """What a sink connector consumes, from its config: ``topics`` or ``topics.regex`` (Connect allows exactly
    one), and its consumer group: ``connect-<name>``, or ``consumer.override.group.id``."""

    group_id: str
    topics: tuple[str, ...] = ()
    topics_regex: str | None = None
    # consumer.override.auto.offset.reset: where a partition without a committed offset starts ("earliest" is
    # Connect's default for sinks; a worker-level consumer.auto.offset.reset is not visible through the REST API).
    offset_reset: str = "earliest"


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    state: str
    worker_id: str
    trace: str | None = None
    version: str | None = None  # the running plugin's version (KIP-891, Kafka 4.1+); None before or while RESTARTING


@dataclass(frozen=True, slots=True)
class Connector:
    name: str
    type: str  # "source" | "sink" | "unknown" (or whatever a future API says)
    class_name: str | None
    state: str
    worker_id: str
    tasks: tuple[Task, ...]
    tasks_max: int | None = None  # from config "tasks.max"; None when info was missing or unparsable
    trace: str | None = None
    connector_id: str | None = None  # Confluent Cloud "lcc-..." id; joins status to the Metrics API
    version: str | None = None  # the running plugin's version (KIP-891, Kafka 4.1+); None before or while RESTARTING
    # Seconds between the heartbeats the connector writes (Debezium's ``heartbeat.interval.ms`` > 0), else None.
    heartbeat_interval: float | None = None

    @property
    def task_versions(self) -> tuple[str, ...]:
        """The distinct plugin versions its tasks report, sorted (two during a rolling plugin upgrade)."""
        return tuple(sorted({t.version for t in self.tasks if t.version}))

    sink: SinkSubscription | None = None  # sinks whose config was read: their topics and consumer group


@dataclass(frozen=True, slots=True)
class Plugin:
    class_name: str
    type: str
    version: str | None = None


@dataclass(frozen=True, slots=True)
class PollStats:
    """Cumulative counters of one source since the exporter started, frozen at the end of a cycle."""

    polls_ok: int = 0
    polls_failed: int = 0
    errors: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))  # by ErrorReason value


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    """Everything known about one cluster at the end of one poll cycle.

    ``up`` is true when the connector list and statuses were read this cycle. When it is false, the content
    (``connectors``, ``named_workers``, ``plugins``) is the last successful cycle's, held while it is at most
    the cluster's ``stale_after`` old (``seen_at`` says when it was read; ``stale`` is true), and empty after
    that (``seen_at`` None). Readers export and show held content as the last known state, marked so;
    nothing acts on it (the healer and the offsets reader need ``up``). ``errors`` and ``workers`` are always
    this cycle's.
    """

    cluster: str
    kind: SourceKind
    taken_at: float  # wall clock (epoch seconds) at the end of the cycle
    duration: float  # seconds the cycle took
    up: bool
    poll_interval: float
    workers: tuple[Worker, ...] = ()
    connectors: tuple[Connector, ...] = ()
    plugins: tuple[Plugin, ...] = ()
    errors: tuple[PollError, ...] = ()  # failures seen in this cycle (even if a failover made it succeed)
    stats: PollStats = field(default_factory=PollStats)
    last_success: float | None = None  # epoch seconds of the newest successful cycle, this one included
    status_url: str | None = None  # the worker URL that answered the status request
    named_workers: tuple[NamedWorker, ...] = ()  # workers the statuses name, probed (empty when probes are off)
    seen_at: float | None = None  # when the content was read: ``taken_at`` when up; None when none is held
    down_since: float | None = None  # end of the first failed cycle of the current outage; None when up

    @property
    def stale(self) -> bool:
        """The content is the last known state of a cluster whose newest cycle failed."""
        return not self.up and self.seen_at is not None

    def content_age(self, now: float) -> float | None:
        """Seconds since the content was read, or None when there is none."""
        return None if self.seen_at is None else max(0.0, now - self.seen_at)

    def impaired_worker_ids(self) -> frozenset[str]:
        """Worker ids whose work does not run although Connect may still report it RUNNING."""
        return frozenset(w.worker_id for w in self.named_workers if w.impaired)

    def connector(self, name: str) -> Connector | None:
        for c in self.connectors:
            if c.name == name:
                return c
        return None


def hold_last_known(snapshot: ClusterSnapshot, previous: ClusterSnapshot | None, stale_after: float) -> ClusterSnapshot:
    """``snapshot`` as it is published, given the cluster's previous snapshot: one that succeeded dates its
    content; one that failed keeps ``previous``'s content while that is at most ``stale_after`` seconds old at
    ``snapshot.taken_at`` (``0`` drops it at once), and carries the outage's start.

    Pure: both sources (Connect and Confluent Cloud) build each cycle's snapshot through it, so every reader
    sees the same last known state without keeping any of its own.
    """
    if snapshot.up:
        return replace(snapshot, seen_at=snapshot.taken_at, down_since=None)
    if previous is not None and previous.kind is not snapshot.kind:
        previous = None  # a reload turned the name into another kind of source: nothing to hold
    down_since = snapshot.taken_at
    if previous is not None and not previous.up and previous.down_since is not None:
        down_since = previous.down_since
    seen_at = previous.seen_at if previous is not None else None
    if previous is None or seen_at is None or stale_after <= 0 or snapshot.taken_at - seen_at > stale_after:
        return replace(snapshot, connectors=(), named_workers=(), plugins=(), seen_at=None, down_since=down_since)
    return replace(
        snapshot,
        connectors=previous.connectors,
        named_workers=previous.named_workers,
        plugins=previous.plugins,
        seen_at=seen_at,
        down_since=down_since,
    )


def tasks_on(connector: Connector, worker_ids: frozenset[str]) -> int:
    """How many of the connector's tasks the statuses place on one of ``worker_ids`` (e.g. impaired workers)."""
    return sum(1 for t in connector.tasks if t.worker_id in worker_ids) if worker_ids else 0


def first_line(trace: str | None, limit: int = 300) -> str:
    """The first line of a Java stack trace, for logs and pages (never for labels)."""
    if not trace:
        return ""
    line = trace.strip().splitlines()[0] if trace.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
