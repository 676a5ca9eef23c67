"""In-memory state of a simulated Confluent Cloud organisation: environments, Kafka clusters, managed
connectors, their per-minute throughput, and the faults tests inject. No I/O happens here.

The HTTP layer (``simulator.cloud.server``) turns this into what the Connect API v1 and the Metrics
API v2 answer, as written in the Confluent Cloud API reference (ccloud-api.md). Time comes from an injectable
clock, so data "arrives" ``latency`` seconds after the start of its minute (3 minutes, as documented),
whatever the wall clock says.

All public methods take ``self.lock`` (re-entrant): the server may run in another thread.
"""

from __future__ import annotations

import itertools
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from simulator.connector import MINUTE, SimConnector, SimTask
from simulator.faults import Fault, FaultKind

METRIC_PREFIX = "io.confluent.kafka.connect/"

# The five connector counters (ccloud-api.md A.7); descriptions as published where known.
DESCRIPTORS: tuple[dict[str, Any], ...] = (
    {
        "name": METRIC_PREFIX + "received_records",
        "description": "The delta count of total number of records received by the sink connector. Each sample is"
        " the number of records received since the previous data point. The count is sampled every 60 seconds.",
        "unit": "1",
    },
    {
        "name": METRIC_PREFIX + "sent_records",
        "description": "The delta count of total number of records sent from the transformations and written to"
        " Kafka for the source connector. Each sample is the number of records sent since the previous data"
        " point. The count is sampled every 60 seconds.",
        "unit": "1",
    },
    {
        "name": METRIC_PREFIX + "received_bytes",
        "description": "The delta count of total bytes received by the sink connector. Each sample is the number"
        " of bytes received since the previous data point. The count is sampled every 60 seconds.",
        "unit": "By",
    },
    {
        "name": METRIC_PREFIX + "sent_bytes",
        "description": "The delta count of total bytes sent from the transformations and written to Kafka for the"
        " source connector. Each sample is the number of bytes sent since the previous data point. The count"
        " is sampled every 60 seconds.",
        "unit": "By",
    },
    {
        "name": METRIC_PREFIX + "dead_letter_queue_records",
        "description": "The delta count of dead letter queue records written to Kafka for the sink connector."
        " The count is sampled every 60 seconds.",
        "unit": "1",
    },
)
METRICS: tuple[str, ...] = tuple(d["name"].removeprefix(METRIC_PREFIX) for d in DESCRIPTORS)


@dataclass
class _Queued:
    fault: Fault
    left: int  # answers still to spoil


@dataclass(frozen=True)
class LoggedRequest:
    api: str
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    body: Any
    status: int
    at: float  # simulated clock


class CloudState:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        api_key: str = "SIMKEY0123456789",
        api_secret: str = "sim-secret-do-not-log",  # noqa: S107 (the simulator's own fake credential)
        latency: float = 180.0,
        metrics_rate_limit: int = 300,
        connect_rate_limit: int = 600,
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.api_key = api_key
        self.api_secret = api_secret
        self.latency = latency  # a minute bucket is visible once now >= its start + latency
        # Minutes that grow after first publication: at first only (1 - late_share) of a minute is served,
        # the rest from ``late_after`` seconds after the minute became visible (the docs: recent minutes may
        # be incomplete). 0: every minute is complete when it appears.
        self.late_share = 0.0
        self.late_after = 300.0
        self.rate_limits = {"metrics": metrics_rate_limit, "connect": connect_rate_limit}
        self.environments: dict[str, set[str]] = {}
        self.connectors: dict[tuple[str, str, str], SimConnector] = {}  # (env, lkc, name)
        self.deleted: list[SimConnector] = []
        self.forbidden: set[str] = set()  # APIs answering 403 to our (valid) key
        self.faults: dict[str, deque[_Queued]] = {"metrics": deque(), "connect": deque()}
        self.outage: dict[str, Fault | None] = {"metrics": None, "connect": None}
        self.hidden_metrics: set[str] = set()  # short names absent from descriptors and unknown to /query
        self.max_groups_per_page: int | None = None  # forces pagination below the request's limit
        self.page_token_ttl: float = 300.0
        self.timestamp_millis = True  # "…:00.000Z" as in the spec; False gives "…:00Z"
        self.requests: list[LoggedRequest] = []
        # POST …/restart: RESTARTING for this long, then RUNNING, or failing again for a connector in ``sticky``.
        self.restart_delay: float = 30.0
        self.restart_status: int | None = None  # 404/405: an account without the (Preview) restart endpoint
        self.sticky: dict[tuple[str, str, str], tuple[str, str, list[tuple[str, str]]]] = {}
        self._restarting: dict[tuple[str, str, str], float] = {}
        # io.confluent.kafka.server/consumer_lag_offsets: (lkc, consumer group, topic, partition) -> the values
        # set, each from a minute on; and the Kafka clusters whose lag our key may not read (403).
        self.lag: dict[tuple[str, str, str, int], list[tuple[int, float]]] = {}
        self.lag_forbidden: set[str] = set()
        self._recent: dict[str, deque[float]] = {"metrics": deque(), "connect": deque()}
        self._ids = itertools.count(1)

    # -- topology ----------------------------------------------------------------------------------------

    def add_cluster(self, env: str, cluster: str) -> None:
        with self.lock:
            self.environments.setdefault(env, set()).add(cluster)

    def add_connector(
        self,
        env: str,
        cluster: str,
        name: str,
        *,
        type: str = "source",
        class_name: str = "DatagenSource",
        state: str = "RUNNING",
        tasks: list[str] | None = None,
        rates: Mapping[str, float] | None = None,
        connector_id: str | None = None,
        created_at: float | None = None,
        config: Mapping[str, str] | None = None,
    ) -> SimConnector:
        with self.lock:
            self.add_cluster(env, cluster)
            cid = connector_id or f"lcc-sim{next(self._ids):04d}{zlib.crc32(name.encode()) % 1000:03d}"
            task_states = ["RUNNING"] if tasks is None else tasks
            conf = {
                "cloud.environment": "prod",
                "cloud.provider": "aws",
                "connector.class": class_name,
                "kafka.api.key": "****************",
                "kafka.api.secret": "****************",
                "kafka.endpoint": "SASL_SSL://pkc-sim01.us-west-2.aws.confluent.cloud:9092",
                "kafka.region": "us-west-2",
                "name": name,
                "tasks.max": str(max(1, len(task_states))),
                "type": type,
                **(config or {}),
            }
            c = SimConnector(
                env=env,
                cluster=cluster,
                name=name,
                id=cid,
                type=type,
                state=state,
                tasks=[SimTask(i, s, "") for i, s in enumerate(task_states)],
                trace="",
                config=conf,
                created_at=self.clock() if created_at is None else created_at,
                rates=dict(rates or {}),
            )
            self.connectors[(env, cluster, name)] = c
            return c

    def connector(self, env: str, cluster: str, name: str) -> SimConnector:
        with self.lock:
            return self.connectors[(env, cluster, name)]

    def by_id(self, connector_id: str) -> SimConnector | None:
        with self.lock:
            for c in self.connectors.values():
                if c.id == connector_id:
                    return c
            return None

    def set_state(
        self,
        env: str,
        cluster: str,
        name: str,
        state: str,
        *,
        tasks: list[tuple[str, str]] | list[str] | None = None,
        trace: str = "",
    ) -> None:
        """Set the connector state and optionally every task's ``state`` or ``(state, msg)``."""
        with self.lock:
            c = self.connectors[(env, cluster, name)]
            c.state = state
            c.trace = trace
            if tasks is not None:
                c.tasks = [
                    SimTask(i, t, "") if isinstance(t, str) else SimTask(i, t[0], t[1]) for i, t in enumerate(tasks)
                ]

    def fail_after_restart(self, env: str, cluster: str, name: str, sticky: bool = True) -> None:
        """Every restart of the connector ends in its current failure again (a cause a restart cannot fix)."""
        with self.lock:
            key = (env, cluster, name)
            if not sticky:
                self.sticky.pop(key, None)
                return
            c = self.connectors[key]
            self.sticky[key] = (c.state, c.trace or "", [(t.state, t.trace or "") for t in c.tasks])

    def restart(self, env: str, cluster: str, name: str) -> None:
        """What ``POST …/restart`` does: the connector and every task go RESTARTING (asynchronous, 202)."""
        with self.lock:
            c = self.connectors[(env, cluster, name)]
            c.state, c.trace = "RESTARTING", ""
            for t in c.tasks:
                t.state, t.trace = "RESTARTING", ""
            self._restarting[(env, cluster, name)] = self.clock()

    def settle(self) -> None:
        """Finish the restarts that have run ``restart_delay``: RUNNING, or the sticky failure again."""
        with self.lock:
            now = self.clock()
            for key, at in list(self._restarting.items()):
                if now < at + self.restart_delay:
                    continue
                del self._restarting[key]
                if key not in self.connectors:
                    continue
                sticky = self.sticky.get(key)
                if sticky is None:
                    self.set_state(*key, "RUNNING", tasks=["RUNNING"] * len(self.connectors[key].tasks))
                else:
                    self.set_state(*key, sticky[0], tasks=list(sticky[2]), trace=sticky[1])

    def set_lag(
        self, cluster: str, group: str, topic: str, partition: int, value: float, *, since: float | None = None
    ) -> None:
        """The consumer group's lag on one partition from the current minute (or ``since``) on: a gauge per minute."""
        with self.lock:
            minute = int((self.clock() if since is None else since) // MINUTE) * MINUTE
            series = self.lag.setdefault((cluster, group, topic, partition), [])
            series[:] = [(m, v) for m, v in series if m < minute]
            series.append((minute, float(value)))

    def set_sink_lag(
        self, env: str, cluster: str, name: str, per_topic: Mapping[str, float], *, since: float | None = None
    ) -> None:
        """A managed sink's lag per topic (on partition 0), under its consumer group ``connect-<lcc id>``."""
        with self.lock:
            c = self.connectors[(env, cluster, name)]
            for topic, value in per_topic.items():
                self.set_lag(cluster, f"connect-{c.id}", topic, 0, value, since=since)

    def lag_series(self, clusters: list[str]) -> dict[tuple[str, str, str, int], list[tuple[int, float]]]:
        with self.lock:
            return {k: list(v) for k, v in self.lag.items() if k[0] in clusters}

    def delete_connector(self, env: str, cluster: str, name: str) -> SimConnector:
        """Gone from the Connect API at once; its metric data stops at the current minute."""
        with self.lock:
            c = self.connectors.pop((env, cluster, name))
            now = self.clock()
            c.deleted_at = float(int(now // MINUTE) * MINUTE + MINUTE)
            self.deleted.append(c)
            return c

    def all_connectors(self) -> list[SimConnector]:
        """Live and deleted ones: a deleted connector's earlier minutes stay queryable."""
        with self.lock:
            return [*self.connectors.values(), *self.deleted]

    def set_value(self, connector_id: str, metric: str, minute: int, value: float) -> None:
        with self.lock:
            c = self.by_id(connector_id)
            if c is None:
                raise KeyError(connector_id)
            c.values[(metric, int(minute))] = value

    # -- faults ------------------------------------------------------------------------------------------

    def fail_next(
        self,
        api: str,
        status: int,
        times: int = 1,
        *,
        headers: Mapping[str, str] | list[tuple[str, str]] | None = None,
        plain_text: bool = False,
        delay: float = 0.0,
    ) -> None:
        items = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
        fault = _fault(status, tuple(items), plain_text, delay, times)
        with self.lock:
            self.faults[api].append(_Queued(fault, times))

    def set_outage(self, api: str, status: int | None, *, plain_text: bool = False, delay: float = 0.0) -> None:
        """Every request to ``api`` fails with ``status`` until called again with None."""
        with self.lock:
            self.outage[api] = None if status is None else _fault(status, (), plain_text, delay, None)

    def forbid(self, api: str, forbidden: bool = True) -> None:
        with self.lock:
            if forbidden:
                self.forbidden.add(api)
            else:
                self.forbidden.discard(api)

    def take_fault(self, api: str) -> Fault | None:
        with self.lock:
            queue = self.faults[api]
            if queue:
                entry = queue[0]
                entry.left -= 1
                if entry.left <= 0:
                    queue.popleft()
                return entry.fault
            return self.outage[api]

    def rate_check(self, api: str) -> tuple[bool, int, int, int]:
        """Count a request against the per-minute limit: (allowed, limit, remaining, reset seconds)."""
        with self.lock:
            now = self.clock()
            recent = self._recent[api]
            while recent and recent[0] <= now - 60.0:
                recent.popleft()
            limit = self.rate_limits[api]
            if len(recent) >= limit:
                reset = max(1, int(recent[0] + 60.0 - now + 0.999)) if recent else 60
                return False, limit, 0, reset
            recent.append(now)
            reset = max(1, int(recent[0] + 60.0 - now + 0.999))
            return True, limit, limit - len(recent), reset

    def log(self, entry: LoggedRequest) -> None:
        with self.lock:
            self.requests.append(entry)

    def requests_to(self, api: str, path_suffix: str = "") -> list[LoggedRequest]:
        with self.lock:
            return [r for r in self.requests if r.api == api and r.path.endswith(path_suffix)]

    def served(self, c: SimConnector, metric: str, minute: int) -> float | None:
        """The minute's value as the API serves it now (None: not published yet, or no data)."""
        with self.lock:
            now = self.clock()
            if minute > now - self.latency:
                return None
            v = c.value(metric, minute)
            if v is None or not self.late_share or now >= minute + self.latency + self.late_after:
                return v
            return float(int(v * (1.0 - self.late_share)))

    # -- expected values (for tests: the sum of what the API will ever serve) ----------------------------

    def total(self, connector_id: str, metric: str, start: int, end: int) -> float:
        """Sum of the minute buckets in ``[start, end)`` as the API would serve them."""
        with self.lock:
            c = next((x for x in self.all_connectors() if x.id == connector_id), None)
            if c is None:
                return 0.0
            total = 0.0
            for minute in range(int(start), int(end), MINUTE):
                v = c.value(metric, minute)
                if v is not None:
                    total += v
            return total


def _fault(
    status: int, headers: tuple[tuple[str, str], ...], plain_text: bool, delay: float, times: int | None
) -> Fault:
    """A status answer; ``plain_text``: a gateway's HTML page instead of the API's JSON error shape."""
    kind = FaultKind.GATEWAY_PAGE if plain_text else FaultKind.STATUS
    return Fault(kind, status=status, headers=headers, delay=delay, times=times)
