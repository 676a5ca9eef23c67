"""The auto-heal policy: which FAILED connectors and tasks to restart now, and why the others wait.

A pure function of (config, snapshot, time, previous state): no I/O, no clock, no randomness, so every
rule is tested with plain values. The runner feeds it each new snapshot, sends the restarts it asks for,
and reports each outcome back through ``record`` / ``record_unsent``.

Rules, in the order they are checked for each FAILED target (docs/autoheal.md):
operator intent (never PAUSED/STOPPED/... nor the tasks of a PAUSED/STOPPED connector) → persistent
failure (cap) → allow/deny → skip rules (failures a restart cannot fix) → scope → not addressable → lost or
unhealthy worker → grace period → attempt cap → backoff → mass-failure breaker → restart budget.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from exporter.failures.fingerprint import fingerprint
from exporter.healer.config import AutohealConfig, BackoffConfig, SkipRule
from exporter.model import FAILED, RUNNING, ClusterSnapshot, first_line

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
    DRY_RUN = "dry_run"


OUTCOMES: tuple[str, ...] = tuple(o.value for o in Outcome)


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


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class Event:
    """Something to log once: breaker_opened, breaker_closed, probe_failed, persistent, recovered, reset."""

    kind: str
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


_VERSION = re.compile(r"^\s*(\d+)\.(\d+)")


def supports_restart_plan(version: str | None) -> bool:
    """True when a worker of this version has ``restart?includeTasks&onlyFailed`` (Kafka 3.0, KIP-745).

    Confluent Platform reports its own version with a ``-ccs``/``-ce`` suffix: CP 7.0 ships Kafka 3.0.
    """
    if not version:
        return False
    m = _VERSION.match(version)
    if not m:
        return False
    major = int(m.group(1))
    if re.search(r"-(ccs|ce)\b", version):
        return major >= 7
    return major >= 3


def cluster_supports_restart_plan(snapshot: ClusterSnapshot) -> bool:
    """Every reachable worker must have it: during a rolling upgrade an old leader would ignore the params."""
    versions = [w.version for w in snapshot.workers if w.reachable]
    return bool(versions) and all(supports_restart_plan(v) for v in versions)


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


# --- the policy ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Candidate:
    key: TargetKey
    worker_id: str
    trace: str
    failed_since: float
    full_trace: str | None = None


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

    seen_at = snapshot.taken_at
    targets: dict[TargetKey, TargetState] = dict(state.targets)
    events: list[Event] = []
    stale: set[TargetKey] = set()
    present: set[TargetKey] = set()
    candidates: list[_Candidate] = []
    failed_parts: dict[str, set[TargetKey]] = {}  # every touchable FAILED target, per connector
    failed_tasks: list[TargetKey] = []
    total_tasks = 0

    def observe(key: TargetKey, status: str) -> None:
        prev = targets.get(key)
        if prev is not None and prev.last_attempt is not None and seen_at <= prev.last_attempt:
            stale.add(key)  # this status was read before our last restart of it
            return
        if status == FAILED:
            if prev is None:
                targets[key] = TargetState(failed_since=seen_at)
            elif prev.failed_since is None:
                targets[key] = replace(prev, failed_since=seen_at, running_since=None)
            elif prev.running_since is not None:
                targets[key] = replace(prev, running_since=None)
            return
        if prev is None:
            return
        cur = replace(prev, failed_since=None, reason=None)
        if prev.persistent:
            cur = replace(cur, persistent=False)
            events.append(Event("recovered", key, MappingProxyType({"state": status, "attempts": prev.attempts})))
        if status == RUNNING:
            since = prev.running_since if prev.running_since is not None else seen_at
            if seen_at - since >= config.stable_period:
                if prev.attempts:
                    events.append(Event("reset", key, MappingProxyType({"attempts": prev.attempts})))
                del targets[key]
                return
            cur = replace(cur, running_since=since)
        else:
            cur = replace(cur, running_since=None)
        if cur.attempts == 0 and not cur.persistent:
            del targets[key]  # nothing left to remember
        else:
            targets[key] = cur

    for c in snapshot.connectors:
        ckey = TargetKey(c.name)
        present.add(ckey)
        observe(ckey, c.state)
        parts = failed_parts.setdefault(c.name, set())
        if c.state == FAILED:
            parts.add(ckey)
            if ckey not in stale:
                candidates.append(_Candidate(ckey, c.worker_id, first_line(c.trace), 0.0, c.trace))
        for task in c.tasks:
            total_tasks += 1
            tkey = TargetKey(c.name, task.id)
            present.add(tkey)
            observe(tkey, task.state)
            if task.state != FAILED:
                continue
            failed_tasks.append(tkey)
            if c.state in TASK_PARENT_STATES:
                parts.add(tkey)
                if tkey not in stale:
                    candidates.append(_Candidate(tkey, task.worker_id, first_line(task.trace), 0.0, task.trace))

    for key in [k for k in targets if k not in present]:
        del targets[key]  # deleted connector or task: forget it (and its metrics)

    for cand in candidates:
        cand.failed_since = targets[cand.key].failed_since or seen_at

    breaker, breaker_events = _update_breaker(
        config,
        breaker=state.breaker,
        targets=targets,
        failed_tasks=failed_tasks,
        total_tasks=total_tasks,
        now=now,
        snapshot=snapshot,
    )
    events.extend(breaker_events)

    budget = tuple(t for t in state.budget if now - t < BUDGET_WINDOW)
    remaining = config.restarts_per_minute - len(budget)

    decisions: list[Decision] = []
    eligible: dict[str, list[_Candidate]] = {}  # connector -> targets cleared by every per-target rule

    def suppress(cand: _Candidate, reason: Reason, next_at: float | None, rule: str | None = None) -> None:
        ts = targets[cand.key]
        decisions.append(
            Decision(
                cand.key,
                False,
                reason,
                ts.attempts,
                next_at,
                cand.worker_id,
                cand.trace,
                changed=ts.reason != reason.value,
                rule=rule,
            )
        )
        targets[cand.key] = replace(ts, reason=reason.value)

    impaired = snapshot.impaired_worker_ids()
    candidates.sort(key=lambda c: (c.failed_since, c.key.sort_key()))
    for cand in candidates:
        ts = targets[cand.key]
        if ts.persistent:
            suppress(cand, Reason.CAP, None)
            continue
        if not name_allowed(config, cand.key.connector):
            suppress(cand, Reason.DENIED, None)
            continue
        rule = matching_skip_rule(config.skip, cand.full_trace)
        if rule is not None:
            suppress(cand, Reason.SKIP, None, rule)
            continue
        if config.scope == "local-worker" and cand.worker_id != local_worker_id:
            suppress(cand, Reason.SCOPE, None)
            continue
        if ts.unaddressable:
            suppress(cand, Reason.NOT_ADDRESSABLE, None)
            continue
        if cand.worker_id in impaired:
            suppress(cand, Reason.LOST_WORKER, None)
            continue
        grace_from = cand.failed_since
        capped = ts.attempts >= config.max_attempts
        if capped and ts.last_attempt is not None:
            # Judge the last attempt only once it had a grace period to show whether it worked.
            grace_from = max(grace_from, ts.last_attempt)
        grace_until = grace_from + config.grace_period
        backoff_until = (
            ts.last_attempt + backoff_delay(config.backoff, ts.attempts, cand.key)
            if ts.attempts and ts.last_attempt is not None
            else -math.inf
        )
        if now < grace_until:
            suppress(cand, Reason.GRACE, None if capped else max(grace_until, backoff_until))
            continue
        if capped:
            targets[cand.key] = replace(ts, persistent=True)
            events.append(
                Event("persistent", cand.key, MappingProxyType({"attempts": ts.attempts, "trace": cand.trace}))
            )
            suppress(cand, Reason.CAP, None)
            continue
        if now < backoff_until:
            suppress(cand, Reason.BACKOFF, backoff_until)
            continue
        eligible.setdefault(cand.key.connector, []).append(cand)

    groups: list[RestartGroup] = []
    plan_ok = cluster_supports_restart_plan(snapshot)
    probe_from = breaker.last_probe if breaker.last_probe is not None else breaker.opened_at
    probe_due = (
        breaker.open
        and breaker.probe is None
        and probe_from is not None
        and now >= probe_from + config.breaker.probe_interval
    )
    for connector, cands in eligible.items():  # in order of the oldest failure
        cands.sort(key=lambda c: c.key.sort_key())
        is_probe = False
        if breaker.open:
            if probe_due and len(cands) <= remaining:
                is_probe, probe_due = True, False
            else:
                for cand in cands:
                    suppress(cand, Reason.BREAKER, now)
                continue
        allowed: list[_Candidate] = []
        for cand in cands:
            if remaining > 0:
                allowed.append(cand)
                remaining -= 1
            else:
                suppress(cand, Reason.BUDGET, now)
        if not allowed:
            continue
        keys = tuple(c.key for c in allowed)
        for cand in allowed:
            ts = targets[cand.key]
            decisions.append(
                Decision(cand.key, True, None, ts.attempts, now, cand.worker_id, cand.trace, True, is_probe)
            )
            targets[cand.key] = replace(ts, reason="restart")
            budget = (*budget, now)
        combined = plan_ok and set(keys) == failed_parts.get(connector, set())
        groups.append(RestartGroup(connector, keys, combined, is_probe))
        if is_probe:
            breaker = replace(breaker, probe=Probe(connector, frozenset(keys), now), last_probe=now)
            events.append(Event("probe", None, MappingProxyType({"connector": connector, "targets": len(keys)})))

    new_state = PolicyState(targets=MappingProxyType(targets), budget=budget, breaker=breaker)
    return Plan(tuple(decisions), tuple(groups), tuple(events), breaker.open), new_state


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
            events.append(Event("breaker_opened", None, counts))
            return BreakerState(open=True, opened_at=now, closed_at=breaker.closed_at), events
        return breaker, events
    if not mass(len(live)):
        events.append(Event("breaker_closed", None, MappingProxyType({**counts, "why": "failures_cleared"})))
        return BreakerState(closed_at=now), events
    probe = breaker.probe
    if probe is None:
        return breaker, events
    states = _states_of(snapshot, probe.targets)
    failed_again = any(
        states.get(k) == FAILED and (targets[k].failed_since or 0.0) > probe.at for k in probe.targets if k in targets
    )
    if now >= probe.at + cfg.probe_interval or failed_again:
        if not failed_again and all(states.get(k) == RUNNING for k in probe.targets):
            events.append(
                Event(
                    "breaker_closed",
                    None,
                    MappingProxyType({**counts, "why": "probe_succeeded", "connector": probe.connector}),
                )
            )
            return BreakerState(closed_at=now), events
        events.append(Event("probe_failed", None, MappingProxyType({"connector": probe.connector})))
        return replace(breaker, probe=None), events
    return breaker, events


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
