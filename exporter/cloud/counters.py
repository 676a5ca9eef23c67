"""Exactly-once counting of the Metrics API's per-minute deltas into monotonic Prometheus counters.

Pure bookkeeping, no I/O. For each metric there is one cursor: the start of the oldest minute bucket
not yet counted. A cycle asks for ``[cursor - revision, end)`` where ``end`` is the first minute that is
not yet final (``metrics_delay`` after its start) and ``revision`` is the trailing window of minutes already
counted that are read again, because the API may still add to a minute after publishing it. All points of
that window, over all pages and filter batches, are committed together and the cursor moves to ``end``:

- a minute at or after the cursor is added whole, and remembered with the value added;
- a minute before the cursor (read again) adds only what it gained since it was counted, and is
  remembered with its new value: what a minute holds is added once, however often it is read. What it
  gained is also counted as late. A minute that shrank (or vanished) adds nothing and is reported, once;
- a failed window is not committed and the cursor stays: the next successful cycle asks for the whole
  gap, so minutes missed during an outage are backfilled (up to ``max_backfill``; older minutes are
  skipped with a warning because the API cannot serve them at PT1M), together with the revision window
  before it. Repeated polls within a minute ask for nothing.
"""

from __future__ import annotations

import math
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
    start: int  # epoch seconds, inclusive, minute-aligned (the revision window's start)
    end: int  # exclusive
    skipped: int  # minutes before the cursor given up on because they are beyond max_backfill
    fresh: int = -1  # the cursor: minutes from here on are counted for the first time (-1: from ``start``)
    at: float = 0.0  # when the window was asked for

    @property
    def first_new(self) -> int:
        return self.start if self.fresh < 0 else self.fresh


@dataclass(frozen=True, slots=True)
class Revision:
    """A minute read again whose value changed since it was counted."""

    connector_id: str
    metric: str
    minute: int
    counted: float  # the value counted so far
    now: float  # the value the API serves now


@dataclass(frozen=True, slots=True)
class Commit:
    added: int  # points counted for the first time
    late: tuple[Revision, ...] = ()  # minutes that grew: their gain was added
    shrunk: tuple[Revision, ...] = ()  # minutes that shrank or vanished, first seen so: nothing added


@dataclass(frozen=True, slots=True)
class Owner:
    cluster: str  # connect_cluster label
    connector: str  # connector name (the id when the name is not known)


class Ledger:
    def __init__(
        self,
        metrics: Iterable[str],
        *,
        delay: float,
        max_backfill: float,
        max_window: float,
        revision: float = 0.0,
    ) -> None:
        self.metrics = tuple(metrics)
        self.delay = delay
        self.max_backfill = max_backfill
        self.max_window = max_window
        self.revision = int(revision // MINUTE) * MINUTE  # whole minutes read again
        self.cursors: dict[str, int] = {}
        self.origins: dict[str, int] = {}  # metric -> the first minute ever counted (nothing before is read)
        self.read_at: dict[str, float] = {}  # metric -> when its newest committed window was asked for
        self.totals: dict[str, dict[str, float]] = {}  # connector id -> metric -> value
        self.owners: dict[str, Owner] = {}  # connector id -> where it belongs
        # Per cluster and metric: end of the newest window committed while the cluster's connectors were known.
        self.cluster_cursors: dict[tuple[str, str], int] = {}
        # (connector id, metric) -> minute -> the value counted for it, for minutes still inside the revision.
        self.counted: dict[tuple[str, str], dict[int, float]] = {}
        # (connector id, metric) -> first minute it is counted for (the cursor when it was first watched).
        self.since: dict[tuple[str, str], int] = {}
        self.shrunk: set[tuple[str, str, int]] = set()  # minutes reported as shrunk (once each)
        self.late: dict[tuple[str, str], float] = {}  # (cluster, metric) -> what minutes gained after counting

    def final_end(self, now: float) -> int:
        """Exclusive end of the final buckets: every bucket starting at or before ``now - delay``."""
        return floor_minute(now - self.delay) + MINUTE

    def window(self, metric: str, now: float) -> Window | None:
        """The next window to ask for, or None when there is nothing new and the revision window was read
        less than a minute ago."""
        end = self.final_end(now)
        cursor = self.cursors.get(metric)
        if cursor is None:
            # Start with the newest final minute at the first attempt (history before the exporter started
            # is not counted); fixed now, so a failing first cycle is backfilled like any other.
            cursor = self.cursors[metric] = self.origins[metric] = end - MINUTE
        skipped = 0
        earliest = end - int(self.max_backfill // MINUTE) * MINUTE
        if cursor < earliest:
            skipped = (earliest - cursor) // MINUTE
            cursor = earliest
        start = max(cursor - self.revision, earliest, self.origins.get(metric, cursor))
        if cursor >= end and (start >= cursor or now - self.read_at.get(metric, -math.inf) < MINUTE):
            return None
        span = int(self.max_window // MINUTE) * MINUTE
        return Window(metric, start, min(end, start + span), skipped, fresh=cursor, at=now)

    def watch(self, owners: Mapping[str, Owner]) -> list[str]:
        """Set the connectors being counted; returns the ids dropped (deleted connectors lose their series)."""
        dropped = [cid for cid in self.owners if cid not in owners]
        for cid in dropped:
            self.totals.pop(cid, None)
            for metric in self.metrics:
                self.counted.pop((cid, metric), None)
                self.since.pop((cid, metric), None)
        self.owners = dict(owners)
        return dropped

    def commit(
        self,
        window: Window,
        points: Mapping[str, Mapping[int, float]],
        known_clusters: Iterable[str],
    ) -> Commit:
        """Add what the window's points hold beyond what was counted (see the module docstring)."""
        metric, first_new = window.metric, window.first_new
        if self.cursors.get(metric, first_new) > first_new:
            raise ValueError(f"window {window} starts before the cursor; refusing to count twice")
        added = 0
        late: list[Revision] = []
        shrunk: list[Revision] = []
        for cid, owner in self.owners.items():
            key = (cid, metric)
            since = self.since.setdefault(key, first_new)  # a connector found now: from the cursor on
            counted = self.counted.setdefault(key, {})
            buckets = points.get(cid, {})
            total = self.totals.setdefault(cid, {m: 0.0 for m in self.metrics})
            for ts in sorted(set(buckets) | {t for t in counted if window.start <= t < first_new}):
                if not (window.start <= ts < window.end) or ts < since:
                    continue
                value = buckets.get(ts, 0.0)
                if ts >= first_new and ts not in counted:
                    if ts in buckets:
                        total[metric] = total.get(metric, 0.0) + value
                        counted[ts] = value
                        added += 1
                    continue
                before = counted.get(ts, 0.0)  # a minute counted without a point held 0
                if value > before:
                    total[metric] = total.get(metric, 0.0) + (value - before)
                    counted[ts] = value
                    lk = (owner.cluster, metric)
                    self.late[lk] = self.late.get(lk, 0.0) + (value - before)
                    late.append(Revision(cid, metric, ts, before, value))
                elif value < before and (cid, metric, ts) not in self.shrunk:
                    self.shrunk.add((cid, metric, ts))
                    shrunk.append(Revision(cid, metric, ts, before, value))
        self.cursors[metric] = max(window.end, first_new)
        self.read_at[metric] = window.at
        for cluster in known_clusters:
            self.cluster_cursors[(cluster, metric)] = self.cursors[metric]
        self._forget_before(metric, self.cursors[metric] - self.revision)
        return Commit(added, tuple(late), tuple(shrunk))

    def _forget_before(self, metric: str, oldest: int) -> None:
        """Minutes before ``oldest`` are never read again: their values need not be kept."""
        for (_, m), counted in self.counted.items():
            if m == metric:
                for ts in [t for t in counted if t < oldest]:
                    del counted[ts]
        self.shrunk = {k for k in self.shrunk if k[1] != metric or k[2] >= oldest}

    def late_totals(self, clusters: Iterable[str], metrics: Iterable[str]) -> dict[tuple[str, str], float]:
        """(cluster, metric) -> what minutes gained after they were first counted, zeros included."""
        wanted = tuple(metrics)
        return {(c, m): self.late.get((c, m), 0.0) for c in clusters for m in wanted}

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
