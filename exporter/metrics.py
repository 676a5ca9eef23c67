"""Metric families rendered from the store's current view: one collect function per metric group.

Everything is built fresh from immutable snapshots at render time, so a deleted connector disappears
with the next poll and no label set can appear twice. Traces never become labels.
"""

from __future__ import annotations

import platform
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString as _float_to_go

from exporter import __version__
from exporter.model import (
    CLOUD_CONNECTOR_STATES,
    CLOUD_TASK_STATES,
    CONNECT_CONNECTOR_STATES,
    CONNECT_TASK_STATES,
    ERROR_REASONS,
    ClusterSnapshot,
    SourceKind,
)
from exporter.store import Store, View

CollectGroup = Callable[[View], Iterable[Metric]]

CLUSTER = "connect_cluster"

_HELP_UP = "1 if the last poll read the connector statuses of the cluster, else 0."
_HELP_WORKER_UP = "1 if the worker answered GET / in the last poll, else 0."
_HELP_WORKER_INFO = "Version, commit and Kafka cluster id a worker reported (value is always 1)."
_HELP_C_STATE = "Connector state: 1 for the current state, 0 for every other known state."
_HELP_C_INFO = "Connector class, type, owning worker and (Confluent Cloud) connector id (value is always 1)."
_HELP_C_TASKS = "Number of tasks the connector has now, in any state."
_HELP_C_TASKS_MAX = "The connector's configured tasks.max (absent when the config could not be read)."
_HELP_C_BY_STATE = "Number of the connector's tasks in each state."
_HELP_T_STATE = "Task state: 1 for the current state, 0 for every other known state; worker_id is the task's worker."
_HELP_PLUGIN_INFO = (
    "Connector plugins installed on the cluster's workers (value is always 1). Polled on a slower cadence."
)


def _polled(view: View) -> str:
    """HELP suffix saying the data is polled, and how often (HELP is per family, intervals per cluster)."""
    intervals = sorted({s.poll_interval for s in view.clusters.values()})
    if len(intervals) == 1:
        return f" Polled every {intervals[0]:g}s, not at scrape time."
    return " Polled on a schedule, not at scrape time (see kafka_connect_exporter_poll_interval_seconds)."


def _states(snapshot: ClusterSnapshot, *, tasks: bool) -> Sequence[str]:
    if snapshot.kind == SourceKind.CLOUD:
        return CLOUD_TASK_STATES if tasks else CLOUD_CONNECTOR_STATES
    return CONNECT_TASK_STATES if tasks else CONNECT_CONNECTOR_STATES


def _with_unknown(known: Sequence[str], actual: Iterable[str]) -> list[str]:
    """Known states plus any unknown one actually seen: a future state is exported, never dropped."""
    extra = sorted({s for s in actual if s not in known})
    return [*known, *extra]


def collect_connect(view: View) -> Iterator[Metric]:
    """Connect clusters, workers, connectors, tasks and plugins.

    Sample::

        kafka_connect_up{connect_cluster="prod"} 1.0
        kafka_connect_connector_state{connect_cluster="prod",connector="orders-sink",state="FAILED"} 1.0
        kafka_connect_task_state{connect_cluster="prod",connector="orders-sink",task="1",\
worker_id="10.0.0.13:8083",state="FAILED"} 1.0
    """
    polled = _polled(view)
    up = GaugeMetricFamily(
        "kafka_connect_up",
        _HELP_UP + polled,
        labels=[CLUSTER],
    )
    worker_up = GaugeMetricFamily(
        "kafka_connect_worker_up",
        _HELP_WORKER_UP + polled,
        labels=[CLUSTER, "worker"],
    )
    worker_info = GaugeMetricFamily(
        "kafka_connect_worker_info",
        _HELP_WORKER_INFO + polled,
        labels=[CLUSTER, "worker", "version", "commit", "kafka_cluster_id"],
    )
    c_state = GaugeMetricFamily(
        "kafka_connect_connector_state",
        _HELP_C_STATE + polled,
        labels=[CLUSTER, "connector", "state"],
    )
    c_info = GaugeMetricFamily(
        "kafka_connect_connector_info",
        _HELP_C_INFO + polled,
        labels=[CLUSTER, "connector", "connector_class", "connector_type", "worker_id", "connector_id"],
    )
    c_tasks = GaugeMetricFamily(
        "kafka_connect_connector_tasks",
        _HELP_C_TASKS + polled,
        labels=[CLUSTER, "connector"],
    )
    c_tasks_max = GaugeMetricFamily(
        "kafka_connect_connector_tasks_max",
        _HELP_C_TASKS_MAX + polled,
        labels=[CLUSTER, "connector"],
    )
    c_by_state = GaugeMetricFamily(
        "kafka_connect_connector_tasks_by_state",
        _HELP_C_BY_STATE + polled,
        labels=[CLUSTER, "connector", "state"],
    )
    t_state = GaugeMetricFamily(
        "kafka_connect_task_state",
        _HELP_T_STATE + polled,
        labels=[CLUSTER, "connector", "task", "worker_id", "state"],
    )
    plugin_info = GaugeMetricFamily(
        "kafka_connect_plugin_info",
        _HELP_PLUGIN_INFO,
        labels=[CLUSTER, "plugin_class", "plugin_type", "version"],
    )

    for name in sorted(view.clusters):
        snap = view.clusters[name]
        up.add_metric([name], 1.0 if snap.up else 0.0)
        for w in snap.workers:
            worker_up.add_metric([name, w.url], 1.0 if w.reachable else 0.0)
            if w.reachable:
                worker_info.add_metric([name, w.url, w.version or "", w.commit or "", w.kafka_cluster_id or ""], 1.0)
        c_states = _states(snap, tasks=False)
        t_states = _states(snap, tasks=True)
        for c in snap.connectors:
            for state in _with_unknown(c_states, [c.state]):
                c_state.add_metric([name, c.name, state], 1.0 if c.state == state else 0.0)
            c_info.add_metric(
                [name, c.name, c.class_name or "", c.type, c.worker_id, c.connector_id or ""],
                1.0,
            )
            c_tasks.add_metric([name, c.name], float(len(c.tasks)))
            if c.tasks_max is not None:
                c_tasks_max.add_metric([name, c.name], float(c.tasks_max))
            counts = Counter(t.state for t in c.tasks)
            for state in _with_unknown(t_states, counts):
                c_by_state.add_metric([name, c.name, state], float(counts.get(state, 0)))
            for t in c.tasks:
                task_id = str(t.id)
                for state in _with_unknown(t_states, [t.state]):
                    t_state.add_metric([name, c.name, task_id, t.worker_id, state], 1.0 if t.state == state else 0.0)
        for p in snap.plugins:
            plugin_info.add_metric([name, p.class_name, p.type, p.version or ""], 1.0)

    yield from (
        up,
        worker_up,
        worker_info,
        c_state,
        c_info,
        c_tasks,
        c_tasks_max,
        c_by_state,
        t_state,
        plugin_info,
    )


def collect_exporter(view: View) -> Iterator[Metric]:
    """The exporter's own health, per polled source.

    Sample::

        kafka_connect_exporter_poll_duration_seconds{connect_cluster="prod"} 0.042
        kafka_connect_exporter_poll_errors_total{connect_cluster="prod",reason="timeout"} 3.0
    """
    build = GaugeMetricFamily(
        "kafka_connect_exporter_build_info",
        "Version of kafka-connect-exporter and of the Python running it (value is always 1).",
        labels=["version", "python_version"],
    )
    build.add_metric([__version__, platform.python_version()], 1.0)
    duration = GaugeMetricFamily(
        "kafka_connect_exporter_poll_duration_seconds", "Wall time of the last poll cycle.", labels=[CLUSTER]
    )
    interval = GaugeMetricFamily(
        "kafka_connect_exporter_poll_interval_seconds",
        "Configured time between poll cycles.",
        labels=[CLUSTER],
    )
    last_poll = GaugeMetricFamily(
        "kafka_connect_exporter_last_poll_timestamp_seconds",
        "Unix time the last poll cycle ended, successful or not.",
        labels=[CLUSTER],
    )
    last_ok = GaugeMetricFamily(
        "kafka_connect_exporter_last_success_timestamp_seconds",
        "Unix time the last successful poll cycle ended (absent until one succeeds).",
        labels=[CLUSTER],
    )
    polls = CounterMetricFamily(
        "kafka_connect_exporter_polls",
        "Poll cycles since the exporter started, by result.",
        labels=[CLUSTER, "result"],
    )
    poll_errors = CounterMetricFamily(
        "kafka_connect_exporter_poll_errors",
        "Failed requests to the cluster since the exporter started, by reason.",
        labels=[CLUSTER, "reason"],
    )
    for name in sorted(view.clusters):
        snap = view.clusters[name]
        duration.add_metric([name], snap.duration)
        interval.add_metric([name], snap.poll_interval)
        last_poll.add_metric([name], snap.taken_at)
        if snap.last_success is not None:
            last_ok.add_metric([name], snap.last_success)
        polls.add_metric([name, "success"], float(snap.stats.polls_ok))
        polls.add_metric([name, "failure"], float(snap.stats.polls_failed))
        for reason in ERROR_REASONS:
            poll_errors.add_metric([name, reason], float(snap.stats.errors.get(reason, 0)))
    yield from (build, duration, interval, last_poll, last_ok, polls, poll_errors)


# -- fast rendering ------------------------------------------------------------------------------------------
#
# At thousands of connectors the connect group is ~190k samples; building prometheus_client Sample objects
# and formatting them one by one takes seconds. ``ConnectRenderer`` writes the same lines directly from the
# snapshots (same families, same order, labels sorted by name, same escaping and value formatting), so the
# exposition is byte-identical to prometheus_client's (tests/metrics/test_render.py compares both on hostile input).
# Each cluster's lines are kept until that cluster publishes a new snapshot, so a poll of one cluster
# re-renders only that cluster: the cost of a render grows with what changed, not with every cluster.


@dataclass(frozen=True, slots=True)
class Family:
    """A metric family whose sample lines are already in exposition syntax.

    For gauges and for counters without ``_created`` the sample lines are the same in the classic text format
    and in OpenMetrics; only the HELP/TYPE header differs, and the exposition module writes it.
    """

    name: str  # OpenMetrics family name (a counter's without ``_total``)
    type: str  # "gauge" | "counter"
    documentation: str
    samples: tuple[bytes, ...]  # UTF-8 sample lines, each ending in a newline, in chunks (one per cluster)


FastGroup = Callable[[View], list[Family]]

_ONE = "1.0"
_ZERO = "0.0"
# Untyped upstream; the value formatting prometheus_client uses ("1.0", "1.234567e+06", "+Inf").
_num: Callable[[float], str] = _float_to_go

_INTS = tuple(f"{i}.0" for i in range(4096))  # what _num gives for small whole numbers, precomputed


def _count(n: int) -> str:
    return _INTS[n] if 0 <= n < 4096 else _num(float(n))


# (name, HELP, whether HELP says how often it is polled), in the order collect_connect yields them.
_CONNECT_FAMILIES: tuple[tuple[str, str, bool], ...] = (
    ("kafka_connect_up", _HELP_UP, True),
    ("kafka_connect_worker_up", _HELP_WORKER_UP, True),
    ("kafka_connect_worker_info", _HELP_WORKER_INFO, True),
    ("kafka_connect_connector_state", _HELP_C_STATE, True),
    ("kafka_connect_connector_info", _HELP_C_INFO, True),
    ("kafka_connect_connector_tasks", _HELP_C_TASKS, True),
    ("kafka_connect_connector_tasks_max", _HELP_C_TASKS_MAX, True),
    ("kafka_connect_connector_tasks_by_state", _HELP_C_BY_STATE, True),
    ("kafka_connect_task_state", _HELP_T_STATE, True),
    ("kafka_connect_plugin_info", _HELP_PLUGIN_INFO, False),
)


def _esc(value: str) -> str:
    """Label value escaping of both formats (backslash, newline, double quote)."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def connect_cluster_samples(name: str, snap: ClusterSnapshot) -> tuple[bytes, ...]:
    """One cluster's sample lines of each family in ``_CONNECT_FAMILIES`` (same lines as ``collect_connect``)."""
    up: list[str] = []
    worker_up: list[str] = []
    worker_info: list[str] = []
    c_state: list[str] = []
    c_info: list[str] = []
    c_tasks: list[str] = []
    c_tasks_max: list[str] = []
    c_by_state: list[str] = []
    t_state: list[str] = []
    plugin_info: list[str] = []
    esc_cache: dict[str, str] = {}  # worker ids, classes and states repeat thousands of times

    def esc(value: str) -> str:
        found = esc_cache.get(value)
        if found is None:
            found = esc_cache[value] = _esc(value)
        return found

    cl = f'connect_cluster="{_esc(name)}"'
    up.append(f"kafka_connect_up{{{cl}}} {_ONE if snap.up else _ZERO}\n")
    for w in snap.workers:
        wl = f'worker="{_esc(w.url)}"'
        worker_up.append(f"kafka_connect_worker_up{{{cl},{wl}}} {_ONE if w.reachable else _ZERO}\n")
        if w.reachable:
            worker_info.append(
                f'kafka_connect_worker_info{{commit="{_esc(w.commit or "")}",{cl},'
                f'kafka_cluster_id="{_esc(w.kafka_cluster_id or "")}",version="{_esc(w.version or "")}",'
                f"{wl}}} {_ONE}\n"
            )
    c_states = _states(snap, tasks=False)
    t_states = tuple(_states(snap, tasks=True))
    t_known = frozenset(t_states)
    # A connector's state lines, by-state counts and each task's state lines differ only in the labels they
    # share (cluster and connector, then task and worker): each block is one ``shared.join(parts)``, with the
    # parts cached by what they depend on (the current state, or the counts).
    c_state_parts: dict[str, list[str]] = {}
    by_state_parts: dict[tuple[tuple[str, ...], tuple[int, ...]], list[str]] = {}
    for c in snap.connectors:
        p = f'{cl},connector="{esc(c.name)}"'
        cur = c.state
        parts = c_state_parts.get(cur)
        if parts is None:
            states = _with_unknown(c_states, [cur])
            parts = c_state_parts[cur] = _parts(
                "kafka_connect_connector_state{",
                [f',state="{_esc(s)}"}} {_ONE if s == cur else _ZERO}\n' for s in states],
            )
        c_state.append(p.join(parts))
        c_info.append(
            f'kafka_connect_connector_info{{{p},connector_class="{esc(c.class_name or "")}",'
            f'connector_id="{esc(c.connector_id or "")}",connector_type="{esc(c.type)}",'
            f'worker_id="{esc(c.worker_id)}"}} {_ONE}\n'
        )
        tasks = c.tasks
        c_tasks.append(f"kafka_connect_connector_tasks{{{p}}} {_count(len(tasks))}\n")
        if c.tasks_max is not None:
            c_tasks_max.append(f"kafka_connect_connector_tasks_max{{{p}}} {_count(c.tasks_max)}\n")
        seen = [t.state for t in tasks]
        if t_known.issuperset(seen):
            key = (t_states, tuple(seen.count(s) for s in t_states))
        else:
            counts = Counter(seen)
            unknown = tuple(_with_unknown(t_states, counts))
            key = (unknown, tuple(counts.get(s, 0) for s in unknown))
        parts = by_state_parts.get(key)
        if parts is None:
            parts = by_state_parts[key] = _parts(
                "kafka_connect_connector_tasks_by_state{",
                [f',state="{_esc(s)}"}} {_count(n)}\n' for s, n in zip(*key, strict=True)],
            )
        c_by_state.append(p.join(parts))
        task_parts: dict[str, list[str]] = {}  # by the task's state, for this connector
        head = f'kafka_connect_task_state{{{p},state="'
        for t in tasks:
            cur = t.state
            parts = task_parts.get(cur)
            if parts is None:
                states = list(t_states) if cur in t_known else _with_unknown(t_states, [cur])
                parts = task_parts[cur] = _around(
                    [f"{head}{_esc(s)}" for s in states], [_ONE if s == cur else _ZERO for s in states]
                )
            wid = esc_cache.get(t.worker_id)
            if wid is None:
                wid = esc(t.worker_id)
            t_state.append(f'",task="{t.id}",worker_id="{wid}"}} '.join(parts))
    for pl in snap.plugins:
        plugin_info.append(
            f'kafka_connect_plugin_info{{{cl},plugin_class="{esc(pl.class_name)}",'
            f'plugin_type="{esc(pl.type)}",version="{esc(pl.version or "")}"}} {_ONE}\n'
        )
    families = (up, worker_up, worker_info, c_state, c_info, c_tasks, c_tasks_max, c_by_state, t_state, plugin_info)
    return tuple("".join(lines).encode() for lines in families)


def _parts(head: str, tails: list[str]) -> list[str]:
    """Pieces that ``shared.join(pieces)`` turns into one line ``head + shared + tail`` per tail."""
    return [head, *(t + head for t in tails[:-1]), tails[-1]]


def _around(starts: list[str], values: list[str]) -> list[str]:
    """Pieces that ``shared.join(pieces)`` turns into one line ``start + shared + " " + value`` per start."""
    return [starts[0], *(f"{v}\n{s}" for v, s in zip(values[:-1], starts[1:], strict=True)), f"{values[-1]}\n"]


class ConnectRenderer:
    """``collect_connect`` as pre-rendered families, keeping each cluster's lines until its snapshot changes.

    Not thread-safe: one exposition renders one view at a time.
    """

    def __init__(self) -> None:
        self._clusters: dict[str, tuple[ClusterSnapshot, tuple[bytes, ...]]] = {}

    def __call__(self, view: View) -> list[Family]:
        polled = _polled(view)
        kept: dict[str, tuple[ClusterSnapshot, tuple[bytes, ...]]] = {}
        for name in sorted(view.clusters):
            snap = view.clusters[name]
            hit = self._clusters.get(name)
            kept[name] = hit if hit is not None and hit[0] is snap else (snap, connect_cluster_samples(name, snap))
        self._clusters = kept  # deleted clusters are dropped with their lines
        per_cluster = [samples for _, samples in kept.values()]
        return [
            Family(name, "gauge", doc + polled if says_polled else doc, tuple(s[i] for s in per_cluster if s[i]))
            for i, (name, doc, says_polled) in enumerate(_CONNECT_FAMILIES)
        ]


CORE_GROUPS: tuple[CollectGroup, ...] = (collect_connect, collect_exporter)
# Groups with a pre-rendered equivalent (a factory, as renderers keep state); any other group is rendered
# through prometheus_client.
FAST_GROUPS: dict[CollectGroup, Callable[[], FastGroup]] = {collect_connect: ConnectRenderer}


class SnapshotCollector(Collector):
    """A prometheus_client collector over the store; extra groups come from optional features."""

    def __init__(self, store: Store, groups: Iterable[CollectGroup] = CORE_GROUPS) -> None:
        self.store = store
        self.groups = list(groups)

    def add_group(self, group: CollectGroup) -> None:
        self.groups.append(group)

    def describe(self) -> Iterable[Metric]:
        # Registering must not trigger a render; names are fixed by the groups above.
        return []

    def collect(self) -> Iterable[Metric]:
        view = self.store.view
        for group in self.groups:
            yield from group(view)
