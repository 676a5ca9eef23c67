"""Metric families rendered from the store's current view: one collect function per metric group.

Everything is built fresh from immutable snapshots at render time, so a deleted connector disappears
with the next poll and no label set can appear twice. Traces never become labels.
"""

from __future__ import annotations

import platform
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

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
        "1 if the last poll read the connector statuses of the cluster, else 0." + polled,
        labels=[CLUSTER],
    )
    worker_up = GaugeMetricFamily(
        "kafka_connect_worker_up",
        "1 if the worker answered GET / in the last poll, else 0." + polled,
        labels=[CLUSTER, "worker"],
    )
    worker_info = GaugeMetricFamily(
        "kafka_connect_worker_info",
        "Version, commit and Kafka cluster id a worker reported (value is always 1)." + polled,
        labels=[CLUSTER, "worker", "version", "commit", "kafka_cluster_id"],
    )
    c_state = GaugeMetricFamily(
        "kafka_connect_connector_state",
        "Connector state: 1 for the current state, 0 for every other known state." + polled,
        labels=[CLUSTER, "connector", "state"],
    )
    c_info = GaugeMetricFamily(
        "kafka_connect_connector_info",
        "Connector class, type, owning worker and (Confluent Cloud) connector id (value is always 1)." + polled,
        labels=[CLUSTER, "connector", "connector_class", "connector_type", "worker_id", "connector_id"],
    )
    c_tasks = GaugeMetricFamily(
        "kafka_connect_connector_tasks",
        "Number of tasks the connector has now, in any state." + polled,
        labels=[CLUSTER, "connector"],
    )
    c_tasks_max = GaugeMetricFamily(
        "kafka_connect_connector_tasks_max",
        "The connector's configured tasks.max (absent when the config could not be read)." + polled,
        labels=[CLUSTER, "connector"],
    )
    c_by_state = GaugeMetricFamily(
        "kafka_connect_connector_tasks_by_state",
        "Number of the connector's tasks in each state." + polled,
        labels=[CLUSTER, "connector", "state"],
    )
    t_state = GaugeMetricFamily(
        "kafka_connect_task_state",
        "Task state: 1 for the current state, 0 for every other known state; worker_id is the task's worker." + polled,
        labels=[CLUSTER, "connector", "task", "worker_id", "state"],
    )
    plugin_info = GaugeMetricFamily(
        "kafka_connect_plugin_info",
        "Connector plugins installed on the cluster's workers (value is always 1). Polled on a slower cadence.",
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


CORE_GROUPS: tuple[CollectGroup, ...] = (collect_connect, collect_exporter)


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
