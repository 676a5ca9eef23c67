"""Rendered exposition, cached per store generation.

Snapshot metrics only change when a poll publishes, so they are rendered once per new view (in a worker
thread, so the event loop keeps answering) and every scraper gets the cached bytes, or the cached gzip.
Each of the four variants (text or OpenMetrics, plain or gzip) is built from the rendered families the first
time a scraper asks for it and kept for that view; variants asked for before are built with every new view
in the same worker-thread pass, so a steady scraper never waits for compression.
The process metrics (CPU, memory, fds) change all the time and are tiny, so they are rendered at most
once per ``LIVE_SECONDS`` and appended; reading them from /proc was most of the cost of a scrape, and the
whole response (cached part plus live part, gzip finished) is reused until either changes. For gzip, the
cached part's deflate state is kept after a sync flush and copied to compress just the live part, so every
response is one ordinary gzip stream.
"""

from __future__ import annotations

import asyncio
import threading
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

# Classic names only, so the widely understood 0.0.4 text format.
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4 as TEXT_CONTENT_TYPE
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_CONTENT_TYPE
from prometheus_client.process_collector import ProcessCollector

from exporter.cpu_worker import off_loop
from exporter.render import Block, MetricGroup, generate_openmetrics, render_blocks
from exporter.store import Store, View

# Level 3: on exposition text nearly as small as level 6 for less than half the CPU (docs/performance.md).
GZIP_LEVEL = 3
# How long the process metrics may be reused: far below any scrape interval, long enough that a burst of
# concurrent scrapers shares one reading and one finished response.
LIVE_SECONDS = 1.0

Variant = tuple[bool, bool]  # (openmetrics, gzip)


@dataclass(frozen=True, slots=True)
class GzipPrefix:
    """Gzip of a prefix, plus the compressor state to continue the same stream with any suffix."""

    data: bytes
    state: Any  # zlib.Compress, flushed with Z_SYNC_FLUSH; copied, never used directly

    @classmethod
    def of(cls, prefix: bytes | Iterable[bytes]) -> GzipPrefix:
        compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # wbits 31: gzip header and trailer
        chunks = [prefix] if isinstance(prefix, bytes) else prefix
        out = [compressor.compress(chunk) for chunk in chunks]
        out.append(compressor.flush(zlib.Z_SYNC_FLUSH))
        return cls(b"".join(out), compressor)

    def finish(self, suffix: bytes) -> bytes:
        compressor = self.state.copy()
        tail: bytes = compressor.compress(suffix) + compressor.flush()
        return self.data + tail


class Released(Exception):
    """A variant was asked of a rendering whose lines were already let go: render the view again."""


@dataclass(slots=True, eq=False)
class Rendered:
    """The snapshot part for one view; variants are built on demand (in a worker thread) and kept."""

    generation: int
    blocks: list[Block] | None  # None once released
    _variants: dict[Variant, bytes | GzipPrefix] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def chunks(self, openmetrics: bool) -> Iterable[bytes]:
        for b in self.blocks or ():
            yield b.header_openmetrics if openmetrics else b.header_text
            yield from b.samples

    def release(self) -> None:
        """Let the sample lines go once the variants scrapers use are built: the renderer keeps the lines of
        unchanged clusters anyway, and while the next view renders, the old lines held only here would double
        the largest thing in memory (docs/performance.md has the figures)."""
        with self._lock:
            self.blocks = None

    def variant(self, key: Variant) -> bytes | GzipPrefix:
        """Build (once) and return a variant; thread-safe, CPU-heavy the first time. ``Released`` when the
        variant was never built and the lines are gone."""
        with self._lock:
            found = self._variants.get(key)
            if found is None:
                if self.blocks is None:
                    raise Released
                openmetrics, compress = key
                found = GzipPrefix.of(self.chunks(openmetrics)) if compress else b"".join(self.chunks(openmetrics))
                self._variants[key] = found
            return found

    def ready(self, key: Variant) -> bytes | GzipPrefix | None:
        return self._variants.get(key)

    @property
    def text(self) -> bytes:
        out = self.variant((False, False))
        assert isinstance(out, bytes)
        return out

    @property
    def openmetrics(self) -> bytes:
        """Without the trailing "# EOF", which goes after the live part."""
        out = self.variant((True, False))
        assert isinstance(out, bytes)
        return out


class Exposition:
    def __init__(self, store: Store, groups: Iterable[MetricGroup]) -> None:
        """``groups``: what /metrics serves, in order (``exporter.features.metric_groups``)."""
        self.store = store
        # Only the render thread calls the groups, one render at a time (fast groups keep caches).
        self.groups: list[MetricGroup] = list(groups)
        self.live = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.live)
        self._cached: Rendered | None = None
        self._pending: asyncio.Future[Rendered] | None = None
        self._prerender: asyncio.Future[None] | None = None
        self._wanted: set[Variant] = set()  # variants scrapers asked for: built with every new view
        self._live: dict[bool, tuple[float, bytes]] = {}  # openmetrics -> (monotonic time read, bytes)
        self._bodies: dict[Variant, tuple[Rendered, bytes, bytes]] = {}  # -> (rendering, live part, body)
        self.renders = 0  # how many times the snapshot part was rendered (tests and benchmarks read it)

    def _render(self, view: View, wanted: frozenset[Variant]) -> Rendered:
        rendered = Rendered(view.generation, render_blocks(view, self.groups))
        self.renders += 1
        for key in sorted(wanted):
            rendered.variant(key)
        if wanted:  # before any scrape nobody has said which variant to build: keep the lines for the first
            rendered.release()
        return rendered

    async def current(self, newer_than: Rendered | None = None) -> Rendered:
        """A rendering at least as new as the view at call time (and not ``newer_than`` itself); concurrent
        callers share one render."""
        wanted = self.store.view.generation
        while True:
            cached = self._cached
            if cached is not None and cached.generation >= wanted and cached is not newer_than:
                return cached
            if self._pending is None or self._pending.done():
                self._pending = asyncio.ensure_future(off_loop(self._render, self.store.view, frozenset(self._wanted)))
            rendered = await asyncio.shield(self._pending)
            if self._cached is None or rendered.generation >= self._cached.generation:
                self._cached = rendered
                self._bodies.clear()  # let the previous rendering go: at scale it is tens of MB

    def prerender(self) -> None:
        """Render the newest view now, so the next scrape finds it ready (called after each publish).

        Publishes that arrive while a render runs are folded into one more render when it ends, so a burst of
        clusters finishing their polls together costs two renders, not one per cluster, and no scrape is left
        to render a view that was published during a render.
        """
        if self._prerender is None or self._prerender.done():
            self._prerender = asyncio.ensure_future(self._catch_up())
            self._prerender.add_done_callback(_ignore_result)

    async def _catch_up(self) -> None:
        while self._cached is None or self._cached.generation < self.store.view.generation:
            await self.current()

    async def _variant(self, rendered: Rendered, key: Variant) -> tuple[Rendered, bytes | GzipPrefix]:
        self._wanted.add(key)
        while True:
            found = rendered.ready(key)
            if found is not None:
                return rendered, found
            try:  # first scrape of this variant: build it off the loop (others wait on the lock)
                return rendered, await off_loop(rendered.variant, key)
            except Released:  # a variant nobody asked for before: render again, with it wanted from now on
                rendered = await self.current(newer_than=rendered)

    def _live_part(self, openmetrics: bool) -> bytes:
        now = time.monotonic()
        found = self._live.get(openmetrics)
        if found is None or now - found[0] >= LIVE_SECONDS:
            found = (now, generate_openmetrics(self.live) if openmetrics else generate_latest(self.live))
            self._live[openmetrics] = found
        return found[1]

    async def caught_up(self) -> Rendered:
        """Wait until the exposition reflects the view published so far (tests and readiness use this)."""
        return await self.current()

    async def body(self, *, openmetrics: bool, compress: bool) -> tuple[bytes, str]:
        """(body, content type) for one scrape.

        A scrape is served the newest finished rendering and never waits for a newer one: the render of a
        just-published view is already under way (``prerender``), and waiting for it would stall every scraper
        once per publish. Only before the first render is there something to wait for.
        """
        rendered = self._cached
        if rendered is None:
            rendered = await self.current()
        elif rendered.generation < self.store.view.generation:
            self.prerender()
        key = (openmetrics, compress)
        rendered, cached = await self._variant(rendered, key)
        live = self._live_part(openmetrics)
        content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
        hit = self._bodies.get(key)
        if hit is not None and hit[0] is rendered and hit[1] is live:
            return hit[2], content_type
        body = cached.finish(live) if isinstance(cached, GzipPrefix) else cached + live
        self._bodies[key] = (rendered, live, body)
        return body, content_type


def _ignore_result(future: asyncio.Future[None]) -> None:
    # A failed prerender is retried by the next scrape, which reports the error itself.
    if not future.cancelled():
        future.exception()
