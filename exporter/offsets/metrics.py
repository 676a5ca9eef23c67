"""Offsets families, rendered from the ``OffsetsReading`` the offsets reader publishes once per run.

A fast group (exposition lines written directly): at thousands of connectors these are tens of thousands of
samples, and each cluster's lines are kept until that cluster's reader publishes again, so a status poll's
re-render costs nothing here.
"""

from __future__ import annotations

from exporter.cloud.reading import CloudReading
from exporter.families import (
    CONNECTOR_OFFSET_PARTITIONS,
    CONNECTOR_OFFSETS_LAST_CHANGE,
    KAFKA_ERRORS,
    KAFKA_UP,
    OFFSETS_ERRORS,
    OFFSETS_FAMILIES,
    SINK_COMMITTED_OFFSETS,
    SINK_LAG_RECORDS,
)
from exporter.model import ERROR_REASONS
from exporter.offsets.reading import BROKER_REASONS, ClusterOffsets, OffsetsReading
from exporter.render import FamilySamples, FastGroup, budget_of, escape_label_value, format_value
from exporter.store import View

_num = format_value


def cluster_offsets_samples(
    c: ClusterOffsets, present: frozenset[str] | None = None, current: bool = False
) -> tuple[bytes, ...]:
    """One cluster's lines of each family in ``OFFSETS_FAMILIES``, in that order, labels sorted by name.

    ``present``: the connectors of the cluster's newest snapshot. Offsets are read on a slower cadence than
    statuses, so a connector deleted since the last offsets run is left out here rather than served stale.
    ``current`` (``metrics.state_series: current``): lag only where records wait, no partition counts (the
    families' ``sparse`` declarations).
    """
    esc = escape_label_value
    cl = f'connect_cluster="{esc(c.cluster)}"'
    committed: list[str] = []
    changed: list[str] = []
    partitions: list[str] = []
    lag: list[str] = []
    for name in sorted(c.connectors):
        if present is not None and name not in present:
            continue
        o = c.connectors[name]
        p = f'{cl},connector="{esc(name)}"'
        for topic in sorted(o.committed):
            committed.append(
                f'{SINK_COMMITTED_OFFSETS.sample_name}{{{p},topic="{esc(topic)}"}} {_num(float(o.committed[topic]))}\n'
            )
        if o.last_change is not None:
            changed.append(f"{CONNECTOR_OFFSETS_LAST_CHANGE.name}{{{p}}} {_num(o.last_change)}\n")
        if not current:
            partitions.append(f"{CONNECTOR_OFFSET_PARTITIONS.name}{{{p}}} {_num(float(o.partitions))}\n")
        if o.lag is not None:
            for topic in sorted(o.lag):
                if current and o.lag[topic] == 0:
                    continue
                lag.append(f'{SINK_LAG_RECORDS.name}{{{p},topic="{esc(topic)}"}} {_num(float(o.lag[topic]))}\n')
    errors = [
        f'{OFFSETS_ERRORS.sample_name}{{{cl},reason="{r}"}} {_num(float(c.errors.get(r, 0)))}\n' for r in ERROR_REASONS
    ]
    kafka_up: list[str] = []
    kafka_errors: list[str] = []
    if c.brokers_configured:
        if c.brokers_up is not None:
            kafka_up.append(f"{KAFKA_UP.name}{{{cl}}} {'1.0' if c.brokers_up else '0.0'}\n")
        kafka_errors = [
            f'{KAFKA_ERRORS.sample_name}{{{cl},reason="{r}"}} {_num(float(c.broker_errors.get(r, 0)))}\n'
            for r in BROKER_REASONS
        ]
    families = (committed, changed, partitions, lag, errors, kafka_up, kafka_errors)
    return tuple("".join(lines).encode() for lines in families)


def cloud_lag_samples(reading: CloudReading) -> bytes:
    """Managed sinks' lag (Confluent Cloud consumer_lag_offsets), in the same family as self-managed sinks'."""
    esc = escape_label_value
    lines = []
    for cluster in sorted(reading.lag):
        for connector in sorted(reading.lag[cluster]):
            topics = reading.lag[cluster][connector]
            p = f'connect_cluster="{esc(cluster)}",connector="{esc(connector)}"'
            for topic in sorted(topics):
                lines.append(f'{SINK_LAG_RECORDS.name}{{{p},topic="{esc(topic)}"}} {_num(float(topics[topic]))}\n')
    return "".join(lines).encode()


class OffsetsRenderer(FastGroup):
    """Sample::

    kafka_connect_sink_committed_offsets_total{connect_cluster="prod",connector="orders-sink",topic="orders"} 4711.0
    kafka_connect_sink_lag_records{connect_cluster="prod",connector="orders-sink",topic="orders"} 12.0
    kafka_connect_connector_offsets_last_change_timestamp_seconds{connect_cluster="prod",connector="src"} 1.7e+09
    """

    def __init__(self) -> None:
        self._clusters: dict[str, tuple[ClusterOffsets, frozenset[str] | None, bool, tuple[bytes, ...]]] = {}

    def render(self, view: View) -> list[FamilySamples]:
        reading = view.reading(OffsetsReading)
        cloud = view.reading(CloudReading)
        cloud_lag = cloud_lag_samples(cloud) if cloud is not None else b""
        if reading is None and not cloud_lag:
            return []
        reading = reading or OffsetsReading()
        current = budget_of(view).current
        kept: dict[str, tuple[ClusterOffsets, frozenset[str] | None, bool, tuple[bytes, ...]]] = {}
        for name in sorted(reading.clusters):
            c = reading.clusters[name]
            snap = view.clusters.get(name)
            present = frozenset(x.name for x in snap.connectors) if snap is not None else None
            hit = self._clusters.get(name)
            if hit is not None and hit[0] is c and hit[1] == present and hit[2] == current:
                kept[name] = hit
            else:
                kept[name] = (c, present, current, cluster_offsets_samples(c, present, current))
        self._clusters = kept
        per_cluster = [samples for _, _, _, samples in kept.values()]
        families = [
            FamilySamples(f, f.help, tuple(s[i] for s in per_cluster if s[i])) for i, f in enumerate(OFFSETS_FAMILIES)
        ]
        if cloud_lag:
            i = OFFSETS_FAMILIES.index(SINK_LAG_RECORDS)
            families[i] = FamilySamples(SINK_LAG_RECORDS, SINK_LAG_RECORDS.help, (*families[i].samples, cloud_lag))
        return families
