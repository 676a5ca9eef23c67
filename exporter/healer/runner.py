"""The healer's event loop side: one decision round per new snapshot of each enabled cluster.

Data flows one way: ``Healer.step`` subscribes to the store's snapshots (``Store.derive``, the last derived step),
and each round's ``HealerReading`` goes to the ``publish`` function the daemon hands the healer; it never reads the
store. ``step`` only notes the snapshot and wakes the cluster's round task, so the poll job is never blocked;
snapshots that arrive while a round is sending restarts are coalesced into the newest one. Rounds of one
cluster never overlap, and a slow or failing cluster never delays another.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

import httpx
import structlog

from exporter.healer.client import Answer, RestartClient, Sent
from exporter.healer.config import AutohealCluster, AutohealConfig, default_worker_id
from exporter.healer.policy import (
    Decision,
    Event,
    EventKind,
    Outcome,
    Plan,
    PolicyState,
    Reason,
    RestartGroup,
    Result,
    TargetKey,
    decidable,
    decide,
    next_attempt_after_restart,
    record,
    record_unsent,
    retry,
)
from exporter.healer.reading import ClusterHealReading, HealerReading
from exporter.model import ClusterSnapshot, SourceKind
from exporter.store import View

log = structlog.get_logger("exporter.healer")


def _wall_clock() -> float:
    return time.time()  # looked up at each call, so freezegun can move it


# How each policy event is logged: (event, warning or info, hint).
_EVENT_LOGS: dict[EventKind, tuple[str, bool, str | None]] = {
    EventKind.BREAKER_OPENED: ("autoheal_breaker_open", True, "restarts held: many tasks failed at once"),
    EventKind.BREAKER_CLOSED: ("autoheal_breaker_closed", False, None),
    EventKind.PROBE: ("autoheal_breaker_probe", False, None),
    EventKind.PROBE_FAILED: ("autoheal_breaker_probe_failed", True, None),
    EventKind.PERSISTENT: (
        "autoheal_persistent_failure",
        True,
        "left alone until it recovers or a retry is requested",
    ),
    EventKind.RECOVERED: ("autoheal_recovered", False, None),
    EventKind.RESET: ("autoheal_attempts_reset", False, None),
}


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


class Restarter(Protocol):
    """Sends one round's restart groups for one cluster (``RestartClient`` for Connect workers)."""

    # Why restarts stopped for good on this cluster (the API lacks the endpoint), else None.
    stopped: str | None

    async def restart(self, group: RestartGroup, preferred: str | None) -> tuple[list[Sent], list[TargetKey]]: ...

    def resume(self) -> None:
        """Try again after ``stopped`` (the operator's retry)."""


@dataclass(frozen=True, slots=True)
class ManagedCluster:
    """A cluster whose snapshots come from another source (Confluent Cloud), healed with the same policy.

    ``view`` turns its snapshot into what the policy reads: FAILED for whatever a restart may fix.
    """

    name: str
    autoheal: AutohealConfig
    restarter: Restarter
    view: Callable[[ClusterSnapshot], ClusterSnapshot]
    kind: SourceKind = SourceKind.CLOUD


class _Cluster:
    """Everything the healer keeps about one cluster (all of it lost on exit, see docs/autoheal.md)."""

    def __init__(
        self,
        name: str,
        autoheal: AutohealConfig,
        client: Restarter,
        *,
        local_worker_id: str | None = None,
        kind: SourceKind = SourceKind.CONNECT,
        view: Callable[[ClusterSnapshot], ClusterSnapshot] | None = None,
        config: AutohealCluster | None = None,
    ) -> None:
        self.name = name
        self.autoheal = autoheal
        self.config = config  # a Connect cluster's settings (None for a managed one)
        self.client = client
        self.kind = kind
        self.view = view
        self.state = PolicyState()
        self.restarts: Counter[tuple[str, str, str]] = Counter()
        self.suppressed: Counter[str] = Counter()
        self.next_attempt: dict[TargetKey, float] = {}
        self.skipped: dict[TargetKey, str] = {}  # targets a skip rule keeps from restarts, with the rule
        self.last_restart: dict[TargetKey, float] = {}  # time of the last accepted restart of each target
        self.breaker_open = False
        self.pending: ClusterSnapshot | None = None
        self.queued: ClusterSnapshot | None = None  # the newest snapshot handed over (each acted on once)
        self.wake = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()
        self.local_worker_id = local_worker_id
        self.warned_unseen = False
        self.task: asyncio.Task[None] | None = None

    @classmethod
    def connect(cls, config: AutohealCluster, client: httpx.AsyncClient) -> _Cluster:
        local = (
            (config.autoheal.worker_id or default_worker_id(config.urls[0]))
            if config.autoheal.scope == "local-worker"
            else None
        )
        return cls(config.name, config.autoheal, RestartClient(config, client), local_worker_id=local, config=config)

    @classmethod
    def managed(cls, managed: ManagedCluster) -> _Cluster:
        return cls(managed.name, managed.autoheal, managed.restarter, kind=managed.kind, view=managed.view)


class Healer:
    """Bounded, backed-off restarts of FAILED connectors and tasks for the clusters that enable it.

    Wiring (daemon)::

        healer = Healer(config.clusters, daemon.publish, clients, clock=clock)  # clients: the pollers' own
        healer.attach()                       # publishes the first HealerReading
        store.derive(healer.step)             # each new snapshot; rounds publish through ``publish``
        daemon.add_closer(healer.stop)
    """

    def __init__(
        self,
        clusters: Iterable[AutohealCluster],
        publish: Callable[[HealerReading], None],
        http_clients: Mapping[str, httpx.AsyncClient],
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``publish``: where each new reading goes (the daemon's). ``http_clients``: each enabled cluster's
        client, shared with its poller; the caller closes them after ``stop()``."""
        self._publish_reading = publish
        self._clock: Callable[[], float] = clock if clock is not None else _wall_clock
        self._all = list(clusters)
        self._http_clients = http_clients
        self._clusters: dict[str, _Cluster] = {}
        self._managed: dict[str, ManagedCluster] = {}
        self._started = False

    def add_managed(self, managed: ManagedCluster) -> None:
        """Heal a cluster of another source (Confluent Cloud); its mode is published even when off."""
        self._managed[managed.name] = managed
        if managed.autoheal.enabled:
            self._clusters[managed.name] = _Cluster.managed(managed)
            log.info("autoheal_enabled", connect_cluster=managed.name, mode=managed.autoheal.mode, kind=managed.kind)
        self._publish()

    async def remove_managed(self, names: Iterable[str]) -> None:
        """Stop healing these managed clusters and forget their history (their source went away)."""
        gone = [self._clusters.pop(n) for n in names if n in self._clusters]
        for n in names:
            self._managed.pop(n, None)
        for cluster in gone:
            if cluster.task is not None:
                cluster.task.cancel()
        await asyncio.gather(*(c.task for c in gone if c.task is not None), return_exceptions=True)
        self._publish()

    def attach(self) -> None:
        """Set up the enabled clusters and publish the first reading; no event loop needed. Each cluster's
        round task starts with its first ``step`` (called on the event loop)."""
        if self._started:
            return
        self._started = True
        for cfg in self._all:
            if not cfg.autoheal.enabled:
                continue
            cluster = _Cluster.connect(cfg, self._http_clients[cfg.name])
            self._clusters[cfg.name] = cluster
            log.info(
                "autoheal_enabled",
                connect_cluster=cfg.name,
                mode=cfg.autoheal.mode,
                scope=cfg.autoheal.scope,
                local_worker_id=cluster.local_worker_id,
            )
        self._publish()

    async def reconfigure(self, clusters: Iterable[AutohealCluster]) -> None:
        """Take a reloaded configuration: a cluster whose settings are unchanged keeps its history (attempts,
        backoff, counters, breaker); a changed or removed one is dropped (its round task ended), a changed or
        added one starts afresh. The new clusters' clients must already be in ``http_clients``."""
        configs = list(clusters)
        wanted = {c.name: c for c in configs if c.autoheal.enabled}
        gone = [
            c for name, c in self._clusters.items() if c.kind is SourceKind.CONNECT and wanted.get(name) != c.config
        ]
        for cluster in gone:
            del self._clusters[cluster.name]
            if cluster.task is not None:
                cluster.task.cancel()
        await asyncio.gather(*(c.task for c in gone if c.task is not None), return_exceptions=True)
        self._all = configs
        for cfg in configs:
            if cfg.name in wanted and cfg.name not in self._clusters:
                self._clusters[cfg.name] = _Cluster.connect(cfg, self._http_clients[cfg.name])
                log.info("autoheal_enabled", connect_cluster=cfg.name, mode=cfg.autoheal.mode, scope=cfg.autoheal.scope)
        self._started = True
        self._publish()

    async def stop(self) -> None:
        tasks = [c.task for c in self._clusters.values() if c.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for cluster in self._clusters.values():
            cluster.task = None

    @property
    def cluster_names(self) -> tuple[str, ...]:
        """Clusters whose auto-heal is enabled (dry-run or enforce)."""
        return tuple(self._clusters)

    def retry(self, cluster: str | None = None, connector: str | None = None, task: int | None = None) -> int:
        """Forget attempts and persistent marks so the targets are tried again; returns targets touched."""
        touched = 0
        for name, c in self._clusters.items():
            if cluster is not None and name != cluster:
                continue
            before = c.state.targets
            c.state = retry(c.state, connector, task)
            if c.client.stopped is not None and connector is None:
                c.client.resume()  # the operator says the endpoint may be there now
            touched += sum(
                1
                for k, ts in before.items()
                if (connector is None or k.connector == connector)
                and (task is None or k.task == task)
                and (ts.attempts or ts.persistent)
            )
            log.info("autoheal_retry_requested", connect_cluster=name, connector=connector, task=task)
        self._publish()
        return touched

    # -- scheduling ---------------------------------------------------------------------------------------

    def step(self, snap: ClusterSnapshot, view: View | None = None) -> None:
        """Hand over the snapshot a cluster's poll just produced (the store's subscription; the healer needs
        nothing else of the ``view``); returns at once (the round runs in the cluster's own task). Snapshots of other
        clusters, and one already handed over, are ignored."""
        cluster = self._clusters.get(snap.cluster)
        if cluster is None or snap is cluster.queued or snap.kind is not cluster.kind:
            return
        cluster.queued = snap
        cluster.pending = snap
        cluster.idle.clear()
        cluster.wake.set()
        if cluster.task is None:
            cluster.task = asyncio.get_running_loop().create_task(
                self._rounds(cluster), name=f"autoheal:{snap.cluster}"
            )

    async def _rounds(self, cluster: _Cluster) -> None:
        while True:
            await cluster.wake.wait()
            cluster.wake.clear()
            snap, cluster.pending = cluster.pending, None
            if snap is not None:
                try:
                    await self.run_round(cluster.name, snap)
                except asyncio.CancelledError:
                    raise
                except Exception:  # a bug must not end healing for good, nor touch the poller
                    log.exception("autoheal_round_crashed", connect_cluster=cluster.name)
            if cluster.pending is None:
                cluster.idle.set()

    async def settled(self) -> None:
        """Wait until every snapshot handed over so far has had its round (tests, orderly shutdown)."""
        for cluster in self._clusters.values():
            await cluster.idle.wait()

    # -- one round ------------------------------------------------------------------------------------------

    async def run_round(self, name: str, snap: ClusterSnapshot) -> None:
        """Decide on one snapshot and carry the decisions out (public for tests and the daemon)."""
        cluster = self._clusters[name]
        cfg = cluster.autoheal
        if cluster.client.stopped is not None:
            return  # the cluster cannot be restarted at all (said once when found out)
        if cluster.view is not None:
            snap = cluster.view(snap)
        now = self._clock()
        plan, cluster.state = decide(cfg, snap, now, cluster.state, local_worker_id=cluster.local_worker_id)
        if not decidable(snap, now):
            if snap.up:
                log.info("autoheal_snapshot_too_old", connect_cluster=name, age_seconds=round(now - snap.taken_at, 1))
            return
        self._check_local_worker(cluster, snap)
        cluster.breaker_open = plan.breaker_open
        for event in plan.events:
            self._log_event(name, event)
        next_attempt, skipped = self._count_holds(cluster, plan)
        by_key = {d.key: d for d in plan.decisions if d.restart}
        for group in plan.groups:
            if cfg.dry_run:
                for key in group.targets:
                    result = Result(key, Outcome.DRY_RUN, spent=True)
                    cluster.state = record(cluster.state, result, self._clock())
                    cluster.suppressed[Reason.DRY_RUN.value] += 1
                    self._count_and_log(cluster, by_key[key], result, None, next_attempt)
                continue
            sent, unsent = await cluster.client.restart(group, snap.status_url)
            for s in sent:
                cluster.state = record(cluster.state, s.result, self._clock())
                self._count_and_log(cluster, by_key[s.result.key], s.result, s.answer, next_attempt)
            if unsent:
                cluster.state = record_unsent(cluster.state, len(unsent))
                next_attempt.update(dict.fromkeys(unsent, now))
        self._forget_absent(cluster, snap)
        cluster.skipped = skipped
        cluster.next_attempt = {k: v for k, v in next_attempt.items() if k in cluster.state.targets}
        self._publish()

    def _count_holds(self, cluster: _Cluster, plan: Plan) -> tuple[dict[TargetKey, float], dict[TargetKey, str]]:
        """Count (and log when it changed) why each target was held; when each may be restarted, and the skip
        rule that holds it."""
        next_attempt: dict[TargetKey, float] = {}
        skipped: dict[TargetKey, str] = {}
        for d in plan.decisions:
            if d.restart:
                continue
            cluster.suppressed[d.reason.value if d.reason else "unknown"] += 1
            if d.rule is not None:
                skipped[d.key] = d.rule
            if d.next_attempt_at is not None:
                next_attempt[d.key] = d.next_attempt_at
            if d.changed:
                self._log_suppressed(cluster.name, d, cluster.autoheal.max_attempts)
        return next_attempt, skipped

    @staticmethod
    def _forget_absent(cluster: _Cluster, snap: ClusterSnapshot) -> None:
        """A deleted connector's or task's series go with it."""
        present = {c.name for c in snap.connectors}
        for k in [k for k in cluster.restarts if k[0] not in present]:
            del cluster.restarts[k]
        targets = {TargetKey(c.name) for c in snap.connectors} | {
            TargetKey(c.name, t.id) for c in snap.connectors for t in c.tasks
        }
        cluster.last_restart = {k: v for k, v in cluster.last_restart.items() if k in targets}

    def _count_and_log(
        self,
        cluster: _Cluster,
        decision: Decision,
        result: Result,
        answer: Answer | None,
        next_attempt: dict[TargetKey, float],
    ) -> None:
        key = result.key
        cfg = cluster.autoheal
        cluster.restarts[(key.connector, key.kind, result.outcome.value)] += 1
        if result.outcome is Outcome.ACCEPTED:
            cluster.last_restart[key] = self._clock()
        ts = cluster.state.targets.get(key)
        if result.outcome in (Outcome.NOT_FOUND, Outcome.NOT_ADDRESSABLE, Outcome.UNSUPPORTED):
            nxt = None
        elif result.spent and ts is not None:
            nxt = next_attempt_after_restart(cfg, key, ts)
        else:
            nxt = self._clock()  # not received: tried again next cycle
        if nxt is not None:
            next_attempt[key] = nxt
        fields: dict[str, Any] = {
            "connect_cluster": cluster.name,
            "connector": key.connector,
            "task": key.task,
            "kind": key.kind,
            "outcome": result.outcome.value,
            "attempt": decision.attempts + 1,
            "max_attempts": cfg.max_attempts,
            "attempt_counted": result.spent,
            "worker_id": decision.worker_id,
            "trace": decision.trace,
            "mode": cfg.mode,
        }
        if decision.probe:
            fields["breaker_probe"] = True
        if answer is not None:
            fields["url"] = answer.url
            fields["status"] = answer.status
            fields["answer"] = answer.describe()
        if nxt is not None and result.outcome is not Outcome.NOT_FOUND:
            fields["next_attempt_at"] = _iso(nxt)
        if result.outcome is Outcome.NOT_FOUND:
            fields["forgotten"] = "connector" if result.forget_connector else key.kind
        if result.outcome is Outcome.NOT_ADDRESSABLE:
            fields["hint"] = (
                "Connect refuses %5C and %25 in any path, so a name with a backslash or percent sign cannot be "
                "restarted, paused or read over REST; not retried. Recreate the connector under another name"
            )
        level = log.info if result.outcome in (Outcome.ACCEPTED, Outcome.DRY_RUN, Outcome.NOT_FOUND) else log.warning
        level("autoheal_restart", **fields)

    def _log_suppressed(self, name: str, d: Decision, max_attempts: int) -> None:
        assert d.reason is not None
        if d.reason is Reason.CAP:
            return  # the "persistent" event said it once
        log.info(
            "autoheal_suppressed",
            connect_cluster=name,
            connector=d.key.connector,
            task=d.key.task,
            kind=d.key.kind,
            reason=d.reason.value,
            attempts=d.attempts,
            max_attempts=max_attempts,
            next_attempt_at=_iso(d.next_attempt_at),
            worker_id=d.worker_id,
            trace=d.trace,
            **({"skip_rule": d.rule} if d.rule is not None else {}),
        )

    def _log_event(self, name: str, event: Event) -> None:
        fields: dict[str, Any] = {"connect_cluster": name, **event.fields}
        if event.key is not None:
            fields.update(connector=event.key.connector, task=event.key.task, kind=event.key.kind)
        message, warn, hint = _EVENT_LOGS[event.kind]
        if hint is not None:
            fields["hint"] = hint
        (log.warning if warn else log.info)(message, **fields)

    def _check_local_worker(self, cluster: _Cluster, snap: ClusterSnapshot) -> None:
        """Say once if the local worker id matches nothing: a mistyped id would silently heal nothing."""
        wid = cluster.local_worker_id
        if wid is None or cluster.warned_unseen or not snap.connectors:
            return
        seen = {c.worker_id for c in snap.connectors} | {t.worker_id for c in snap.connectors for t in c.tasks}
        seen.discard("")
        if seen and wid not in seen:
            cluster.warned_unseen = True
            log.warning(
                "autoheal_local_worker_unseen",
                connect_cluster=cluster.name,
                worker_id=wid,
                seen_worker_ids=sorted(seen)[:20],
                hint="set autoheal.worker_id to this worker's id as Connect reports it",
            )

    # -- publishing ---------------------------------------------------------------------------------------

    def reading(self) -> HealerReading:
        clusters: dict[str, ClusterHealReading] = {}
        modes = [(cfg.name, cfg.autoheal) for cfg in self._all]
        modes += [(m.name, m.autoheal) for m in self._managed.values()]
        for name, heal in modes:
            c = self._clusters.get(name)
            if c is None:
                clusters[name] = ClusterHealReading(mode=heal.mode, scope=heal.scope)
                continue
            persistent = tuple(
                sorted((k for k, ts in c.state.targets.items() if ts.persistent), key=TargetKey.sort_key)
            )
            unaddressable = tuple(
                sorted((k for k, ts in c.state.targets.items() if ts.unaddressable), key=TargetKey.sort_key)
            )
            stopped = c.client.stopped
            clusters[name] = ClusterHealReading(
                mode=heal.mode,
                scope=heal.scope,
                restarts=MappingProxyType(dict(c.restarts)),
                suppressed=MappingProxyType(dict(c.suppressed)),
                persistent=persistent,
                unaddressable=unaddressable,
                next_attempt=MappingProxyType(
                    {}
                    if stopped is not None
                    else {k: v for k, v in c.next_attempt.items() if k not in persistent and k not in unaddressable}
                ),
                breaker_open=c.breaker_open,
                local_worker_id=c.local_worker_id,
                skipped=MappingProxyType(dict(c.skipped)),
                last_restart=MappingProxyType(dict(c.last_restart)),
                stopped=stopped,
            )
        return HealerReading(clusters=MappingProxyType(clusters))

    def _publish(self) -> None:
        self._publish_reading(self.reading())

    # For tests and the status page: the policy state of one cluster.
    def state(self, name: str) -> PolicyState:
        return self._clusters[name].state
