"""The auto-heal policy: which FAILED connectors and tasks to restart now, and why the others wait.

A pure function of (config, snapshot, time, previous state): no I/O, no clock, no randomness, so every
rule is tested with plain values. The runner feeds it each new snapshot, sends the restarts it asks for,
and reports each outcome back through ``record`` / ``record_unsent``.

Rules, in the order they are checked for each FAILED target (docs/autoheal.md):
operator intent (never PAUSED/STOPPED/... nor the tasks of a PAUSED/STOPPED connector) → persistent
failure (cap) → allow/deny → skip rules (failures a restart cannot fix) → scope → not addressable → lost or
unhealthy worker → grace period → attempt cap → backoff → mass-failure breaker → restart budget.

``observe`` folds a snapshot into what the policy remembers (operator intent decides there which targets are
candidates at all). Each per-target rule is a small named function of a ``Candidate`` and the round's ``Context``
that answers a ``Hold`` or None, listed in order in ``TARGET_RULES``; ``plan_restarts`` applies the cluster's
rules (breaker, budget) to what every per-target rule cleared. ``decide`` only strings them together.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from exporter.fingerprint import fingerprint
from exporter.healer.config import AutohealConfig, BackoffConfig, SkipRule
from exporter.model import FAILED, RUNNING, ClusterSnapshot, first_line
from exporter.versions import RESTART_PLAN, at_least

BUDGET_WINDOW = 60.0  # restarts_per_minute is counted over a sliding minute
# Tasks of a connector in another state (PAUSED, STOPPED, RESTARTING, unknown) are never touched.
TASK_PARENT_STATES = frozenset({RUNNING, FAILED, "UNASSIGNED"})


class Reason(StrEnum):
    """Why a restart was not sent (the ``reason`` label of the suppressed counter)."""

    GRACE = "grace"
    BACKOFF = "backoff"
    BUDGET = "budget"
    BREAKER = "breaker"
    DENIED = "denied"
    DRY_RUN = "dry_run"
    SCOPE = "scope"
    CAP = "cap"
    SKIP = "skip"  # a skip rule says no restart can fix this failure
    # The target's worker is lost or unhealthy (exporter.connect.workers): Connect may still say RUNNING or
    # FAILED under it, but a restart is forwarded to that worker and cannot succeed until the rebalance
    # (scheduled.rebalance.max.delay.ms, 5 min by default) moves the work elsewhere.
    LOST_WORKER = "lost_worker"
    # An earlier restart got Jetty's 400 for a name with a backslash or percent sign: never again (see Outcome).
    NOT_ADDRESSABLE = "not_addressable"


REASONS: tuple[str, ...] = tuple(r.value for r in Reason)


class Outcome(StrEnum):
    """What became of a restart (the ``outcome`` label of the restarts counter)."""

    ACCEPTED = "accepted"
    CONFLICT = "conflict"  # 409 / rebalance: tried again next cycle, no attempt spent
    NOT_FOUND = "not_found"  # 404: the connector or task is gone; its history is forgotten
    ERROR = "error"  # anything else; see Result.spent
    # 400 for a name with "\" or "%": Connect's HTTP server refuses %5C/%25 in any path, so the connector
    # can never be addressed by name over REST. Not retried (the target is marked), no attempt spent.
    NOT_ADDRESSABLE = "not_addressable"
    # 404/405 from a restart endpoint the API does not offer (a Confluent Cloud account without it): the
    # healer stops restarting on that cluster. No attempt spent.
    UNSUPPORTED = "unsupported"
    DRY_RUN = "dry_run"


@dataclass(frozen=True, slots=True)
class TargetKey:
    connector: str
    task: int | None = None  # None: the connector instance itself

    @property
    def kind(self) -> str:
        return "connector" if self.task is None else "task"

    @property
    def task_label(self) -> str:
        return "" if self.task is None else str(self.task)

    def sort_key(self) -> tuple[str, int]:
        return (self.connector, -1 if self.task is None else self.task)


@dataclass(frozen=True, slots=True)
class TargetState:
    failed_since: float | None = None  # snapshot time the current failure was first seen
    attempts: int = 0  # restarts spent since the target was last stable
    last_attempt: float | None = None
    running_since: float | None = None  # first RUNNING observation since the last restart or failure
    persistent: bool = False
    reason: str | None = None  # the last decision, so that only changes are logged
    unaddressable: bool = False  # a restart got the 400 for a name Connect cannot address (NOT_ADDRESSABLE)


@dataclass(frozen=True, slots=True)
class Probe:
    connector: str
    targets: frozenset[TargetKey]
    at: float


@dataclass(frozen=True, slots=True)
class BreakerState:
    open: bool = False
    opened_at: float | None = None
    # Only failures first seen after this count toward opening again: the failures of the outage
    # that a successful probe closed must not reopen it at once.
    closed_at: float | None = None
    probe: Probe | None = None
    last_probe: float | None = None


def _empty_targets() -> Mapping[TargetKey, TargetState]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class PolicyState:
    targets: Mapping[TargetKey, TargetState] = field(default_factory=_empty_targets)
    budget: tuple[float, ...] = ()  # times of the restarts of the last BUDGET_WINDOW seconds
    breaker: BreakerState = BreakerState()


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    key: TargetKey
    restart: bool
    reason: Reason | None  # set when restart is False
    attempts: int  # restarts spent before this decision
    next_attempt_at: float | None  # earliest time grace and backoff allow a restart (None: never)
    worker_id: str
    trace: str  # first line of the stack trace
    changed: bool  # differs from the target's previous decision (log it)
    probe: bool = False
    rule: str | None = None  # the skip rule that matched (reason SKIP)


@dataclass(frozen=True, slots=True)
class RestartGroup:
    """Restarts of one connector. ``combined``: one KIP-745 call (Connect >= 3.0) restarts them all."""

    connector: str
    targets: tuple[TargetKey, ...]
    combined: bool
    probe: bool = False


class EventKind(StrEnum):
    """Something the runner logs once."""

    BREAKER_OPENED = "breaker_opened"
    BREAKER_CLOSED = "breaker_closed"
    PROBE = "probe"  # the open breaker lets one connector's restart through
    PROBE_FAILED = "probe_failed"
    PERSISTENT = "persistent"  # attempts spent: left alone from now on
    RECOVERED = "recovered"  # a persistent failure recovered on its own
    RESET = "reset"  # stable long enough: attempts forgotten


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    kind: EventKind
    key: TargetKey | None = None
    fields: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Plan:
    decisions: tuple[Decision, ...] = ()
    groups: tuple[RestartGroup, ...] = ()
    events: tuple[Event, ...] = ()
    breaker_open: bool = False


@dataclass(frozen=True, slots=True)
class Result:
    key: TargetKey
    outcome: Outcome
    spent: bool  # the worker received and acted on (or refused) the request: counts as an attempt
    forget_connector: bool = False  # a 404 said the whole connector is gone


# --- helpers ------------------------------------------------------------------------------------------


def backoff_delay(cfg: BackoffConfig, attempts: int, key: TargetKey) -> float:
    """Seconds to wait after the ``attempts``-th restart before the next one (attempts >= 1)."""
    delay = cfg.initial
    for _ in range(max(0, attempts - 1)):
        delay *= cfg.multiplier
        if delay >= cfg.max:
            break
    delay = min(delay, cfg.max)
    if cfg.jitter:
        # Deterministic per target and attempt: reproducible, yet spread across targets.
        seed = f"{key.connector}\0{key.task_label}\0{attempts}".encode()
        delay *= 1.0 + cfg.jitter * (zlib.crc32(seed) / 2**32)
    return delay


def cluster_supports_restart_plan(snapshot: ClusterSnapshot) -> bool:
    """Every reachable worker must have it: during a rolling upgrade an old leader would ignore the params."""
    versions = [w.version for w in snapshot.workers if w.reachable]
    return bool(versions) and all(at_least(v, RESTART_PLAN) is True for v in versions)


@lru_cache(maxsize=64)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


def name_allowed(config: AutohealConfig, name: str) -> bool:
    if any(p.fullmatch(name) for p in _compiled(tuple(config.deny))):
        return False
    allow = _compiled(tuple(config.allow))
    return not allow or any(p.fullmatch(name) for p in allow)


def matching_skip_rule(rules: Iterable[SkipRule], trace: str | None) -> str | None:
    """The name of the first rule whose every pattern matches the trace's fingerprint, or None."""
    rules = tuple(rules)
    if not rules:
        return None
    fp = fingerprint(trace)
    head = first_line(trace, limit=2000)
    for rule in rules:
        if rule.exception is not None and not _one(rule.exception).fullmatch(fp.exception):
            continue
        if rule.root_cause is not None and not _one(rule.root_cause).fullmatch(fp.root_cause):
            continue
        if rule.cause is not None and not any(_one(rule.cause).fullmatch(c) for c in fp.causes):
            continue
        if rule.first_line is not None and not _one(rule.first_line).search(head):
            continue
        return rule.name
    return None


@lru_cache(maxsize=256)
def _one(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


# --- what the policy sees ------------------------------------------------------------------------------


def _still_failed(prev: TargetState | None, seen_at: float) -> TargetState:
    """A FAILED target: failed since the first poll that saw it so, and not running."""
    if prev is None:
        return TargetState(failed_since=seen_at)
    if prev.failed_since is None:
        return replace(prev, failed_since=seen_at, running_since=None)
    return replace(prev, running_since=None) if prev.running_since is not None else prev


def observe_target(
    key: TargetKey, prev: TargetState | None, status: str, *, seen_at: float, stable_period: float
) -> tuple[TargetState | None, tuple[Event, ...]]:
    """What to remember of a target after a poll saw it in ``status`` (None: nothing), and what to log."""
    if status == FAILED:
        return _still_failed(prev, seen_at), ()
    if prev is None:
        return None, ()
    events: list[Event] = []
    cur = replace(prev, failed_since=None, reason=None)
    if prev.persistent:
        cur = replace(cur, persistent=False)
        fields = {"state": status, "attempts": prev.attempts}
        events.append(Event(kind=EventKind.RECOVERED, key=key, fields=MappingProxyType(fields)))
    if status == RUNNING:
        since = prev.running_since if prev.running_since is not None else seen_at
        if seen_at - since >= stable_period:
            if prev.attempts:
                fields = {"attempts": prev.attempts}
                events.append(Event(kind=EventKind.RESET, key=key, fields=MappingProxyType(fields)))
            return None, tuple(events)
        cur = replace(cur, running_since=since)
    else:
        cur = replace(cur, running_since=None)
    if cur.attempts == 0 and not cur.persistent:
        return None, tuple(events)  # nothing left to remember
    return cur, tuple(events)


@dataclass(frozen=True, slots=True)
class _Failed:
    """A FAILED target this snapshot names (and was read after our last restart of it)."""

    key: TargetKey
    worker_id: str
    trace: str | None


@dataclass(slots=True)
class Observed:
    """What one snapshot tells the policy: the targets it remembers, and the FAILED ones to decide on."""

    targets: dict[TargetKey, TargetState]
    seen_at: float
    stable_period: float
    events: list[Event] = field(default_factory=list)
    failed: list[_Failed] = field(default_factory=list)
    failed_parts: dict[str, set[TargetKey]] = field(default_factory=dict)  # touchable FAILED targets, by connector
    failed_tasks: list[TargetKey] = field(default_factory=list)
    total_tasks: int = 0

    def note(self, key: TargetKey, status: str) -> bool:
        """Fold one target's status in; False when it was read before our last restart of it (stale)."""
        prev = self.targets.get(key)
        if prev is not None and prev.last_attempt is not None and self.seen_at <= prev.last_attempt:
            return False
        cur, events = observe_target(key, prev, status, seen_at=self.seen_at, stable_period=self.stable_period)
        self.events.extend(events)
        if cur is None:
            self.targets.pop(key, None)
        else:
            self.targets[key] = cur
        return True


def observe(config: AutohealConfig, snapshot: ClusterSnapshot, targets: Mapping[TargetKey, TargetState]) -> Observed:
    """Every connector and task of the snapshot folded into the remembered targets; deleted ones forgotten."""
    seen = Observed(dict(targets), seen_at=snapshot.taken_at, stable_period=config.stable_period)
    present: set[TargetKey] = set()
    for c in snapshot.connectors:
        ckey = TargetKey(c.name)
        present.add(ckey)
        fresh = seen.note(ckey, c.state)
        parts = seen.failed_parts.setdefault(c.name, set())
        if c.state == FAILED:
            parts.add(ckey)
            if fresh:
                seen.failed.append(_Failed(ckey, c.worker_id, c.trace))
        for task in c.tasks:
            seen.total_tasks += 1
            tkey = TargetKey(c.name, task.id)
            present.add(tkey)
            fresh = seen.note(tkey, task.state)
            if task.state != FAILED:
                continue
            seen.failed_tasks.append(tkey)
            # Tasks of a connector in another state (PAUSED, STOPPED, RESTARTING, unknown) are never touched.
            if c.state in TASK_PARENT_STATES:
                parts.add(tkey)
                if fresh:
                    seen.failed.append(_Failed(tkey, task.worker_id, task.trace))
    for key in [k for k in seen.targets if k not in present]:
        del seen.targets[key]  # deleted connector or task: forget it (and its metrics)
    return seen


# --- the rules of one target, in the order they are checked -----------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """A FAILED target as the rules see it."""

    key: TargetKey
    worker_id: str
    trace: str  # the first line of its trace
    full_trace: str | None
    failed_since: float
    state: TargetState  # what the policy remembers of it


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """What the rules see of the round: the settings, the time, this exporter's worker, the impaired workers."""

    config: AutohealConfig
    now: float
    local_worker_id: str | None = None
    impaired: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class Hold:
    """A rule's answer: no restart now, why, and when one may come."""

    reason: Reason
    next_attempt_at: float | None = None  # None: not by waiting
    rule: str | None = None  # the skip rule that matched
    persistent: bool = False  # the attempts are spent: the target is a persistent failure from now on


TargetRule = Callable[[Candidate, Context], Hold | None]


def persistent_failure(c: Candidate, ctx: Context) -> Hold | None:
    """Left alone until it recovers or an operator asks for a retry."""
    return Hold(reason=Reason.CAP) if c.state.persistent else None


def denied_by_name(c: Candidate, ctx: Context) -> Hold | None:
    return None if name_allowed(ctx.config, c.key.connector) else Hold(reason=Reason.DENIED)


def matches_a_skip_rule(c: Candidate, ctx: Context) -> Hold | None:
    """A failure no restart can fix (``autoheal.skip``)."""
    rule = matching_skip_rule(ctx.config.skip, c.full_trace)
    return Hold(reason=Reason.SKIP, rule=rule) if rule is not None else None


def outside_scope(c: Candidate, ctx: Context) -> Hold | None:
    """``scope: local-worker``: only what this exporter's own worker runs."""
    if ctx.config.scope == "local-worker" and c.worker_id != ctx.local_worker_id:
        return Hold(reason=Reason.SCOPE)
    return None


def not_addressable(c: Candidate, ctx: Context) -> Hold | None:
    return Hold(reason=Reason.NOT_ADDRESSABLE) if c.state.unaddressable else None


def on_an_impaired_worker(c: Candidate, ctx: Context) -> Hold | None:
    """A restart is forwarded to the target's worker: useless while that worker is lost or unhealthy."""
    return Hold(reason=Reason.LOST_WORKER) if c.worker_id in ctx.impaired else None


def attempts_spent(c: Candidate, config: AutohealConfig) -> bool:
    return c.state.attempts >= config.max_attempts


def grace_until(c: Candidate, config: AutohealConfig) -> float:
    """A failure gets a grace period to recover on its own; so does the last allowed attempt, to show whether it
    worked."""
    since = c.failed_since
    if attempts_spent(c, config) and c.state.last_attempt is not None:
        since = max(since, c.state.last_attempt)
    return since + config.grace_period


def backoff_until(c: Candidate, config: AutohealConfig) -> float:
    ts = c.state
    if not ts.attempts or ts.last_attempt is None:
        return -math.inf
    return ts.last_attempt + backoff_delay(config.backoff, ts.attempts, c.key)


def in_grace_period(c: Candidate, ctx: Context) -> Hold | None:
    until = grace_until(c, ctx.config)
    if ctx.now >= until:
        return None
    later = None if attempts_spent(c, ctx.config) else max(until, backoff_until(c, ctx.config))
    return Hold(reason=Reason.GRACE, next_attempt_at=later)


def attempts_exhausted(c: Candidate, ctx: Context) -> Hold | None:
    """The last attempt had its grace period and the target still fails: a persistent failure."""
    return Hold(reason=Reason.CAP, persistent=True) if attempts_spent(c, ctx.config) else None


def backing_off(c: Candidate, ctx: Context) -> Hold | None:
    until = backoff_until(c, ctx.config)
    return Hold(reason=Reason.BACKOFF, next_attempt_at=until) if ctx.now < until else None


# Operator intent (PAUSED/STOPPED targets and their tasks) is decided in ``observe``; the cluster's rules (the
# mass-failure breaker, the restart budget) in ``plan_restarts``.
TARGET_RULES: tuple[TargetRule, ...] = (
    persistent_failure,
    denied_by_name,
    matches_a_skip_rule,
    outside_scope,
    not_addressable,
    on_an_impaired_worker,
    in_grace_period,
    attempts_exhausted,
    backing_off,
)


def first_hold(c: Candidate, ctx: Context) -> Hold | None:
    """The answer of the first rule that holds the target back, or None: it may be restarted."""
    for rule in TARGET_RULES:
        hold = rule(c, ctx)
        if hold is not None:
            return hold
    return None


# --- one round ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class Round:
    """The decisions of one round as they are made, and the state they leave."""

    now: float
    targets: dict[TargetKey, TargetState]
    events: list[Event]
    budget: tuple[float, ...]
    breaker: BreakerState
    decisions: list[Decision] = field(default_factory=list)

    def hold(self, c: Candidate, hold: Hold) -> None:
        ts = self.targets[c.key]
        if hold.persistent:
            ts = self.targets[c.key] = replace(ts, persistent=True)
            fields = {"attempts": ts.attempts, "trace": c.trace}
            self.events.append(Event(kind=EventKind.PERSISTENT, key=c.key, fields=MappingProxyType(fields)))
        self.decisions.append(
            Decision(
                key=c.key,
                restart=False,
                reason=hold.reason,
                attempts=ts.attempts,
                next_attempt_at=hold.next_attempt_at,
                worker_id=c.worker_id,
                trace=c.trace,
                changed=ts.reason != hold.reason.value,
                rule=hold.rule,
            )
        )
        self.targets[c.key] = replace(ts, reason=hold.reason.value)

    def restart(self, c: Candidate, *, probe: bool) -> None:
        ts = self.targets[c.key]
        self.decisions.append(
            Decision(
                key=c.key,
                restart=True,
                reason=None,
                attempts=ts.attempts,
                next_attempt_at=self.now,
                worker_id=c.worker_id,
                trace=c.trace,
                changed=True,
                probe=probe,
            )
        )
        self.targets[c.key] = replace(ts, reason="restart")
        self.budget = (*self.budget, self.now)


def probe_due(config: AutohealConfig, breaker: BreakerState, now: float) -> bool:
    """While the breaker is open, one connector is restarted every ``probe_interval`` to learn whether the cause
    is gone."""
    since = breaker.last_probe if breaker.last_probe is not None else breaker.opened_at
    return breaker.open and breaker.probe is None and since is not None and now >= since + config.breaker.probe_interval


def plan_restarts(
    config: AutohealConfig,
    rnd: Round,
    eligible: Mapping[str, list[Candidate]],
    *,
    failed_parts: Mapping[str, set[TargetKey]],
    combined_calls: bool,
) -> list[RestartGroup]:
    """The cluster's rules over the targets every per-target rule cleared, connector by connector in order of the
    oldest failure: the mass-failure breaker (only a probe passes it), then the restart budget."""
    remaining = config.restarts_per_minute - len(rnd.budget)
    probe = probe_due(config, rnd.breaker, rnd.now)
    groups: list[RestartGroup] = []
    for connector, unsorted in eligible.items():
        cands = sorted(unsorted, key=lambda c: c.key.sort_key())
        is_probe = rnd.breaker.open and probe and len(cands) <= remaining
        if rnd.breaker.open and not is_probe:
            for c in cands:
                rnd.hold(c, Hold(reason=Reason.BREAKER, next_attempt_at=rnd.now))
            continue
        probe = probe and not is_probe
        allowed, over = cands[: max(remaining, 0)], cands[max(remaining, 0) :]
        remaining -= len(allowed)
        for c in over:
            rnd.hold(c, Hold(reason=Reason.BUDGET, next_attempt_at=rnd.now))
        if not allowed:
            continue
        for c in allowed:
            rnd.restart(c, probe=is_probe)
        keys = tuple(c.key for c in allowed)
        combined = combined_calls and set(keys) == failed_parts.get(connector, set())
        groups.append(RestartGroup(connector, keys, combined, is_probe))
        if is_probe:
            rnd.breaker = replace(rnd.breaker, probe=Probe(connector, frozenset(keys), rnd.now), last_probe=rnd.now)
            fields = {"connector": connector, "targets": len(keys)}
            rnd.events.append(Event(kind=EventKind.PROBE, fields=MappingProxyType(fields)))
    return groups


def decidable(snapshot: ClusterSnapshot, now: float) -> bool:
    """Whether restarts may be decided on ``snapshot`` at ``now``: its cycle succeeded and it is at most one
    poll interval old (a round that waited longer would act on a state the next poll may already contradict)."""
    return snapshot.up and now - snapshot.taken_at <= snapshot.poll_interval


def decide(
    config: AutohealConfig,
    snapshot: ClusterSnapshot,
    now: float,
    state: PolicyState,
    *,
    local_worker_id: str | None = None,
) -> tuple[Plan, PolicyState]:
    """Decide this cycle's restarts. Nothing is decided from a snapshot that failed (``up`` false: what it holds
    is the last known state, not this cycle's), nor from one older than its poll interval at ``now``."""
    if not decidable(snapshot, now):
        return Plan(breaker_open=state.breaker.open), state
    seen = observe(config, snapshot, state.targets)
    breaker, breaker_events = _update_breaker(
        config,
        breaker=state.breaker,
        targets=seen.targets,
        failed_tasks=seen.failed_tasks,
        total_tasks=seen.total_tasks,
        now=now,
        snapshot=snapshot,
    )
    rnd = Round(
        now=now,
        targets=seen.targets,
        events=[*seen.events, *breaker_events],
        budget=tuple(t for t in state.budget if now - t < BUDGET_WINDOW),
        breaker=breaker,
    )
    ctx = Context(config=config, now=now, local_worker_id=local_worker_id, impaired=snapshot.impaired_worker_ids())
    eligible: dict[str, list[Candidate]] = {}  # connector -> targets cleared by every per-target rule
    for c in _candidates(seen):  # oldest failure first
        hold = first_hold(replace(c, state=rnd.targets[c.key]), ctx)
        if hold is None:
            eligible.setdefault(c.key.connector, []).append(c)
        else:
            rnd.hold(c, hold)
    groups = plan_restarts(
        config,
        rnd,
        eligible,
        failed_parts=seen.failed_parts,
        combined_calls=cluster_supports_restart_plan(snapshot),
    )
    new_state = PolicyState(targets=MappingProxyType(rnd.targets), budget=rnd.budget, breaker=rnd.breaker)
    return Plan(tuple(rnd.decisions), tuple(groups), tuple(rnd.events), rnd.breaker.open), new_state


def _candidates(seen: Observed) -> list[Candidate]:
    out = [
        Candidate(
            key=f.key,
            worker_id=f.worker_id,
            trace=first_line(f.trace),
            full_trace=f.trace,
            failed_since=seen.targets[f.key].failed_since or seen.seen_at,
            state=seen.targets[f.key],
        )
        for f in seen.failed
    ]
    return sorted(out, key=lambda c: (c.failed_since, c.key.sort_key()))


def _update_breaker(
    config: AutohealConfig,
    *,
    breaker: BreakerState,
    targets: Mapping[TargetKey, TargetState],
    failed_tasks: list[TargetKey],
    total_tasks: int,
    now: float,
    snapshot: ClusterSnapshot,
) -> tuple[BreakerState, list[Event]]:
    cfg = config.breaker
    events: list[Event] = []
    live = [k for k in failed_tasks if k in targets and not targets[k].persistent]
    recent_from = now - cfg.window
    if breaker.closed_at is not None:
        recent_from = max(recent_from, breaker.closed_at)
    recent = [k for k in live if (targets[k].failed_since or now) >= recent_from]

    def mass(count: int) -> bool:
        return count >= cfg.min_failed_tasks and count > cfg.max_failed_share * total_tasks

    counts = MappingProxyType({"failed_tasks": len(live), "recent_failed_tasks": len(recent), "tasks": total_tasks})
    if not breaker.open:
        if mass(len(recent)):
            events.append(Event(kind=EventKind.BREAKER_OPENED, fields=counts))
            return BreakerState(open=True, opened_at=now, closed_at=breaker.closed_at), events
        return breaker, events
    if not mass(len(live)):
        events.append(
            Event(kind=EventKind.BREAKER_CLOSED, fields=MappingProxyType({**counts, "why": "failures_cleared"}))
        )
        return BreakerState(closed_at=now), events
    return _judge_probe(config, breaker, targets=targets, snapshot=snapshot, now=now, counts=counts)


def _judge_probe(
    config: AutohealConfig,
    breaker: BreakerState,
    *,
    targets: Mapping[TargetKey, TargetState],
    snapshot: ClusterSnapshot,
    now: float,
    counts: Mapping[str, int],
) -> tuple[BreakerState, list[Event]]:
    """The open breaker's probe, once it had its time or failed again: closed if it stayed RUNNING, else gone."""
    probe = breaker.probe
    if probe is None:
        return breaker, []
    states = _states_of(snapshot, probe.targets)
    failed_again = any(
        states.get(k) == FAILED and (targets[k].failed_since or 0.0) > probe.at for k in probe.targets if k in targets
    )
    if now < probe.at + config.breaker.probe_interval and not failed_again:
        return breaker, []
    if not failed_again and all(states.get(k) == RUNNING for k in probe.targets):
        fields = {**counts, "why": "probe_succeeded", "connector": probe.connector}
        return BreakerState(closed_at=now), [Event(kind=EventKind.BREAKER_CLOSED, fields=MappingProxyType(fields))]
    failed = Event(kind=EventKind.PROBE_FAILED, fields=MappingProxyType({"connector": probe.connector}))
    return replace(breaker, probe=None), [failed]


def _states_of(snapshot: ClusterSnapshot, keys: Iterable[TargetKey]) -> dict[TargetKey, str]:
    wanted = set(keys)
    out: dict[TargetKey, str] = {}
    for c in snapshot.connectors:
        if TargetKey(c.name) in wanted:
            out[TargetKey(c.name)] = c.state
        for t in c.tasks:
            if TargetKey(c.name, t.id) in wanted:
                out[TargetKey(c.name, t.id)] = t.state
    return out


def record(state: PolicyState, result: Result, now: float) -> PolicyState:
    """Fold the outcome of one restart into the state."""
    targets = dict(state.targets)
    key = result.key
    if result.outcome is Outcome.NOT_FOUND:
        gone = [k for k in targets if k.connector == key.connector] if result.forget_connector else [key]
        for k in gone:
            targets.pop(k, None)
        breaker = state.breaker
        if breaker.probe is not None and any(k in breaker.probe.targets for k in gone):
            breaker = replace(breaker, probe=None)
        return replace(state, targets=MappingProxyType(targets), breaker=breaker)
    if result.outcome is Outcome.NOT_ADDRESSABLE:
        prev = targets.get(key, TargetState(failed_since=now))
        targets[key] = replace(prev, unaddressable=True, last_attempt=now, reason=None)
        return record_unsent(replace(state, targets=MappingProxyType(targets)), 1)
    if not result.spent:
        return record_unsent(state, 1)
    prev = targets.get(key, TargetState(failed_since=now))
    targets[key] = replace(prev, attempts=prev.attempts + 1, last_attempt=now, running_since=None, reason=None)
    return replace(state, targets=MappingProxyType(targets))


def record_unsent(state: PolicyState, count: int) -> PolicyState:
    """Planned restarts that were not sent (or not received): give their budget back."""
    budget = list(state.budget)
    for _ in range(min(count, len(budget))):
        budget.pop()
    return replace(state, budget=tuple(budget))


def retry(state: PolicyState, connector: str | None = None, task: int | None = None) -> PolicyState:
    """Forget attempts and persistent marks (all, one connector's, or one target's): the operator's retry."""
    targets = dict(state.targets)
    for key in list(targets):
        if connector is not None and key.connector != connector:
            continue
        if task is not None and key.task != task:
            continue
        ts = targets[key]
        targets[key] = replace(
            ts,
            attempts=0,
            last_attempt=None,
            persistent=False,
            unaddressable=False,
            reason=None,
            failed_since=ts.failed_since,
        )
    return replace(state, targets=MappingProxyType(targets))


def next_attempt_after_restart(config: AutohealConfig, key: TargetKey, ts: TargetState) -> float | None:
    """When a target restarted just now may be restarted again, if it fails again (None: never)."""
    if ts.persistent or ts.attempts >= config.max_attempts or ts.last_attempt is None:
        return None
    return ts.last_attempt + backoff_delay(config.backoff, ts.attempts, key)
