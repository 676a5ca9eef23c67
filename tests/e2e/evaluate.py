"""Checks shared by the end-to-end scenarios: which dashboard queries return data in which phase, and which
alerts Prometheus had pending or firing.

A phase is a time window of one scenario. Prometheus keeps every sample and every ``ALERTS`` series, so all
checks run after the scenarios, each over the window it is about.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tests.e2e.grafana import STEP, Dashboard, Target, resolve, substitute
from tests.e2e.prometheus import PrometheusServer, wait_for

INSTANT_EVERY = 1.0  # seconds between the moments an instant (table) query is tried within a phase


@dataclass
class Phase:
    name: str
    start: float
    end: float = 0.0


@dataclass
class Expect:
    """An alert that must be pending or firing in ``phase`` with at least these labels."""

    alert: str
    phase: str
    labels: dict[str, str]

    def matches(self, labels: dict[str, str]) -> bool:
        return labels.get("alertname") == self.alert and all(labels.get(k) == v for k, v in self.labels.items())


def alert_series(prom: PrometheusServer, start: float, end: float) -> list[dict[str, str]]:
    """Every label set ``ALERTS`` had in ``[start, end]`` (pending and firing), from Prometheus' TSDB."""
    return [s.labels for s in prom.query_range("ALERTS", start, end, 1.0)]


def missing_alerts(prom: PrometheusServer, expected: Sequence[Expect], phases: Sequence[Phase]) -> list[str]:
    """One line per expected alert that never was pending or firing in its phase."""
    problems = []
    for exp in expected:
        phase = next(p for p in phases if p.name == exp.phase)
        series = alert_series(prom, phase.start, phase.end)
        if not any(exp.matches(s) for s in series):
            got = [s for s in series if s.get("alertname") == exp.alert]
            problems.append(
                f"{exp.alert}{exp.labels} never pending/firing in phase {exp.phase} "
                f"({phase.end - phase.start:.0f}s); its ALERTS series there: {got or 'none'}"
            )
    return problems


def wait_for_alerts(prom: PrometheusServer, expected: Sequence[Expect], phase: Phase, timeout: float) -> bool:
    """Poll until every expected alert shows in ``ALERTS`` within ``phase`` so far, then end the phase there.

    Returns False after ``timeout`` instead of raising, so the scenario goes on and the tests say exactly which
    alert is missing. The phase's end is the moment of the last check, so the tests see what this saw.
    """

    def all_seen() -> bool:
        phase.end = time.time()
        return not missing_alerts(prom, expected, [phase])

    with contextlib.suppress(AssertionError):
        wait_for(all_seen, timeout, "the expected alerts", interval=0.5)
        return True
    return False


# --------------------------------------------------------------------------------------------- dashboards
@dataclass
class Hit:
    phase: str
    binding: dict[str, str]


@dataclass
class Evaluated:
    target: Target
    hit: Hit | None
    core_hit: Hit | None  # the query without `or vector(0)`; None when it has none or it never answers

    @property
    def ok(self) -> bool:
        return self.hit is not None and (self.target.core() is None or self.core_hit is not None)


@dataclass
class Evaluation:
    results: list[Evaluated]
    variables: dict[str, set[str]] = field(default_factory=dict)  # "dashboard / $name" -> values found
    tries: dict[str, list[tuple[Phase, list[dict[str, str]]]]] = field(default_factory=dict)  # per dashboard

    def problems(self) -> list[str]:
        empty = [f"{r.target.where}: {r.target.expr}" for r in self.results if r.hit is None]
        fallback_only = [
            f"{r.target.where}: only its `or vector(0)` fallback ever answers; this never does: {r.target.core()}"
            for r in self.results
            if r.hit is not None and not r.ok
        ]
        return empty + fallback_only

    def empty_variables(self) -> list[str]:
        return sorted(name for name, values in self.variables.items() if not values)


def returns_data(prom: PrometheusServer, expr: str, instant: bool, phase: Phase) -> bool:
    """Range targets as Grafana runs them (query_range over the window); instant targets (tables) with
    /api/v1/query at moments of the window, newest first, as a user opening the dashboard then would."""
    if not instant:
        return any(s.values for s in prom.query_range(expr, phase.start, phase.end, STEP))
    at = phase.end
    while at >= phase.start:
        if prom.query(expr, at=at):
            return True
        at -= INSTANT_EVERY
    return False


def first_hit(
    prom: PrometheusServer, expr: str, instant: bool, tries: list[tuple[Phase, list[dict[str, str]]]]
) -> Hit | None:
    for phase, bindings in tries:
        for binding in bindings:
            if returns_data(prom, substitute(expr, binding), instant, phase):
                return Hit(phase.name, binding)
    return None


def evaluate(
    prom: PrometheusServer,
    dashboards: Sequence[Dashboard],
    phases: Sequence[Phase],
    only: dict[str, str] | None = None,
    want: Callable[[Target], bool] | None = None,
) -> Evaluation:
    """Every target of ``dashboards`` (those ``want`` accepts, if given) over ``phases``."""
    evaluation = Evaluation([])
    for d in dashboards:
        targets = [t for t in d.targets() if want is None or want(t)]
        if not targets:
            continue
        tries = []
        for phase in phases:
            res = resolve(prom, d, phase.start, phase.end, only)
            for name, values in res.values.items():
                evaluation.variables.setdefault(f"{d.title} / ${name}", set()).update(values)
            tries.append((phase, res.bindings))
        evaluation.tries[d.title] = tries
        for t in targets:
            hit = first_hit(prom, t.expr, t.instant, tries)
            core = t.core()
            core_hit = first_hit(prom, core, t.instant, tries) if core is not None else None
            evaluation.results.append(Evaluated(t, hit, core_hit))
    return evaluation


def peak(prom: PrometheusServer, expr: str, tries: list[tuple[Phase, list[dict[str, str]]]]) -> float:
    """The largest value a range query shows over every phase and binding (-inf when it never answers)."""
    best = -math.inf
    for phase, bindings in tries:
        for binding in bindings:
            for s in prom.query_range(substitute(expr, binding), phase.start, phase.end, STEP):
                for _, v in s.values:
                    value = float(v)
                    if not math.isnan(value):
                        best = max(best, value)
    return best
