"""The failure families built with prometheus_client from the same data: the oracle of the fast renderer."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric

from exporter.failures.health import connector_health
from exporter.failures.reading import FailuresReading
from exporter.families import CONNECTOR_HEALTH, FAILED_SINCE, FAILURE_INFO, STATE_TRANSITIONS
from exporter.offsets.reading import OffsetsReading
from exporter.render import metric_family
from exporter.store import View


def collect_failures(view: View) -> Iterator[Metric]:
    reading = view.reading(FailuresReading) or FailuresReading()
    offsets = view.reading(OffsetsReading) or OffsetsReading()
    info = metric_family(FAILURE_INFO)
    since = metric_family(FAILED_SINCE)
    transitions = metric_family(STATE_TRANSITIONS)
    health = metric_family(CONNECTOR_HEALTH)
    for name in sorted(view.clusters):
        snap = view.clusters[name]
        cluster = reading.clusters.get(name)
        counts = {(c.name, "FAILED"): 0 for c in snap.connectors}
        if cluster is not None:
            for f in cluster.failures:
                info.add_metric([name, f.connector, f.task_label, f.exception, f.root_cause], 1.0)
                since.add_metric([name, f.connector, f.task_label], f.since)
            counts.update(cluster.transitions)
        for (connector, to_state), n in sorted(counts.items()):
            transitions.add_metric([name, connector, to_state], float(n))
        if snap.up:
            impaired = snap.impaired_worker_ids()
            stalled = offsets.stalled(name)
            for c in snap.connectors:
                lost = sum(1 for t in c.tasks if t.worker_id in impaired)
                health.add_metric(
                    [name, c.name, connector_health(c, tasks_on_lost_workers=lost, stalled=c.name in stalled)], 1.0
                )
    yield from (info, since, transitions, health)
