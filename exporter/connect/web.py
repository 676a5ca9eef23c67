"""Connect's sections of the status page: the sources that are down or not polled yet (they lead the page), every
source's last cycle, the connectors that are not RUNNING, and the workers the statuses name (with the connectors
that have tasks on a lost or unhealthy worker). A down cluster's rows show its last known state, marked so."""

from __future__ import annotations

import html
import time

from exporter.model import RUNNING, ClusterSnapshot, SourceKind, WorkerState, first_line
from exporter.page import ago, last_seen, stale_mark, utc
from exporter.store import View


def _cluster_row(snap: ClusterSnapshot, now: float) -> str:
    e = html.escape
    workers_up = sum(1 for w in snap.workers if w.reachable)
    # Confluent Cloud runs the workers and shows none of them: there is no count to give.
    workers = "managed" if snap.kind is SourceKind.CLOUD else f"{workers_up}/{len(snap.workers)}"
    problem = snap.errors[-1].message if snap.errors else ""
    status = "up" if snap.up else "DOWN"
    return (
        f"<tr class={'ok' if snap.up else 'bad'}{' data-stale' if snap.stale else ''}><td>{e(snap.cluster)}"
        f"{stale_mark(snap, now)}</td><td>{e(snap.kind.value)}</td>"
        f"<td>{status}</td><td>{workers}</td><td>{len(snap.connectors)}</td>"
        f"<td>{ago(snap.last_success, now)}</td><td>{snap.duration * 1000:.0f} ms</td><td>{e(problem)}</td></tr>"
    )


def sources_down_section(view: View) -> str:
    """The first thing on the page while any source is down or not polled yet: which, since when, the last error,
    and what is shown of its connectors."""
    e = html.escape
    now = time.time()
    rows = []
    for name in sorted(view.unseen):
        snap = view.clusters.get(name)
        if snap is None:
            rows.append(
                f"<tr class=bad data-source-down=unpolled><td>{e(name)}</td><td></td><td>not polled yet</td>"
                f"<td>{e(utc(view.started_at)) + ' UTC'} ({ago(view.started_at, now)})</td><td></td>"
                "<td>unknown: no poll has finished</td></tr>"
            )
            continue
        since = snap.down_since if snap.down_since is not None else snap.taken_at
        error = snap.errors[-1].message if snap.errors else ""
        seen = last_seen(snap, now)
        if seen is not None:
            shown = f"{len(snap.connectors)} shown as {seen} (the last successful poll), marked in every table"
        elif snap.last_success is not None:
            shown = f"not shown: the last successful poll ({ago(snap.last_success, now)}) is older than stale_after"
        else:
            shown = "unknown: no poll has succeeded yet"
        rows.append(
            f"<tr class=bad data-source-down=down><td>{e(name)}</td><td>{e(snap.kind.value)}</td><td>DOWN</td>"
            f"<td>{e(utc(since)) + ' UTC'} ({ago(since, now)})</td><td>{e(error)}</td><td>{e(shown)}</td></tr>"
        )
    if not rows:
        return ""
    return (
        "<section id=sources-down><h2>Sources down</h2><p>The exporter cannot read these sources now. Nothing on "
        "this page says their connectors are healthy or RUNNING: what is shown of them is their last known state."
        "</p><table id=sources-down-table><tr><th>cluster</th><th>kind</th><th>status</th><th>since</th>"
        "<th>last error</th><th>its connectors</th></tr>" + "".join(rows) + "</table></section>"
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
    now = time.time()
    for name in sorted(view.clusters):
        snap = view.clusters[name]
        mark = stale_mark(snap, now)
        for w in snap.named_workers:
            unknown = unknown or w.state is WorkerState.UNKNOWN
            state = w.state.value + (f" ({w.health})" if w.health else "")
            cls = "bad" if w.impaired else ("unknown" if w.state is WorkerState.UNKNOWN else "ok")
            why = e(w.error.message) if w.error is not None and w.state is not WorkerState.REACHABLE else ""
            rows.append(
                f"<tr class={cls} data-worker-state={w.state.value}><td>{e(name)}{mark}</td><td>{e(w.worker_id)}</td>"
                f"<td>{e(state)}</td><td>{e(w.version or '')}</td><td>{w.tasks}</td><td>{w.connectors}</td>"
                f"<td>{why}</td></tr>"
            )
        impaired = snap.impaired_worker_ids()
        for c in snap.connectors if impaired else ():
            on = [t for t in c.tasks if t.worker_id in impaired]
            if on:
                where = ", ".join(f"task {t.id} ({t.state}) on {t.worker_id}" for t in on)
                marked.append(
                    f"<tr class=bad data-lost-worker><td>{e(name)}{mark}</td><td>{e(c.name)} "
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


def _all_running(view: View) -> str:
    """What the problems table says when it lists nothing: never "every connector" while a source is unseen."""
    unseen = view.unseen
    if not unseen:
        return "<p>Every connector is RUNNING with all its tasks RUNNING.</p>"
    return (
        f"<p>No connector that was seen is failing, but {len(unseen)} source(s) are down or not polled yet "
        f"({html.escape(', '.join(sorted(unseen)))}): the states of their connectors are not known.</p>"
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
    now = time.time()
    problems = []
    for name in sorted(view.clusters):
        mark = stale_mark(view.clusters[name], now)
        for c in view.clusters[name].connectors:
            bad_tasks = [t for t in c.tasks if t.state != RUNNING]
            if c.state == RUNNING and not bad_tasks and c.tasks:
                continue
            detail = c.trace or next((t.trace for t in bad_tasks if t.trace), None)
            tasks = ", ".join(f"{t.id}: {t.state}" for t in bad_tasks) or ("no tasks" if not c.tasks else "")
            problems.append(
                f"<tr{' data-stale' if mark else ''}><td>{e(name)}{mark}</td><td>{e(c.name)}</td><td>{e(c.state)}</td>"
                f"<td>{e(tasks)}</td>"
                f"<td><code>{e(first_line(detail))}</code></td></tr>"
            )
    problem_table = (
        "<table><tr><th>cluster</th><th>connector</th><th>state</th><th>tasks not RUNNING</th>"
        "<th>first line of trace</th></tr>" + "".join(problems) + "</table>"
        if problems
        else _all_running(view)
    )
    return "<h2>Connectors that are not RUNNING</h2>" + problem_table


# Plugin-version rows on the status page (cluster x class x versions: a few dozen in a real fleet).
MAX_VERSION_ROWS = 200


def versions_section(view: View) -> str:
    """Plugin versions in use: connectors per cluster, class and running version (KIP-891, Kafka 4.1+)."""
    e = html.escape
    counts: dict[tuple[str, str, str, str], int] = {}
    for name in sorted(view.clusters):
        for c in view.clusters[name].connectors:
            if c.version is None and not c.task_versions:
                continue
            key = (name, c.class_name or "", c.version or "", ", ".join(c.task_versions))
            counts[key] = counts.get(key, 0) + 1
    if not counts:
        return ""
    keys = sorted(counts)
    rows = "".join(
        f"<tr><td>{e(cl)}</td><td>{e(cls)}</td><td>{e(ver)}</td><td>{e(tv)}</td><td>{counts[(cl, cls, ver, tv)]}</td>"
        "</tr>"
        for cl, cls, ver, tv in keys[:MAX_VERSION_ROWS]
    )
    more = f"<p>{len(keys) - MAX_VERSION_ROWS} more not listed.</p>" if len(keys) > MAX_VERSION_ROWS else ""
    return (
        "<h2 id=versions>Plugin versions in use</h2><table id=versions-table><tr><th>cluster</th>"
        "<th>connector class</th><th>connector version</th><th>task versions</th><th>connectors</th></tr>"
        f"{rows}</table>{more}"
    )
