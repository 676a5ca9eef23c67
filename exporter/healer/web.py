"""Auto-heal on the exporter's HTTP server: a status-page section and the retry endpoint.

``POST /-/autoheal/retry?connect_cluster=C[&connector=N[&task=T]]`` forgets the attempts and the persistent
failure mark of the matching targets, so the healer tries them again (after the grace period, within the
budget). It changes what the exporter will do to Connect, so put ``--web.config.file`` basic auth in front
of the exporter wherever untrusted clients can reach it (docs/security.md).
"""

from __future__ import annotations

import html
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Protocol

from aiohttp import web

from exporter.healer.reading import HealerReading
from exporter.page import duration
from exporter.store import View


class Retrier(Protocol):
    """What the retry endpoint needs of the healer (``exporter.healer.runner.Healer`` is one)."""

    @property
    def cluster_names(self) -> Collection[str]: ...

    def retry(self, cluster: str | None = None, connector: str | None = None, task: int | None = None) -> int: ...


def autoheal_section(view: View) -> str:
    healer = view.reading(HealerReading)
    if healer is None or not healer.clusters:
        return ""
    e = html.escape
    now = time.time()
    rows = []
    notes: list[str] = []
    for name in sorted(healer.clusters):
        c = healer.clusters[name]
        waiting = sorted(c.next_attempt.items(), key=lambda kv: kv[1])
        persistent = (
            ", ".join(e(k.connector if k.task is None else f"{k.connector}/{k.task}") for k in c.persistent) or "none"
        )
        upcoming = (
            ", ".join(
                e(k.connector if k.task is None else f"{k.connector}/{k.task}") + f" in {duration(ts - now)}"
                for k, ts in waiting[:10]
            )
            or "none"
        )
        if c.unaddressable:
            names = ", ".join(e(k.connector if k.task is None else f"{k.connector}/{k.task}") for k in c.unaddressable)
            notes.append(
                f"<p class='note'>{e(name)}: not addressable over REST, never restarted: {names}. Connect refuses "
                "<code>%5C</code> and <code>%25</code> in any path, so a connector whose name holds a backslash or "
                "a percent sign cannot be restarted, paused or read by name; recreate it under another name.</p>"
            )
        if c.stopped is not None:
            notes.append(f"<p class='note'>{e(name)}: restarts stopped: {e(c.stopped)}.</p>")
        restarts = sum(c.restarts.values())
        skipped = (
            ", ".join(
                e(k.connector if k.task is None else f"{k.connector}/{k.task}") + f" ({e(rule)})"
                for k, rule in sorted(c.skipped.items(), key=lambda kv: kv[0].sort_key())[:20]
            )
            or "none"
        )
        snap = view.clusters.get(name)
        down = snap is not None and not snap.up  # no restarts while the cluster cannot be read
        mark = " <strong class=stale-mark>[down: restarts held]</strong>" if down and c.mode != "off" else ""
        rows.append(
            f"<tr{' data-stale' if mark else ''}><td>{e(name)}{mark}</td><td>{e(c.mode)}</td><td>{e(c.scope)}</td>"
            f"<td>{'OPEN: restarts held' if c.breaker_open else 'closed'}</td><td>{restarts}</td>"
            f"<td>{persistent}</td><td>{upcoming}</td><td>{skipped}</td></tr>"
        )
    return (
        "<h2>Auto-heal</h2><table><tr><th>cluster</th><th>mode</th><th>scope</th><th>breaker</th>"
        "<th>restarts sent</th><th>persistent failures</th><th>next attempts</th><th>skipped (rule)</th></tr>"
        + "".join(rows)
        + "</table><p>Persistent failures are left alone until they recover or you ask for a retry: "
        "<code>curl -X POST 'http://&lt;exporter&gt;/-/autoheal/retry?connect_cluster=&lt;cluster&gt;"
        "&amp;connector=&lt;name&gt;'</code></p>" + "".join(notes)
    )


_FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}


def retry_handler(healer: Retrier) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        # Browsers send Origin with every cross-site POST and can only send "simple" content types without a
        # CORS preflight, which this server never grants: refusing both stops a web page from triggering
        # restarts through a visitor's browser (CSRF). curl and scripts send neither.
        if "Origin" in request.headers or request.content_type in _FORM_TYPES:
            return web.json_response({"error": "cross-site or form requests are refused; use curl -X POST"}, status=403)
        query = request.rel_url.query
        cluster = query.get("connect_cluster")
        if not cluster:
            return web.json_response({"error": "connect_cluster is required"}, status=400)
        if cluster not in healer.cluster_names:
            return web.json_response({"error": f"auto-heal is not enabled for cluster {cluster!r}"}, status=404)
        connector = query.get("connector") or None
        task: int | None = None
        if "task" in query:
            if connector is None or not query["task"].isdigit():
                return web.json_response({"error": "task must be a non-negative integer, with connector"}, status=400)
            task = int(query["task"])
        touched = healer.retry(cluster, connector, task)
        return web.json_response({"connect_cluster": cluster, "connector": connector, "task": task, "reset": touched})

    return handle
