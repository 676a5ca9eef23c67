"""Assembly and lifecycle: config → sources (scheduled by APScheduler) → store → readers and web.

The daemon owns one APScheduler ``AsyncIOScheduler`` with one interval job per source: no overlapping
runs of a job, missed runs coalesced. Each job has its own deadline, so a hung cluster never delays another
cluster, the healer or ``/metrics``. A job returns what it read (snapshots and readings) and the daemon alone
publishes it (``publish``); the steps that derive readings from the snapshots subscribe to the store in one order:

1. the failure tracker (``FailuresReading``, from every snapshot, Connect and Cloud);
2. the offsets readers (each notes its cluster's newest snapshot: its next run reads the connectors it names);
3. the source-topics readers (likewise);
4. the healer (notes the snapshot and wakes the cluster's round; a round's ``HealerReading`` comes back through
   ``publish``).

The daemon names no feature: every feature registers in ``exporter.features`` (its plug: the jobs it adds, its
derived step, what a reload drops; its metric groups and page sections), and the daemon runs the plugs in order.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import os
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

import httpx
import structlog
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from exporter.checks import review
from exporter.config import ClusterConfig, Config, split_host_port
from exporter.config_reading import ConfigReading
from exporter.deadline import within
from exporter.exposition import Exposition
from exporter.features import PAGE_SECTIONS, BrokersOf, JobFunc, Plug, cluster_client, metric_groups, plugs
from exporter.model import ClusterSnapshot
from exporter.repeats import RepeatLimiter
from exporter.settings import ConfigError
from exporter.store import Store, View
from exporter.web import Route, create_app
from exporter.web_security import WebSecurity

log = structlog.get_logger("exporter")

P = TypeVar("P", bound=Plug)
# Grace on top of a job's own deadline before the daemon cancels it outright.
JOB_GRACE_SECONDS = 5.0


class ListenError(OSError):
    """The listen address cannot be bound (taken, not local, not permitted)."""

    def __init__(self, address: str, cause: OSError) -> None:
        reason = os.strerror(cause.errno).lower() if cause.errno else str(cause)
        super().__init__(cause.errno, f"cannot listen on {address}: {reason}")
        self.address = address
        self.reason = reason

    def __str__(self) -> str:
        return str(self.strerror)


def reloaded_clusters(old: Config, new: Config) -> set[str]:
    """Clusters a reload removes, adds or changes in what their poller uses (auto-heal settings alone are the
    healer's business: the poller, its client and counters stay)."""

    def polling(c: ClusterConfig) -> ClusterConfig:
        return c.model_copy(update={"autoheal": None})

    before = {c.name: polling(c) for c in old.clusters}
    after = {c.name: polling(c) for c in new.clusters}
    return {n for n in before.keys() | after.keys() if before.get(n) != after.get(n)}


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        loader: Callable[[], Config] | None = None,
        brokers: BrokersOf | None = None,
    ) -> None:
        """``loader`` re-reads the configuration (file, environment, flags) for ``reload``. ``brokers`` gives a
        cluster's brokers from elsewhere than ``clusters[].kafka`` (the demo's simulated topics)."""
        self.config = config
        self.clock = clock
        self.loader = loader
        self.brokers: BrokersOf = brokers if brokers is not None else (lambda _cluster: None)
        self.store = Store(expected=[c.name for c in config.clusters])
        self.exposition = Exposition(self.store, metric_groups())
        self.clients: dict[str, httpx.AsyncClient] = {}
        self._jobs: dict[str, tuple[float, float, JobFunc]] = {}
        self._job_tasks: dict[str, asyncio.Task[None]] = {}
        # Every feature, in the order of its derived step (see the module's docstring).
        self.plugs = plugs()
        for plug in self.plugs:
            step = plug.step()
            if step is not None:
                self.store.derive(step)
        self._routes: list[Route] = []
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._running: set[asyncio.Task[None]] = set()
        self._scheduler: AsyncIOScheduler | None = None
        self._runner: web.AppRunner | None = None
        self._reload_lock = asyncio.Lock()
        self.bound: list[tuple[str, int]] = []
        # --web.config.file: TLS, basic auth, headers (a bad file raises ConfigError here, before any I/O).
        self.web_security: WebSecurity | None = None
        if config.web.config_file is not None:
            open_paths = frozenset({"/healthz"}) if config.web.open_healthz else frozenset()
            self.web_security = WebSecurity(config.web.config_file, open_paths=open_paths)
        self._web_watch: asyncio.Task[None] | None = None
        # Warnings that repeat every cycle, shared by the sources: logged once, then summarised, always counted.
        self.warnings = RepeatLimiter()
        self._warnings_published = 0

        for cluster in config.clusters:
            self._add_cluster(cluster)
        self.publish(config.series_budget(), ConfigReading(last_reload_successful=True, last_success=clock()))
        if config.web.enable_lifecycle:
            self.add_route(("POST", "/-/reload", self._reload_handler))
        for plug in self.plugs:
            plug.attach(self, config)

    def _add_cluster(self, cluster: ClusterConfig, client: httpx.AsyncClient | None = None) -> None:
        if client is None:
            client = cluster_client(cluster)
        self.clients[cluster.name] = client
        for plug in self.plugs:
            plug.add_cluster(self, cluster, client)

    def plug(self, kind: type[P]) -> P:
        """The daemon's plug of type ``kind`` (tests and tools look into a feature through it)."""
        return next(p for p in self.plugs if isinstance(p, kind))

    @property
    def serving(self) -> bool:
        return self._runner is not None

    @property
    def view(self) -> View:
        return self.store.view

    def expect(self, name: str) -> None:
        """A source the readiness check waits for (its first snapshot is due)."""
        self.store.expect(name)

    def discard(self, kind: type[object]) -> None:
        """Drop a reading whose feature a reload switched off."""
        self.store.discard(kind)

    def forget_cluster(self, name: str) -> None:
        """A source no longer configured: its series vanish with the next render, with what was derived of it."""
        self.store.remove_cluster(name)
        for plug in self.plugs:
            plug.forget_cluster(self, name)

    # -- extension points ------------------------------------------------------------------------------

    def add_job(self, job_id: str, interval: float, func: JobFunc, *, deadline: float | None = None) -> None:
        self._jobs[job_id] = (interval, deadline if deadline is not None else interval, func)
        if self._scheduler is not None:  # added by a reload: runs at once, like every job at start
            self._schedule(self._scheduler, job_id)

    def remove_job(self, job_id: str) -> None:
        """Unschedule a job and cancel a run in progress (a reload removed or replaced its source)."""
        self._jobs.pop(job_id, None)
        if self._scheduler is not None and self._scheduler.get_job(job_id) is not None:
            self._scheduler.remove_job(job_id)
        task = self._job_tasks.get(job_id)
        if task is not None:
            task.cancel()

    def add_route(self, route: Route) -> None:
        self._routes.append(route)

    def add_closer(self, closer: Callable[[], Awaitable[None]]) -> None:
        self._closers.append(closer)

    # -- publishing ----------------------------------------------------------------------------------

    def publish(self, *items: object) -> None:
        """The one way into the store: snapshots (then the derived steps run) and readings, in order."""
        for item in items:
            if isinstance(item, ClusterSnapshot):
                self.store.publish_cluster(item)
            elif item is not None:
                self.store.publish(item)

    async def _run_job(self, job_id: str, deadline: float, func: JobFunc) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        self._job_tasks[job_id] = task
        try:
            self.publish(*await within(deadline + JOB_GRACE_SECONDS, func()))
        except TimeoutError:
            log.error("job_overran", job=job_id, deadline_seconds=deadline)
        except asyncio.CancelledError:
            # Only the daemon cancels a job (stop, or a reload that removed its source): the run simply ends.
            # Re-raising would make APScheduler log a "raised an exception" traceback for a normal shutdown.
            log.debug("job_cancelled", job=job_id)
        except Exception:  # a bug in one source must not stop its schedule or any other source
            log.exception("job_crashed", job=job_id)
        finally:
            self._running.discard(task)
            if self._job_tasks.get(job_id) is task:
                del self._job_tasks[job_id]
            self._publish_warnings()

    def _publish_warnings(self) -> None:
        """The sources' repeat-limited warnings, counted: published after each job run that added some."""
        total = sum(self.warnings.counts.values())
        if total != self._warnings_published:
            self._warnings_published = total
            self.publish(self.warnings.reading())

    # -- reload --------------------------------------------------------------------------------------------

    async def reload(self) -> bool:
        """Re-read the configuration (``loader``: file, environment, flags) and swap it in (SIGHUP, POST
        /-/reload). Everything is validated and every new client built before anything changes; on any error the
        old configuration stays in use. Clusters whose settings are unchanged keep their job, snapshot, counters
        and auto-heal history; ``web`` and ``log`` are read at start only."""
        async with self._reload_lock:
            fresh: dict[str, httpx.AsyncClient] = {}
            try:
                if self.loader is None:
                    raise ConfigError("no configuration source to reload from")
                new = await asyncio.to_thread(self.loader)  # reads files: keep the event loop free
                findings = review(new, web_config=False)  # the web config file has its own watcher
                findings.raise_errors()
                for warning in findings.warnings:
                    log.warning("config_warning", problem=warning)
                changed = reloaded_clusters(self.config, new)
                for cluster in new.clusters:
                    if cluster.name in changed:
                        fresh[cluster.name] = cluster_client(cluster)
            except Exception as exc:  # whatever went wrong (file, validation, TLS material), the old config stays
                for client in fresh.values():
                    await client.aclose()
                previous = self.store.view.reading(ConfigReading)
                self.publish(ConfigReading(False, previous.last_success if previous else 0.0))
                log.error("config_reload_failed", error=str(exc), error_type=type(exc).__name__)
                await self.exposition.caught_up()
                return False
            await self._apply(new, changed, fresh)
            self.publish(ConfigReading(True, self.clock()))
            # Scrapes serve the newest finished rendering: once this returns, none serves a removed cluster.
            await self.exposition.caught_up()
            return True

    async def _apply(self, new: Config, changed: set[str], fresh: dict[str, httpx.AsyncClient]) -> None:
        old = self.config
        if (new.web, new.log) != (old.web, old.log):
            log.warning("config_reload_ignored", keys=["web", "log"], hint="read at start only: restart to apply")
        names = {c.name for c in new.clusters}
        retired: list[httpx.AsyncClient] = []
        for name in sorted(changed & set(self.clients)):
            for plug in self.plugs:
                plug.drop_cluster(self, name)
            retired.append(self.clients.pop(name))
            if name not in names:
                self.forget_cluster(name)
        self.config = new.model_copy(update={"web": old.web, "log": old.log})
        for cluster in new.clusters:
            if cluster.name in fresh:
                self.clients[cluster.name] = fresh[cluster.name]
                self._add_cluster(cluster, client=fresh[cluster.name])
        for plug in self.plugs:
            await plug.reload(self, old, new)
        self.publish(new.series_budget())
        for client in retired:  # after the healer let go of them
            await client.aclose()
        log.info(
            "config_reloaded",
            clusters=sorted(names),
            replaced=sorted(changed & names),
            removed=sorted(changed - names),
            cloud=new.confluent_cloud is not None,
        )

    async def _reload_handler(self, _: web.Request) -> web.StreamResponse:
        if await self.reload():
            return web.Response(text="configuration reloaded\n")
        return web.Response(status=500, text="configuration reload failed; the previous one stays in use (see log)\n")

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the listener, then start the jobs: a taken address fails here (``ListenError``) before any job ran."""
        app = create_app(
            self.store,
            self.exposition,
            telemetry_path=self.config.web.telemetry_path,
            page_sections=PAGE_SECTIONS,
            routes=self._routes,
        )
        security = self.web_security
        if security is not None:
            security.install(app)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        address = self.config.web.listen_address
        host, port = split_host_port(address)
        ssl_context = security.ssl_context if security is not None else None
        site = web.TCPSite(runner, host or None, port, reuse_address=True, ssl_context=ssl_context)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ListenError(address, exc) from None
        self._runner = runner
        self.bound = [(str(addr[0]), int(addr[1])) for addr in runner.addresses]

        self.store.subscribe(lambda _view: self.exposition.prerender())
        scheduler = AsyncIOScheduler(
            event_loop=asyncio.get_running_loop(),
            timezone=dt.UTC,
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        for job_id in self._jobs:
            self._schedule(scheduler, job_id)
        scheduler.start()
        self._scheduler = scheduler
        if security is not None:
            self._web_watch = asyncio.ensure_future(security.watch())
            if security.config.basic_auth_users and not security.tls:
                log.warning("basic_auth_without_tls", hint="passwords cross the network in clear text")
        # Everything alive now (modules, config, clients) lives as long as the process: keep it out of the
        # cyclic GC's full collections, which otherwise stall the event loop (and scrapes) for tens of ms.
        gc.freeze()
        log.info(
            "started",
            listen=[f"{h}:{p}" for h, p in self.bound],
            tls=ssl_context is not None,
            clusters=[c.name for c in self.config.clusters],
            jobs=list(self._jobs),
        )

    def _schedule(self, scheduler: AsyncIOScheduler, job_id: str) -> None:
        interval, deadline, func = self._jobs[job_id]
        scheduler.add_job(
            partial(self._run_job, job_id, deadline, func),
            "interval",
            seconds=interval,
            id=job_id,
            name=job_id,
            next_run_time=dt.datetime.now(dt.UTC),  # first poll right away: readiness should not wait an interval
            misfire_grace_time=max(1, int(interval)),
        )

    async def stop(self) -> None:
        started = self._runner is not None
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
        for plug in self.plugs:
            await plug.aclose()
        for client in self.clients.values():
            await client.aclose()
        if started:  # a start that could not bind says so itself
            log.info("stopped")
