"""Failure families, rendered from the ``FailuresReading`` and the current snapshots at scrape time.

Sample::

    kafka_connect_failure_info{connect_cluster="prod",connector="orders-sink",exception="org.apache.kafka.connect\
.errors.ConnectException",root_cause="java.sql.SQLException",task="1"} 1.0
    kafka_connect_failed_since_timestamp_seconds{connect_cluster="prod",connector="orders-sink",task="1"} 1.7e+09
    kafka_connect_state_transitions_total{connect_cluster="prod",connector="orders-sink",to_state="FAILED"} 3.0
    kafka_connect_connector_health{connect_cluster="prod",connector="orders-sink",health="degraded"} 1.0

A fast group (one health and one transition line per connector add up at thousands of connectors): it writes
the lines directly and keeps each cluster's until its snapshot or its failure reading changes.
tests/failures/test_metrics.py checks the bytes against a prometheus_client rendering of the same data.
"""

from __future__ import annotations

from exporter.cloud.reading import CloudReading
from exporter.failures.health import connector_health
from exporter.failures.reading import ClusterFailures, FailuresReading
from exporter.families import CONNECTOR_HEALTH, FAILED_SINCE, FAILURE_INFO, STATE_TRANSITIONS
from exporter.model import FAILED, ClusterSnapshot, tasks_on
from exporter.offsets.reading import OffsetsReading
from exporter.render import FamilySamples, FastGroup, budget_of, escape_label_value, format_count, format_value
from exporter.sourcetopics.reading import SourceTopicsReading
from exporter.store import View

FAMILIES = (FAILURE_INFO, FAILED_SINCE, STATE_TRANSITIONS, CONNECTOR_HEALTH)


def cluster_samples(
    name: str,
    snap: ClusterSnapshot,
    cluster: ClusterFailures | None,
    stalled: frozenset[str] = frozenset(),
    current: bool = False,
) -> tuple[bytes, ...]:
    """One cluster's lines of each family in ``FAMILIES``, in that order (label names sorted). ``current``
    (``metrics.state_series: current``): the transition counters only once they count something."""
    esc = escape_label_value
    cl = f'connect_cluster="{esc(name)}"'
    info: list[str] = []
    since: list[str] = []
    transitions: list[str] = []
    health: list[str] = []
    # Every connector's count of failures starts at 0, so that increase() sees the first one too (``all`` mode).
    counts = {(c.name, FAILED): 0 for c in snap.connectors}
    if cluster is not None:
        for f in cluster.failures:
            key = f'{cl},connector="{esc(f.connector)}"'
            info.append(
                f'{FAILURE_INFO.name}{{{key},exception="{esc(f.exception)}",root_cause="{esc(f.root_cause)}",'
                f'task="{f.task_label}"}} 1.0\n'
            )
            since.append(f'{FAILED_SINCE.name}{{{key},task="{f.task_label}"}} {format_value(f.since)}\n')
        counts.update(cluster.transitions)
    for (connector, to_state), n in sorted(counts.items()):
        if current and n == 0:
            continue
        transitions.append(
            f'{STATE_TRANSITIONS.sample_name}{{{cl},connector="{esc(connector)}",to_state="{esc(to_state)}"}} '
            f"{format_count(n)}\n"
        )
    # A failed cycle's snapshot holds the last known state for a while (then none): its health stays with it.
    impaired = snap.impaired_worker_ids()
    for c in snap.connectors:
        h = connector_health(c, tasks_on_lost_workers=tasks_on(c, impaired), stalled=c.name in stalled)
        health.append(f'{CONNECTOR_HEALTH.name}{{{cl},connector="{esc(c.name)}",health="{h}"}} 1.0\n')
    return tuple("".join(lines).encode() for lines in (info, since, transitions, health))


# What one cluster's lines are made of: its snapshot, its failures, its stalled sinks and silent sources, the
# budget's mode.
_Key = tuple[ClusterSnapshot, ClusterFailures | None, frozenset[str], bool]


class FailuresRenderer(FastGroup):
    """Not thread-safe: one exposition renders one view at a time."""

    def __init__(self) -> None:
        self._clusters: dict[str, tuple[_Key, tuple[bytes, ...]]] = {}

    def render(self, view: View) -> list[FamilySamples]:
        reading = view.reading(FailuresReading) or FailuresReading()
        offsets = view.reading(OffsetsReading) or OffsetsReading()
        cloud = view.reading(CloudReading)
        sources = view.reading(SourceTopicsReading) or SourceTopicsReading()
        current = budget_of(view).current
        kept: dict[str, tuple[_Key, tuple[bytes, ...]]] = {}
        for name in sorted(view.clusters):
            stalled = offsets.stalled(name) | (cloud.stalled_sinks(name) if cloud is not None else frozenset())
            stalled |= sources.silent(name)  # stalled sinks and silent sources are both "degraded"
            key = (view.clusters[name], reading.clusters.get(name), stalled, current)
            hit = self._clusters.get(name)
            if (
                hit is not None
                and hit[0][0] is key[0]
                and hit[0][1] is key[1]
                and hit[0][2] == key[2]
                and hit[0][3] == key[3]
            ):
                kept[name] = hit
            else:
                kept[name] = (key, cluster_samples(name, *key))
        self._clusters = kept
        per_cluster = [samples for _, samples in kept.values()]
        return [FamilySamples(f, f.help, tuple(s[i] for s in per_cluster if s[i])) for i, f in enumerate(FAMILIES)]
