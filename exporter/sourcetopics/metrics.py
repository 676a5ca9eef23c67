"""Source-topic families, rendered from the ``SourceTopicsReading`` (a fast group: lines written directly)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client.utils import floatToGoString

from exporter.families import (
    CONNECTOR_TOPIC_INFO,
    SOURCE_HEARTBEAT_INTERVAL,
    SOURCE_SILENT,
    SOURCE_TOPIC_LAST_GROWTH,
    SOURCE_TOPIC_RECORDS,
    SOURCE_TOPICS_FAMILIES,
    SOURCE_TOPICS_READ,
)
from exporter.render import FamilySamples, FastGroup, escape_label_value
from exporter.sourcetopics.reading import ClusterSourceTopics, SourceTopicsReading
from exporter.store import View

_num: Callable[[float], str] = floatToGoString  # untyped upstream


def cluster_samples(c: ClusterSourceTopics, present: frozenset[str] | None) -> tuple[list[str], ...]:
    """One cluster's lines of each family in ``SOURCE_TOPICS_FAMILIES``, in that order.

    ``present``: the connectors of the cluster's newest snapshot; one deleted since the last read is left out."""
    esc = escape_label_value
    cl = f'connect_cluster="{esc(c.cluster)}"'
    info: list[str] = []
    growth: list[str] = []
    records: list[str] = []
    interval: list[str] = []
    silent: list[str] = []
    read: list[str] = []
    for name in sorted(c.connectors):
        if present is not None and name not in present:
            continue
        s = c.connectors[name]
        p = f'{cl},connector="{esc(name)}"'
        for t in s.topics:
            pt = f'{p},topic="{esc(t.topic)}"'
            info.append(f"{CONNECTOR_TOPIC_INFO.name}{{{pt}}} 1.0\n")
            if t.last_growth is not None:
                growth.append(f"{SOURCE_TOPIC_LAST_GROWTH.name}{{{pt}}} {_num(t.last_growth)}\n")
            if t.exclusive and t.end_offset is not None:
                records.append(f"{SOURCE_TOPIC_RECORDS.sample_name}{{{pt}}} {_num(float(t.end_offset))}\n")
        if s.heartbeat is not None:
            pt = f'{p},topic="{esc(s.heartbeat.topic)}"'
            interval.append(f"{SOURCE_HEARTBEAT_INTERVAL.name}{{{pt}}} {_num(s.heartbeat.interval)}\n")
            silent.append(f"{SOURCE_SILENT.name}{{{pt}}} {'1.0' if s.heartbeat.silent else '0.0'}\n")
    if c.read_at is not None:
        read.append(f"{SOURCE_TOPICS_READ.name}{{{cl}}} {_num(c.read_at)}\n")
    return info, growth, records, interval, silent, read


class SourceTopicsRenderer(FastGroup):
    """Sample::

    kafka_connect_connector_topic_info{connect_cluster="prod",connector="pg-cdc",topic="pgcdc.public.orders"} 1.0
    kafka_connect_source_silent{connect_cluster="prod",connector="pg-cdc",topic="__debezium-heartbeat.pgcdc"} 1.0
    """

    def render(self, view: View) -> list[FamilySamples]:
        reading = view.reading(SourceTopicsReading)
        if reading is None:
            return []
        per_cluster = []
        for name in sorted(reading.clusters):
            snap = view.clusters.get(name)
            present = frozenset(x.name for x in snap.connectors) if snap is not None else None
            per_cluster.append(cluster_samples(reading.clusters[name], present))
        out = []
        for i, f in enumerate(SOURCE_TOPICS_FAMILIES):
            lines = "".join(line for samples in per_cluster for line in samples[i])
            if lines:
                out.append(FamilySamples(f, f.help, (lines.encode(),)))
        return out
