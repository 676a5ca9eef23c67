"""The failure history of one cluster across polls, as pure functions of (history, snapshot).

For every connector and task: the state seen last, since when it has been failed, and the changes of state
between polls (counted per connector and new state, and kept in a bounded timeline). Targets are keyed by
connector and task id, never by worker, so a failed task that moves to another worker keeps its
failed-since; recovery (any state that is not a failed one) ends it. A snapshot that failed (``up`` false)
changes nothing: what was not seen is neither a change nor a recovery (its failures are those of the last known
state it holds). The first sight of a target is not a
transition; a deleted connector or task is forgotten, with its counts. An auto-heal restart after which the next
poll finds the target failed again counts as going to RUNNING and back (``advance``'s ``restarts``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from exporter.failures.health import is_failed
from exporter.failures.reading import ClusterFailures, Failure, Transition
from exporter.fingerprint import fingerprint
from exporter.model import RUNNING, ClusterSnapshot, SourceKind, first_line

TIMELINE_LIMIT = 100  # transitions kept per cluster for the status page

Target = tuple[str, int | None]  # (connector, task id or None for the connector instance)


@dataclass(frozen=True, slots=True)
class History:
    states: Mapping[Target, str] = field(default_factory=lambda: MappingProxyType({}))
    failed_since: Mapping[Target, float] = field(default_factory=lambda: MappingProxyType({}))
    transitions: Mapping[tuple[str, str], int] = field(default_factory=lambda: MappingProxyType({}))
    timeline: tuple[Transition, ...] = ()
    # The auto-heal restart (its time) already folded in, per target: each restart counts once.
    restarts: Mapping[Target, float] = field(default_factory=lambda: MappingProxyType({}))


_NO_RESTARTS: Mapping[Target, float] = MappingProxyType({})


def _observed(snapshot: ClusterSnapshot) -> dict[Target, str]:
    seen: dict[Target, str] = {}
    for c in snapshot.connectors:
        seen[(c.name, None)] = c.state
        for t in c.tasks:
            seen[(c.name, t.id)] = t.state
    return seen


def advance(
    history: History,
    snapshot: ClusterSnapshot,
    *,
    restarts: Mapping[Target, float] = _NO_RESTARTS,
    limit: int = TIMELINE_LIMIT,
) -> History:
    """The history after one more snapshot of the same cluster.

    ``restarts``: when auto-heal last restarted each target (accepted restarts). A target restarted before this
    cycle began that is failed now as it was before went RUNNING and failed again between two polls: that counts
    as the two transitions it was (to RUNNING at the restart, back to the failed state at this poll), so a task
    that fails right after every restart is seen flapping.
    """
    if not snapshot.up:
        return history
    at = snapshot.taken_at
    began = at - snapshot.duration
    seen = _observed(snapshot)
    fresh = {k: t for k, t in restarts.items() if t <= began and k in seen and history.restarts.get(k) != t}
    if seen == history.states and not fresh:
        return history  # the common case: nothing changed since the last poll
    present = {name for name, _ in seen}
    transitions = {k: n for k, n in history.transitions.items() if k[0] in present}
    failed_since: dict[Target, float] = {}
    new: list[Transition] = []
    for key, state in seen.items():
        before = history.states.get(key)
        restarted = fresh.get(key)
        if restarted is not None and before == state and is_failed(state):
            for frm, to, when in ((before, RUNNING, restarted), (RUNNING, state, at)):
                transitions[(key[0], to)] = transitions.get((key[0], to), 0) + 1
                new.append(Transition(when, snapshot.cluster, key[0], key[1], frm, to))
            failed_since[key] = at  # a new failure: the restart ended the previous one
            continue
        if before is not None and before != state:
            transitions[(key[0], state)] = transitions.get((key[0], state), 0) + 1
            new.append(Transition(at, snapshot.cluster, key[0], key[1], before, state))
        if is_failed(state):
            failed_since[key] = history.failed_since.get(key, at)
    timeline = (*history.timeline, *new)[-limit:] if limit > 0 else ()
    folded = {k: t for k, t in {**history.restarts, **fresh}.items() if k in seen}
    return History(
        states=MappingProxyType(seen),
        failed_since=MappingProxyType(failed_since),
        transitions=MappingProxyType(transitions),
        timeline=timeline,
        restarts=MappingProxyType(folded),
    )


def failures(history: History, snapshot: ClusterSnapshot) -> tuple[Failure, ...]:
    """Every failed connector and task of ``snapshot`` with its fingerprint and failed-since (of a failed cycle:
    those of the last known state it holds, if any)."""
    cloud = snapshot.kind is SourceKind.CLOUD
    out: list[Failure] = []
    for c in snapshot.connectors:
        if is_failed(c.state):
            task_errors = {t.state for t in c.tasks if is_failed(t.state) and t.state != c.state}
            error_state = next(iter(task_errors)) if cloud and len(task_errors) == 1 else None
            fp = fingerprint(c.trace, error_state=error_state)
            since = history.failed_since.get((c.name, None), snapshot.taken_at)
            out.append(
                Failure(c.name, None, c.state, fp.exception, fp.root_cause, first_line(c.trace), since, c.worker_id)
            )
        for t in c.tasks:
            if not is_failed(t.state):
                continue
            fp = fingerprint(t.trace, error_state=t.state if cloud else None)
            since = history.failed_since.get((c.name, t.id), snapshot.taken_at)
            out.append(
                Failure(c.name, t.id, t.state, fp.exception, fp.root_cause, first_line(t.trace), since, t.worker_id)
            )
    return tuple(out)


def cluster_failures(history: History, snapshot: ClusterSnapshot) -> ClusterFailures:
    return ClusterFailures(
        failures=failures(history, snapshot),
        transitions=history.transitions,
        timeline=history.timeline,
    )
