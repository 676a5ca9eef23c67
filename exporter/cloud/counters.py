"""Exactly-once counting of the Metrics API's per-minute deltas into monotonic Prometheus counters.

Pure bookkeeping, no I/O. For each metric there is one cursor: the start of the oldest minute bucket
not yet counted. A cycle asks for ``[cursor, end)`` where ``end`` is the first minute that is not yet
final (``metrics_delay`` after its start); all points of that window, over all pages and filter
batches, are committed together and the cursor moves to ``end``. So:

- a bucket is inside exactly one committed window, and a window is committed at most once: overlapping
  or repeated polls ask for an empty window (no request at all) and cannot count anything twice;
- a failed window is not committed and the cursor stays: the next successful cycle asks for the whole
  gap, so minutes missed during an outage are backfilled (up to ``max_backfill``; older minutes are
  skipped with a warning because the API cannot serve them at PT1M).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from exporter.cloud.reading import ThroughputSeries

MINUTE = 60


def floor_minute(t: float) -> int:
    return int(t // MINUTE) * MINUTE


@dataclass(frozen=True, slots=True)
class Window:
    metric: str
    start: int  # epoch seconds, inclusive, minute-aligned
    end: int  # exclusive
    skipped: int  # minutes before ``start`` given up on because they are beyond max_backfill


@dataclass(frozen=True, slots=True)
class Owner:
    cluster: str  # connect_cluster label
    connector: str  # connector name (the id when the name is not known)


class Ledger:
    def __init__(self, metrics: Iterable[str], *, delay: float, max_backfill: float, max_window: float) -> None:
        self.metrics = tuple(metrics)
        self.delay = delay
        self.max_backfill = max_backfill
        self.max_window = max_window
        self.cursors: dict[str, int] = {}
        self.totals: dict[str, dict[str, float]] = {}  # connector id -> metric -> value
        self.owners: dict[str, Owner] = {}  # connector id -> where it belongs
        # Per cluster and metric: end of the newest window committed while the cluster's connectors were known.
        self.cluster_cursors: dict[tuple[str, str], int] = {}

    def final_end(self, now: float) -> int:
        """Exclusive end of the final buckets: every bucket starting at or before ``now - delay``."""
        return floor_minute(now - self.delay) + MINUTE

    def window(self, metric: str, now: float) -> Window | None:
        end = self.final_end(now)
        cursor = self.cursors.get(metric)
        if cursor is None:
            # Start with the newest final minute at the first attempt (history before the exporter started
            # is not counted); fixed now, so a failing first cycle is backfilled like any other.
            cursor = self.cursors[metric] = end - MINUTE
        skipped = 0
        earliest = end - int(self.max_backfill // MINUTE) * MINUTE
        if cursor < earliest:
            skipped = (earliest - cursor) // MINUTE
            cursor = earliest
        if cursor >= end:
            return None
        return Window(metric, cursor, min(end, cursor + int(self.max_window // MINUTE) * MINUTE), skipped)

    def watch(self, owners: Mapping[str, Owner]) -> list[str]:
        """Set the connectors being counted; returns the ids dropped (deleted connectors lose their series)."""
        dropped = [cid for cid in self.owners if cid not in owners]
        for cid in dropped:
            self.totals.pop(cid, None)
        self.owners = dict(owners)
        return dropped

    def commit(
        self,
        window: Window,
        points: Mapping[str, Mapping[int, float]],
        known_clusters: Iterable[str],
    ) -> int:
        """Add every point inside the window for a watched connector; returns the number of points added."""
        if self.cursors.get(window.metric, window.start) > window.start:
            raise ValueError(f"window {window} starts before the cursor; refusing to count twice")
        added = 0
        for cid, buckets in points.items():
            if cid not in self.owners:
                continue
            per_metric = self.totals.setdefault(cid, {m: 0.0 for m in self.metrics})
            for ts, value in buckets.items():
                if window.start <= ts < window.end:
                    per_metric[window.metric] = per_metric.get(window.metric, 0.0) + value
                    added += 1
        self.cursors[window.metric] = window.end
        for cluster in known_clusters:
            self.cluster_cursors[(cluster, window.metric)] = window.end
        return added

    def newest_bucket(self, cluster: str, metrics: Iterable[str]) -> float | None:
        ends = [self.cluster_cursors.get((cluster, m)) for m in metrics]
        if not ends or any(e is None for e in ends):
            return None
        return float(min(e for e in ends if e is not None) - MINUTE)

    def series(self, metrics: Iterable[str]) -> tuple[ThroughputSeries, ...]:
        wanted = tuple(metrics)
        out = []
        for cid, owner in sorted(self.owners.items(), key=lambda kv: (kv[1].cluster, kv[1].connector, kv[0])):
            totals = self.totals.get(cid, {})
            values = {m: totals.get(m, 0.0) for m in wanted}
            out.append(ThroughputSeries(owner.cluster, owner.connector, cid, MappingProxyType(values)))
        return tuple(out)
