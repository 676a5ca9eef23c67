"""Assembly and lifecycle: config → pollers (scheduled by APScheduler) → store → web.

The daemon owns one APScheduler ``AsyncIOScheduler`` with one interval job per source: no overlapping
runs of a job, missed runs coalesced. Each job has its own deadline, so a hung cluster never delays another
cluster, the healer or ``/metrics``. Optional features (auto-heal, Confluent Cloud) attach themselves
through ``add_job``, ``add_metrics_group``, ``add_page_section`` and ``add_closer``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING

import httpx
import structlog
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from exporter.config import Config, split_host_port
from exporter.connect.client import build_http_client
from exporter.connect.poller import ConnectPoller
from exporter.deadline import within
from exporter.exposition import Exposition
from exporter.metrics import MetricGroup
from exporter.store import Store
from exporter.web import PageSection, Route, create_app
from exporter.web_security import WebSecurity

if TYPE_CHECKING:
    from exporter.healer.runner import Healer

log = structlog.get_logger("exporter")

JobFunc = Callable[[], Awaitable[None]]
# Grace on top of a job's own deadline before the daemon cancels it outright.
JOB_GRACE_SECONDS = 5.0


class Daemon:
    def __init__(self, config: Config, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.store = Store(expected=[c.name for c in config.clusters])
        self.exposition = Exposition(self.store)
        self.pollers: dict[str, ConnectPoller] = {}
        self.clients: dict[str, httpx.AsyncClient] = {}
        self.healer: Healer | None = None  # set when some cluster enables auto-heal
        self._jobs: list[tuple[str, float, float, JobFunc]] = []
        self._page_sections: list[PageSection] = []
        self._routes: list[Route] = []
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._running: set[asyncio.Task[None]] = set()
        self._scheduler: AsyncIOScheduler | None = None
        self._runner: web.AppRunner | None = None
        self.bound: list[tuple[str, int]] = []
        # --web.config.file: TLS, basic auth, headers (a bad file raises ConfigError here, before any I/O).
        self.web_security: WebSecurity | None = None
        if config.web.config_file is not None:
            open_paths = frozenset({"/healthz"}) if config.web.open_healthz else frozenset()
            self.web_security = WebSecurity(config.web.config_file, open_paths=open_paths)
        self._web_watch: asyncio.Task[None] | None = None

        for cluster in config.clusters:
            client = build_http_client(cluster)
            self.clients[cluster.name] = client
            poller = ConnectPoller(cluster, client, clock=clock)
            self.pollers[cluster.name] = poller
            self.add_job(
                f"connect:{cluster.name}",
                cluster.poll_interval,
                partial(self._poll_connect, poller),
                deadline=cluster.deadline,
            )
        self._attach_features()

    def _attach_features(self) -> None:
        """Optional features wire themselves in here (each import is cheap and side-effect free)."""
        if self.config.confluent_cloud is not None:
            from exporter.cloud.metrics import collect_cloud
            from exporter.cloud.source import CloudSource

            cloud = CloudSource(self.config.confluent_cloud, self.store)
            for job in cloud.jobs():
                self.add_job(job.id, job.interval, job.run)
            self.add_metrics_group(collect_cloud)
            self.add_closer(cloud.aclose)
        if any(c.autoheal.enabled for c in self.config.clusters):
            from exporter.healer.metrics import collect_autoheal
            from exporter.healer.runner import Healer
            from exporter.healer.web import autoheal_section, retry_handler

            # Steps on each new snapshot of the clusters that enable it (docs/autoheal.md): see _poll_connect.
            # It restarts through its cluster's own client (pool, TLS, auth), which the daemon closes last.
            healer = self.healer = Healer(self.config.clusters, self.store, self.clients, clock=self.clock)
            healer.attach()
            self.add_metrics_group(collect_autoheal)
            self.add_page_section(autoheal_section)
            self.add_route(("POST", "/-/autoheal/retry", retry_handler(healer)))
            self.add_closer(healer.stop)

    # -- extension points ------------------------------------------------------------------------------

    def add_job(self, job_id: str, interval: float, func: JobFunc, *, deadline: float | None = None) -> None:
        self._jobs.append((job_id, interval, deadline if deadline is not None else interval, func))

    def add_metrics_group(self, group: MetricGroup) -> None:
        self.exposition.add_group(group)

    def add_page_section(self, section: PageSection) -> None:
        self._page_sections.append(section)

    def add_route(self, route: Route) -> None:
        self._routes.append(route)

    def add_closer(self, closer: Callable[[], Awaitable[None]]) -> None:
        self._closers.append(closer)

    # -- jobs ------------------------------------------------------------------------------------------

    async def _poll_connect(self, poller: ConnectPoller) -> None:
        snapshot = await poller.poll()
        self.store.publish_cluster(snapshot)
        if self.healer is not None:
            self.healer.step(snapshot)  # returns at once: restarts never delay this job or the next poll

    async def _run_job(self, job_id: str, deadline: float, func: JobFunc) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        try:
            await within(deadline + JOB_GRACE_SECONDS, func())
        except TimeoutError:
            log.error("job_overran", job=job_id, deadline_seconds=deadline)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in one source must not stop its schedule or any other source
            log.exception("job_crashed", job=job_id)
        finally:
            self._running.discard(task)

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        self.store.subscribe(lambda _view: self.exposition.prerender())
        scheduler = AsyncIOScheduler(
            event_loop=asyncio.get_running_loop(),
            timezone=dt.UTC,
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        now = dt.datetime.now(dt.UTC)
        for job_id, interval, deadline, func in self._jobs:
            scheduler.add_job(
                partial(self._run_job, job_id, deadline, func),
                "interval",
                seconds=interval,
                id=job_id,
                name=job_id,
                next_run_time=now,  # first poll right away: readiness should not wait a whole interval
                misfire_grace_time=max(1, int(interval)),
            )
        scheduler.start()
        self._scheduler = scheduler

        app = create_app(
            self.store,
            self.exposition,
            telemetry_path=self.config.web.telemetry_path,
            page_sections=self._page_sections,
            routes=self._routes,
        )
        security = self.web_security
        if security is not None:
            security.install(app)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        host, port = split_host_port(self.config.web.listen_address)
        ssl_context = security.ssl_context if security is not None else None
        site = web.TCPSite(runner, host or None, port, reuse_address=True, ssl_context=ssl_context)
        await site.start()
        if security is not None:
            self._web_watch = asyncio.ensure_future(security.watch())
            if security.config.basic_auth_users and not security.tls:
                log.warning("basic_auth_without_tls", hint="passwords cross the network in clear text")
        self._runner = runner
        self.bound = [(str(addr[0]), int(addr[1])) for addr in runner.addresses]
        # Everything alive now (modules, config, clients) lives as long as the process: keep it out of the
        # cyclic GC's full collections, which otherwise stall the event loop (and scrapes) for tens of ms.
        gc.freeze()
        log.info(
            "started",
            listen=[f"{h}:{p}" for h, p in self.bound],
            tls=ssl_context is not None,
            clusters=[c.name for c in self.config.clusters],
            jobs=[j[0] for j in self._jobs],
        )

    async def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        for task in list(self._running):
            task.cancel()
        if self._running:
            await asyncio.wait(list(self._running), timeout=2.0)
        if self._web_watch is not None:
            self._web_watch.cancel()
            self._web_watch = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.web_security is not None:
            self.web_security.close()
        # Closers first: the healer sends its restarts through the clusters' clients closed below.
        for closer in self._closers:
            await closer()
        for client in self.clients.values():
            await client.aclose()
        log.info("stopped")
