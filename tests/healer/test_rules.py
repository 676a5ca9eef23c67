"""Each per-target rule of the auto-heal policy alone, on plain values (exporter/healer/policy.py TARGET_RULES)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from exporter.healer.config import AutohealConfig
from exporter.healer.policy import (
    TARGET_RULES,
    Candidate,
    Context,
    Hold,
    Reason,
    TargetKey,
    TargetState,
    attempts_exhausted,
    backing_off,
    denied_by_name,
    first_hold,
    in_grace_period,
    matches_a_skip_rule,
    not_addressable,
    on_an_impaired_worker,
    outside_scope,
    persistent_failure,
)

NOW = 10_000.0
CONFIG = AutohealConfig.model_validate(
    {"mode": "enforce", "grace_period": "1m", "max_attempts": 2, "backoff": {"initial": "2m", "jitter": 0}}
)


def cand(**state: Any) -> Candidate:
    """A task that failed 10 minutes ago on worker w1, never restarted unless ``state`` says otherwise."""
    return Candidate(
        key=TargetKey("orders", 0),
        worker_id="w1",
        trace="java.lang.Oops",
        full_trace="java.lang.Oops: boom",
        failed_since=NOW - 600,
        state=replace(TargetState(failed_since=NOW - 600), **state),
    )


def ctx(config: AutohealConfig = CONFIG, **kw: Any) -> Context:
    return Context(config=config, now=NOW, **kw)


def test_a_plain_old_failure_passes_every_rule() -> None:
    assert [rule(cand(), ctx()) for rule in TARGET_RULES] == [None] * len(TARGET_RULES)
    assert first_hold(cand(), ctx()) is None


@pytest.mark.parametrize(
    ("rule", "candidate", "context", "hold"),
    [
        (persistent_failure, cand(persistent=True), ctx(), Hold(reason=Reason.CAP)),
        (
            denied_by_name,
            cand(),
            ctx(CONFIG.model_copy(update={"deny": ["ord.*"]})),
            Hold(reason=Reason.DENIED),
        ),
        (
            matches_a_skip_rule,
            cand(),
            ctx(AutohealConfig.model_validate({"mode": "enforce", "skip": [{"name": "oops", "exception": ".*Oops"}]})),
            Hold(reason=Reason.SKIP, rule="oops"),
        ),
        (
            outside_scope,
            cand(),
            ctx(CONFIG.model_copy(update={"scope": "local-worker"}), local_worker_id="w2"),
            Hold(reason=Reason.SCOPE),
        ),
        (not_addressable, cand(unaddressable=True), ctx(), Hold(reason=Reason.NOT_ADDRESSABLE)),
        (on_an_impaired_worker, cand(), ctx(impaired=frozenset({"w1"})), Hold(reason=Reason.LOST_WORKER)),
        # Restarted 30 s ago once: grace until 30 s from now (the failure's own grace ended long ago, but the
        # backoff of 2 minutes ends later), so the hold names the backoff's end.
        (
            in_grace_period,
            replace(cand(attempts=1, last_attempt=NOW - 30), failed_since=NOW - 30),
            ctx(),
            Hold(reason=Reason.GRACE, next_attempt_at=NOW + 90),
        ),
        (attempts_exhausted, cand(attempts=2, last_attempt=NOW - 120), ctx(), Hold(reason=Reason.CAP, persistent=True)),
        (
            backing_off,
            cand(attempts=1, last_attempt=NOW - 60),
            ctx(),
            Hold(reason=Reason.BACKOFF, next_attempt_at=NOW + 60),
        ),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_each_rule_alone(rule: Any, candidate: Candidate, context: Context, hold: Hold) -> None:
    assert rule(candidate, context) == hold
    assert rule(cand(), ctx()) is None  # and it lets a plain old failure through
