"""Connect's sections of the status page: every source's last cycle, the connectors that are not RUNNING, and the
workers the statuses name (with the connectors that have tasks on a lost or unhealthy worker)."""

from __future__ import annotations

import html
import time

from exporter.model import RUNNING, ClusterSnapshot, WorkerState, first_line
from exporter.store import View


def _age(ts: float | None, now: float) -> str:
    if ts is None:
        return "never"
    seconds = max(0.0, now - ts)
    return f"{seconds:.0f}s ago" if seconds < 120 else f"{seconds / 60:.0f}m ago"


def _cluster_row(snap: ClusterSnapshot, now: float) -> str:
    e = html.escape
    workers_up = sum(1 for w in snap.workers if w.reachable)
    problem = snap.errors[-1].message if snap.errors else ""
    status = "up" if snap.up else "DOWN"
    return (
        f"<tr class={'ok' if snap.up else 'bad'}><td>{e(snap.cluster)}</td><td>{e(snap.kind.value)}</td>"
        f"<td>{status}</td><td>{workers_up}/{len(snap.workers)}</td><td>{len(snap.connectors)}</td>"
        f"<td>{_age(snap.last_success, now)}</td><td>{snap.duration * 1000:.0f} ms</td><td>{e(problem)}</td></tr>"
    )


_UNKNOWN_NOTE = (
    "Workers marked unknown never answered the exporter: it may have no route to the addresses the workers "
    "advertise (rest.advertised.host.name). They are not alerted on."
)


def workers_section(view: View) -> str:
    """Every worker the statuses name, what probing it says, and the work assigned to it; then the connectors
    with tasks on a lost or unhealthy worker (Connect may still call them RUNNING)."""
    e = html.escape
    rows = []
    marked = []
    unknown = False
    for name in sorted(view.clusters):
        snap = view.clusters[name]
        for w in snap.named_workers:
            unknown = unknown or w.state is WorkerState.UNKNOWN
            state = w.state.value + (f" ({w.health})" if w.health else "")
            cls = "bad" if w.impaired else ("unknown" if w.state is WorkerState.UNKNOWN else "ok")
            why = e(w.error.message) if w.error is not None and w.state is not WorkerState.REACHABLE else ""
            rows.append(
                f"<tr class={cls} data-worker-state={w.state.value}><td>{e(name)}</td><td>{e(w.worker_id)}</td>"
                f"<td>{e(state)}</td><td>{e(w.version or '')}</td><td>{w.tasks}</td><td>{w.connectors}</td>"
                f"<td>{why}</td></tr>"
            )
        impaired = snap.impaired_worker_ids()
        for c in snap.connectors if impaired else ():
            on = [t for t in c.tasks if t.worker_id in impaired]
            if on:
                where = ", ".join(f"task {t.id} ({t.state}) on {t.worker_id}" for t in on)
                marked.append(
                    f"<tr class=bad data-lost-worker><td>{e(name)}</td><td>{e(c.name)} "
                    f"<strong class=lost-worker>[on lost worker]</strong></td><td>{e(c.state)}</td>"
                    f"<td>{e(where)}</td></tr>"
                )
    if not rows:
        return ""
    lost = (
        "<h3>Connectors with tasks on a lost or unhealthy worker</h3><p>Connect reports these tasks in the state "
        "shown until the rebalance delay (scheduled.rebalance.max.delay.ms, 5 minutes by default) moves them; "
        "meanwhile they copy no data.</p><table id=lost-work><tr><th>cluster</th><th>connector</th><th>state</th>"
        "<th>tasks on lost workers</th></tr>" + "".join(marked) + "</table>"
        if marked
        else ""
    )
    return (
        "<h2 id=workers>Workers</h2><table id=workers-table><tr><th>cluster</th><th>worker id</th><th>state</th>"
        "<th>version</th><th>tasks</th><th>connectors</th><th>why</th></tr>"
        + "".join(rows)
        + "</table>"
        + (f"<p class=note>{e(_UNKNOWN_NOTE)}</p>" if unknown else "")
        + lost
    )


def clusters_section(view: View) -> str:
    """Every configured source (Connect or Cloud): up or down, its workers and connectors, its last cycle."""
    e = html.escape
    now = time.time()
    cluster_rows = "".join(_cluster_row(view.clusters[n], now) for n in sorted(view.clusters))
    waiting = "".join(
        f"<tr><td>{e(n)}</td><td></td><td>waiting for first poll</td><td colspan=5></td></tr>"
        for n in view.expected
        if n not in view.clusters
    )
    return f"""<h2>Clusters</h2>
<table><tr><th>cluster</th><th>kind</th><th>status</th><th>workers up</th><th>connectors</th><th>last success</th>
<th>last poll took</th><th>last error</th></tr>{cluster_rows}{waiting}</table>
"""


def problems_section(view: View) -> str:
    """The connectors that are not RUNNING with all their tasks RUNNING, with the first line of their trace."""
    e = html.escape
    problems = []
    for name in sorted(view.clusters):
        for c in view.clusters[name].connectors:
            bad_tasks = [t for t in c.tasks if t.state != RUNNING]
            if c.state == RUNNING and not bad_tasks and c.tasks:
                continue
            detail = c.trace or next((t.trace for t in bad_tasks if t.trace), None)
            tasks = ", ".join(f"{t.id}: {t.state}" for t in bad_tasks) or ("no tasks" if not c.tasks else "")
            problems.append(
                f"<tr><td>{e(name)}</td><td>{e(c.name)}</td><td>{e(c.state)}</td><td>{e(tasks)}</td>"
                f"<td><code>{e(first_line(detail))}</code></td></tr>"
            )
    problem_table = (
        "<table><tr><th>cluster</th><th>connector</th><th>state</th><th>tasks not RUNNING</th>"
        "<th>first line of trace</th></tr>" + "".join(problems) + "</table>"
        if problems
        else "<p>Every connector is RUNNING with all its tasks RUNNING.</p>"
    )
    return "<h2>Connectors that are not RUNNING</h2>" + problem_table
