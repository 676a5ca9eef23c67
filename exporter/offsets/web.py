"""Offsets on the status page: per sink, its lag and how long its offsets have been unchanged (or that it
never committed any)."""

from __future__ import annotations

import html
import time

from exporter.offsets.reading import OffsetsReading, OffsetsStatus
from exporter.page import ago, duration, stale_mark
from exporter.store import View

# The page lists the sinks unchanged longest first; beyond this many it says how many more there are.
MAX_ROWS = 50


def offsets_section(view: View) -> str:
    reading = view.reading(OffsetsReading)
    if reading is None or not reading.clusters:
        return ""
    e = html.escape
    now = time.time()
    notes: list[str] = []
    rows: list[tuple[float, str]] = []
    for name in sorted(reading.clusters):
        c = reading.clusters[name]
        mark = stale_mark(view.clusters.get(name), now)  # a down cluster's offsets are its last known state
        if c.status is OffsetsStatus.UNSUPPORTED:
            notes.append(f"<li>{e(name)}: workers older than Kafka 3.5 have no offsets endpoint</li>")
            continue
        if c.brokers_configured and c.brokers_up is False:
            notes.append(f"<li>{e(name)}: the Kafka brokers did not answer the last requests</li>")
        for o in c.connectors.values():
            if o.type != "sink":
                continue
            lag = "n/a" if o.lag is None else str(sum(o.lag.values()))
            unchanged = now - o.unchanged_since
            # Nothing committed is not "unchanged for 2 minutes": say what it is, and list it first.
            since = f"never committed (seen for {duration(unchanged)})" if o.never_committed else duration(unchanged)
            rows.append(
                (
                    -unchanged - (1e12 if o.never_committed and o.lag and sum(o.lag.values()) > 0 else 0),
                    f"<tr{' data-stale' if mark else ''}><td>{e(name)}{mark}</td><td>{e(o.connector)}</td>"
                    f"<td>{lag}</td><td>{since}</td><td>{ago(o.read_at, now)}</td></tr>",
                )
            )
    rows.sort(key=lambda r: r[0])
    more = f"<p>… and {len(rows) - MAX_ROWS} more sinks.</p>" if len(rows) > MAX_ROWS else ""
    table = (
        "<table><tr><th>cluster</th><th>sink</th><th>lag (records)</th><th>offsets unchanged for</th>"
        "<th>read</th></tr>" + "".join(r for _, r in rows[:MAX_ROWS]) + "</table>" + more
        if rows
        else "<p>No sink offsets read yet.</p>"
    )
    return "<h2>Offsets</h2>" + (f"<ul>{''.join(notes)}</ul>" if notes else "") + table
