"""The fleet view on the status page: counts by health, failed then degraded connectors first, a timeline.

A page section (``failures_section(view)``) built from the snapshots, the ``FailuresReading`` and, when
auto-heal runs, the ``HealerReading`` (restarts, last restart, the skip rule that holds a target).
"""

from __future__ import annotations

import html
import time
from collections import Counter
from collections.abc import Mapping

from exporter.cloud.reading import CloudReading
from exporter.failures.health import DEGRADED, HEALTH_FAILED, HEALTHS, HEALTHY, connector_health
from exporter.failures.reading import Failure, FailuresReading
from exporter.healer.reading import HealerReading
from exporter.model import tasks_on
from exporter.offsets.reading import OffsetsReading
from exporter.page import stale_mark, utc
from exporter.sourcetopics.reading import SourceTopicsReading
from exporter.store import View

MAX_ROWS = 500  # connectors listed (worst first); the counts always cover the whole fleet
TIMELINE_ROWS = 50
# Worst first: failed, then degraded, then the states an operator chose or that are not known yet.
_ORDER = {HEALTH_FAILED: 0, DEGRADED: 1, "unknown": 2, "paused": 3, "stopped": 4, HEALTHY: 5}
_FILTER = (
    "<script>function fleetFilter(){var q=document.getElementById('fleet-q').value.toLowerCase(),"
    "h=document.getElementById('fleet-h').value;document.querySelectorAll('#fleet tr[data-health]')"
    ".forEach(function(r){r.style.display=(!h||r.dataset.health===h)&&r.textContent.toLowerCase()"
    ".indexOf(q)>=0?'':'none'})}</script>"
)


def _short(cls: str) -> str:
    return cls.rsplit(".", 1)[-1]


def _fingerprint(failures: list[Failure]) -> str:
    e = html.escape
    parts = []
    for f in failures[:3]:
        where = "connector" if f.task is None else f"task {f.task}"
        parts.append(
            f'<span title="{e(f.exception)} / {e(f.root_cause)}: {e(f.first_line)}">{e(where)}: '
            f"{e(_short(f.exception))} ← {e(_short(f.root_cause))}</span>"
        )
    if len(failures) > 3:
        parts.append(f"(+{len(failures) - 3} more)")
    return "<br>".join(parts)


def _all_healthy(unseen: tuple[str, ...]) -> str:
    """Never "every connector is healthy" while a source is down or not polled yet."""
    if not unseen:
        return "<p>Every connector is healthy.</p>"
    return (
        f"<p>No connector that was seen is unhealthy, but {len(unseen)} source(s) are down or not polled yet "
        f"({html.escape(', '.join(sorted(unseen)))}): the health of their connectors is not known.</p>"
    )


def failures_section(view: View) -> str:
    e = html.escape
    reading = view.reading(FailuresReading) or FailuresReading()
    healer = view.reading(HealerReading)
    offsets = view.reading(OffsetsReading) or OffsetsReading()
    sources = view.reading(SourceTopicsReading) or SourceTopicsReading()
    cloud = view.reading(CloudReading)
    now = time.time()
    counts: Counter[str] = Counter()
    rows: list[tuple[int, str, str, str]] = []  # (order, cluster, connector, html)
    for name in sorted(view.clusters):
        snap = view.clusters[name]
        cluster = reading.clusters.get(name)
        by_connector: dict[str, list[Failure]] = {}
        for f in cluster.failures if cluster is not None else ():
            by_connector.setdefault(f.connector, []).append(f)
        heal = healer.clusters.get(name) if healer is not None else None
        restarts: Mapping[str, int] = Counter()
        if heal is not None:
            restarts = Counter({c: 0 for c, _, _ in heal.restarts})
            for (connector, _, outcome), n in heal.restarts.items():
                if outcome == "accepted":
                    restarts[connector] += n
        impaired = snap.impaired_worker_ids()
        stalled = offsets.stalled(name) | (cloud.stalled_sinks(name) if cloud is not None else frozenset())
        silent = sources.silent(name)
        mark = stale_mark(snap, now)  # a down cluster's rows are its last known state, marked so
        for c in snap.connectors:
            health = connector_health(
                c, tasks_on_lost_workers=tasks_on(c, impaired), stalled=c.name in stalled, silent=c.name in silent
            )
            counts[health] += 1
            if health == HEALTHY:
                continue
            failed = by_connector.get(c.name, [])
            since = min((f.since for f in failed), default=None)
            last = None
            skipped = ""
            if heal is not None:
                last = max((t for k, t in heal.last_restart.items() if k.connector == c.name), default=None)
                rules = sorted({r for k, r in heal.skipped.items() if k.connector == c.name})
                skipped = ", ".join(rules)
            rows.append(
                (
                    _ORDER.get(health, 2),
                    name,
                    c.name,
                    f'<tr data-health="{e(health)}" class={"bad" if health == HEALTH_FAILED else "warn"}'
                    f"{' data-stale' if mark else ''}>"
                    f"<td>{e(name)}{mark}</td><td>{e(c.name)}</td><td>{e(health)}</td><td>{e(c.state)}</td>"
                    f"<td>{_fingerprint(failed)}</td><td>{e(utc(since))}</td>"
                    + (
                        f"<td>{restarts.get(c.name, 0)}</td><td>{e(utc(last))}</td><td>{e(skipped)}</td>"
                        if healer is not None
                        else ""
                    )
                    + "</tr>",
                )
            )
    if not counts and not reading.clusters:
        return ""
    rows.sort(key=lambda r: r[:3])
    held = sorted(n for n in view.unseen if n in view.clusters and view.clusters[n].stale)
    held_note = (
        f"<p class=note>The counts include the last known state of {e(', '.join(held))} (down now).</p>" if held else ""
    )
    count_cells = "".join(f"<td>{counts.get(h, 0)}</td>" for h in HEALTHS)
    listed = "".join(r[3] for r in rows[:MAX_ROWS])
    more = f"<p>{len(rows) - MAX_ROWS} more not listed.</p>" if len(rows) > MAX_ROWS else ""
    options = "".join(f'<option value="{h}">{h}</option>' for h in HEALTHS if h != HEALTHY)
    timeline = sorted(
        (t for c in reading.clusters.values() for t in c.timeline), key=lambda t: (t.at, t.cluster), reverse=True
    )[:TIMELINE_ROWS]
    timeline_rows = "".join(
        f"<tr><td>{e(utc(t.at))}</td><td>{e(t.cluster)}</td><td>{e(t.connector)}</td>"
        f"<td>{'' if t.task is None else t.task}</td><td>{e(t.from_state)} → {e(t.to_state)}</td></tr>"
        for t in timeline
    )
    return (
        "<h2>Fleet health</h2><table><tr>"
        + "".join(f"<th>{h}</th>" for h in HEALTHS)
        + f"</tr><tr>{count_cells}</tr></table>"
        + held_note
        + "<h3>Connectors that are not healthy</h3>"
        + (
            f"{_FILTER}<p><input id=fleet-q placeholder=filter oninput=fleetFilter()> "
            f'<select id=fleet-h onchange=fleetFilter()><option value="">any health</option>{options}</select></p>'
            "<table id=fleet><tr><th>cluster</th><th>connector</th><th>health</th><th>state</th>"
            "<th>fingerprint (exception ← root cause)</th><th>failed since (UTC)</th>"
            # Auto-heal's columns only where it runs: without it they would be zeros and blanks.
            + ("<th>restarts</th><th>last restart (UTC)</th><th>skip rule</th>" if healer is not None else "")
            + f"</tr>{listed}</table>{more}"
            if rows
            else _all_healthy(view.unseen)
        )
        + "<h3>Last state transitions</h3>"
        + (
            "<table id=transitions><tr><th>time (UTC)</th><th>cluster</th><th>connector</th><th>task</th>"
            f"<th>change</th></tr>{timeline_rows}</table>"
            if timeline_rows
            else "<p>None seen since the exporter started watching these clusters.</p>"
        )
    )
