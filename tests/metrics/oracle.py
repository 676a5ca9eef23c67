"""The reference rendering the fast renderer is checked against: prometheus_client over the store.

``collect_connect`` builds the connect group as prometheus_client families from the same catalogue
(``exporter.families``) and the same snapshots as ``exporter.connect.metrics.ConnectRenderer``; prometheus_client
formats them. Production serves only the fast renderer; tests compare the two byte for byte
(tests/metrics/test_render.py) and read the oracle's exposition where they want prometheus_client's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as om_generate_latest
from prometheus_client.registry import Collector

from exporter.connect.metrics import known_states, polled_help, with_unknown
from exporter.families import (
    CONNECT_FAMILIES,
    CONNECTOR_INFO,
    CONNECTOR_STATE,
    CONNECTOR_TASKS,
    CONNECTOR_TASKS_BY_STATE,
    CONNECTOR_TASKS_MAX,
    CONNECTOR_TASKS_ON_LOST_WORKERS,
    PLUGIN_INFO,
    POLLED,
    TASK_STATE,
    UP,
    WORKER_CONNECTORS,
    WORKER_HEALTH,
    WORKER_INFO,
    WORKER_REACHABLE,
    WORKER_TASKS,
    WORKER_UP,
)
from exporter.model import WORKER_HEALTH_STATES, WorkerState
from exporter.own_metrics import collect_exporter
from exporter.render import CollectFunc, metric_family
from exporter.store import Store, View


def collect_connect(view: View) -> Iterator[Metric]:
    """Connect clusters, workers, connectors, tasks and plugins, as prometheus_client families."""
    polled = polled_help(view)
    fam = {f: metric_family(f, f.help + polled if f in POLLED else None) for f in CONNECT_FAMILIES}
    for name in sorted(view.clusters):
        snap = view.clusters[name]
        fam[UP].add_metric([name], 1.0 if snap.up else 0.0)
        for w in snap.workers:
            fam[WORKER_UP].add_metric([name, w.url], 1.0 if w.reachable else 0.0)
            if w.reachable:
                fam[WORKER_INFO].add_metric(
                    [name, w.url, w.version or "", w.commit or "", w.kafka_cluster_id or ""], 1.0
                )
        c_states = known_states(snap, tasks=False)
        t_states = known_states(snap, tasks=True)
        for c in snap.connectors:
            for state in with_unknown(c_states, [c.state]):
                fam[CONNECTOR_STATE].add_metric([name, c.name, state], 1.0 if c.state == state else 0.0)
            fam[CONNECTOR_INFO].add_metric(
                [
                    name,
                    c.name,
                    c.class_name or "",
                    c.type,
                    c.worker_id,
                    c.connector_id or "",
                    c.version or "",
                    ",".join(c.task_versions),
                ],
                1.0,
            )
            fam[CONNECTOR_TASKS].add_metric([name, c.name], float(len(c.tasks)))
            if c.tasks_max is not None:
                fam[CONNECTOR_TASKS_MAX].add_metric([name, c.name], float(c.tasks_max))
            counts = Counter(t.state for t in c.tasks)
            for state in with_unknown(t_states, counts):
                fam[CONNECTOR_TASKS_BY_STATE].add_metric([name, c.name, state], float(counts.get(state, 0)))
            for t in c.tasks:
                for state in with_unknown(t_states, [t.state]):
                    fam[TASK_STATE].add_metric(
                        [name, c.name, str(t.id), t.worker_id, state], 1.0 if t.state == state else 0.0
                    )
        for p in snap.plugins:
            fam[PLUGIN_INFO].add_metric([name, p.class_name, p.type, p.version or ""], 1.0)
        for nw in snap.named_workers:
            if nw.state is not WorkerState.UNKNOWN:
                fam[WORKER_REACHABLE].add_metric(
                    [name, nw.worker_id], 1.0 if nw.state is WorkerState.REACHABLE else 0.0
                )
            fam[WORKER_TASKS].add_metric([name, nw.worker_id], float(nw.tasks))
            fam[WORKER_CONNECTORS].add_metric([name, nw.worker_id], float(nw.connectors))
            if nw.health is not None:
                for status in WORKER_HEALTH_STATES:
                    fam[WORKER_HEALTH].add_metric([name, nw.worker_id, status], 1.0 if nw.health == status else 0.0)
        if snap.named_workers:
            impaired = snap.impaired_worker_ids()
            for c in snap.connectors:
                lost = sum(1 for t in c.tasks if t.worker_id in impaired)
                fam[CONNECTOR_TASKS_ON_LOST_WORKERS].add_metric([name, c.name], float(lost))
    yield from fam.values()


REFERENCE_GROUPS: tuple[CollectFunc, ...] = (collect_connect, collect_exporter)


class SnapshotCollector(Collector):
    """A prometheus_client collector over the store: the core groups, plus any a test adds."""

    def __init__(self, store: Store, groups: Iterable[CollectFunc] = REFERENCE_GROUPS) -> None:
        self.store = store
        self.groups = list(groups)

    def add_group(self, group: CollectFunc) -> None:
        self.groups.append(group)

    def describe(self) -> Iterable[Metric]:
        # Registering must not trigger a render.
        return []

    def collect(self) -> Iterable[Metric]:
        view = self.store.view
        for group in self.groups:
            yield from group(view)


class _ViewCollector(Collector):
    def __init__(self, view: View) -> None:
        self.view = view

    def collect(self) -> Iterable[Metric]:
        for group in REFERENCE_GROUPS:
            yield from group(self.view)


def reference_exposition(view: View) -> tuple[bytes, bytes]:
    """(text format, OpenMetrics without the trailing ``# EOF``) of the core groups, as prometheus_client writes."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ViewCollector(view))
    return generate_latest(registry), om_generate_latest(registry).removesuffix(b"# EOF\n")
