"""The exporter's HTTP endpoints (aiohttp): /metrics, the landing page, /healthz and /readyz.

Handlers only read the store's current view and the cached exposition, so a scrape never waits for
a poll. Unknown paths get 404 and a known path with the wrong method 405 (aiohttp's router).
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from exporter import __version__
from exporter.exposition import Exposition
from exporter.page import PageSection
from exporter.store import Store, View

# (method, path, handler): optional features add endpoints, e.g. POST /-/autoheal/retry
Route = tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]


def _accepts_openmetrics(accept: str) -> bool:
    # Prometheus asks for OpenMetrics explicitly; anything else gets the classic text format.
    return any(part.strip().startswith("application/openmetrics-text") for part in accept.split(","))


def _accepts_gzip(accept_encoding: str) -> bool:
    for part in accept_encoding.split(","):
        token, _, params = part.strip().partition(";")
        if token.strip().lower() == "gzip":
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def create_app(
    store: Store,
    exposition: Exposition,
    *,
    telemetry_path: str = "/metrics",
    page_sections: Iterable[PageSection] = (),
    routes: Iterable[Route] = (),
) -> web.Application:
    """``page_sections``: the status page's sections in order (``exporter.features.PAGE_SECTIONS``)."""
    sections = list(page_sections)

    async def metrics(request: web.Request) -> web.StreamResponse:
        openmetrics = _accepts_openmetrics(request.headers.get("Accept", ""))
        compress = _accepts_gzip(request.headers.get("Accept-Encoding", ""))
        body, content_type = await exposition.body(openmetrics=openmetrics, compress=compress)
        headers = {"Content-Type": content_type, "Vary": "Accept, Accept-Encoding"}
        if compress:
            headers["Content-Encoding"] = "gzip"
        return web.Response(body=body, headers=headers)

    async def healthz(_: web.Request) -> web.StreamResponse:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.StreamResponse:
        view = store.view
        if view.ready:
            return web.Response(text="ready\n")
        waiting = [n for n in view.expected if n not in view.clusters]
        return web.Response(status=503, text="not ready: waiting for the first poll of " + ", ".join(waiting) + "\n")

    async def index(_: web.Request) -> web.StreamResponse:
        return web.Response(text=landing_page(store.view, telemetry_path, sections), content_type="text/html")

    app = web.Application()
    app.router.add_get(telemetry_path, metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/", index)
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    return app


def landing_page(view: View, telemetry_path: str, sections: Iterable[PageSection] = ()) -> str:
    """The status page: the links, then each section in order."""
    e = html.escape
    body = "".join(section(view) for section in sections)
    refresh = min((s.poll_interval for s in view.clusters.values()), default=30.0)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{max(5, int(refresh))}">
<title>kafka-connect-exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:4px 8px;text-align:left}}tr.bad td{{background:#fdd}}tr.unknown td{{color:#777}}
tr.warn td{{background:#ffd}}code{{font-size:90%}}.stale-mark{{color:#a00}}
#sources-down{{border:3px solid #c00;padding:0 1em 1em}}</style></head>
<body><h1>kafka-connect-exporter {e(__version__)}</h1>
<p><a href="{e(telemetry_path)}">Metrics</a> · <a href="/healthz">Health</a> · <a href="/readyz">Readiness</a></p>
{body}
</body></html>
"""
