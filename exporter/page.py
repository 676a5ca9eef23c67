"""The status page's building blocks: what a section is, and the one way every section writes a duration, an age,
a time and the mark of a down cluster's last known state.

A section is a function of the view that returns HTML (or "" to be left out). Every section the page shows is
listed once, in page order, in ``exporter.features.PAGE_SECTIONS``.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable

from exporter.model import ClusterSnapshot
from exporter.store import View

PageSection = Callable[[View], str]


def duration(seconds: float) -> str:
    """How long, as the page says it: "45s", "12m", "3.0h", "2.5d" (never negative)."""
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86_400:.1f}d"


def ago(ts: float | None, now: float) -> str:
    """ "45s ago", or "never" when there is no such time."""
    return "never" if ts is None else f"{duration(now - ts)} ago"


def utc(ts: float | None) -> str:
    """A point in time, in UTC ("2026-12-06 16:30:00"); "" when there is none."""
    return "" if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def last_seen(snapshot: ClusterSnapshot | None, now: float) -> str | None:
    """ "last seen 5m ago" for the last known state a failed cycle holds; None for current content (or none)."""
    if snapshot is None or not snapshot.stale or snapshot.seen_at is None:
        return None
    return f"last seen {ago(snapshot.seen_at, now)}"


def stale_mark(snapshot: ClusterSnapshot | None, now: float) -> str:
    """The mark after a down cluster's name in every table row that shows its last known state ("" otherwise)."""
    seen = last_seen(snapshot, now)
    return f" <strong class=stale-mark>[{html.escape(seen)}]</strong>" if seen else ""
