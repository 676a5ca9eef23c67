"""Rendered exposition, cached per store generation.

Snapshot metrics only change when a poll publishes, so they are rendered once per new view (in a worker
thread, so the event loop keeps answering) and every scraper gets the cached bytes, or the cached gzip.
The process metrics (CPU, memory, fds) change all the time and are tiny, so they are rendered per scrape
and appended. For gzip, the cached part's deflate state is kept after a sync flush and copied per scrape
to compress just the tail, so every response is one ordinary gzip stream.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

# Classic names only, so the widely understood 0.0.4 text format.
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4 as TEXT_CONTENT_TYPE
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS_CONTENT_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as _om_generate_latest
from prometheus_client.process_collector import ProcessCollector

from exporter.metrics import SnapshotCollector
from exporter.store import Store

_EOF = b"# EOF\n"
# Untyped upstream; the signature is (registry) -> bytes.
generate_openmetrics: Callable[[CollectorRegistry], bytes] = _om_generate_latest
GZIP_LEVEL = 6


@dataclass(frozen=True, slots=True)
class Rendered:
    generation: int
    text: bytes
    openmetrics: bytes  # without the trailing "# EOF", which goes after the live part
    text_gz: GzipPrefix
    openmetrics_gz: GzipPrefix


@dataclass(frozen=True, slots=True)
class GzipPrefix:
    """Gzip of a prefix, plus the compressor state to continue the same stream with any suffix."""

    data: bytes
    state: Any  # zlib.Compress, flushed with Z_SYNC_FLUSH; copied, never used directly

    @classmethod
    def of(cls, prefix: bytes) -> GzipPrefix:
        compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # wbits 31: gzip header and trailer
        data = compressor.compress(prefix) + compressor.flush(zlib.Z_SYNC_FLUSH)
        return cls(data, compressor)

    def finish(self, suffix: bytes) -> bytes:
        compressor = self.state.copy()
        tail: bytes = compressor.compress(suffix) + compressor.flush()
        return self.data + tail


class Exposition:
    def __init__(self, store: Store, collector: SnapshotCollector) -> None:
        self.store = store
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self.live = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.live)
        self._cached: Rendered | None = None
        self._pending: asyncio.Future[Rendered] | None = None
        self._prerender: asyncio.Future[Rendered] | None = None
        self.renders = 0  # how many times the snapshot part was rendered (tests and benchmarks read it)

    def _render(self, generation: int) -> Rendered:
        text = generate_latest(self.registry)
        om = generate_openmetrics(self.registry)
        om = om.removesuffix(_EOF)
        self.renders += 1
        return Rendered(
            generation,
            text,
            om,
            GzipPrefix.of(text),
            GzipPrefix.of(om),
        )

    async def current(self) -> Rendered:
        """A rendering at least as new as the view at call time; concurrent callers share one render."""
        wanted = self.store.view.generation
        while True:
            cached = self._cached
            if cached is not None and cached.generation >= wanted:
                return cached
            if self._pending is None or self._pending.done():
                self._pending = asyncio.ensure_future(asyncio.to_thread(self._render, self.store.view.generation))
            rendered = await asyncio.shield(self._pending)
            if self._cached is None or rendered.generation > self._cached.generation:
                self._cached = rendered

    def prerender(self) -> None:
        """Render the newest view now, so the next scrape finds it ready (called after each publish)."""
        if self._prerender is None or self._prerender.done():
            self._prerender = asyncio.ensure_future(self.current())
            self._prerender.add_done_callback(_ignore_result)

    async def body(self, *, openmetrics: bool, compress: bool) -> tuple[bytes, str]:
        """(body, content type) for one scrape."""
        rendered = await self.current()
        if openmetrics:
            tail = generate_openmetrics(self.live)
            if compress:
                return rendered.openmetrics_gz.finish(tail), OPENMETRICS_CONTENT_TYPE
            return rendered.openmetrics + tail, OPENMETRICS_CONTENT_TYPE
        tail = generate_latest(self.live)
        if compress:
            return rendered.text_gz.finish(tail), TEXT_CONTENT_TYPE
        return rendered.text + tail, TEXT_CONTENT_TYPE


def _ignore_result(future: asyncio.Future[Rendered]) -> None:
    # A failed prerender is retried by the next scrape, which reports the error itself.
    if not future.cancelled():
        future.exception()
