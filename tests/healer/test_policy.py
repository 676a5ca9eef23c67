"""The auto-heal policy, rule by rule, with freezegun moving the clock (no network: the policy is pure)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest
from freezegun.api import FrozenDateTimeFactory

from exporter.healer.config import AutohealConfig, BackoffConfig
from exporter.healer.policy import (
    Event,
    Outcome,
    Plan,
    PolicyState,
    Reason,
    Result,
    TargetKey,
    backoff_delay,
    decide,
    record,
    record_unsent,
    retry,
)
from exporter.model import (
    ClusterSnapshot,
    Connector,
    NamedWorker,
    SourceKind,
    Task,
    Worker,
    WorkerState,
    hold_last_known,
)

MIN = 60.0
W1, W2 = "10.0.0.1:8083", "10.0.0.2:8083"
TRACE = (
    "org.apache.kafka.connect.errors.ConnectException: Exiting WorkerSinkTask due to unrecoverable exception.\n\tat x"
)


def task(id: int, state: str = "RUNNING", worker: str = W1) -> Task:
    return Task(id=id, state=state, worker_id=worker, trace=TRACE if state == "FAILED" else None)


def conn(name: str, state: str = "RUNNING", tasks: tuple[Task, ...] = (), worker: str = W1) -> Connector:
    return Connector(
        name=name,
        type="sink",
        class_name="FileStreamSink",
        state=state,
        worker_id=worker,
        tasks=tasks,
        trace=TRACE if state == "FAILED" else None,
    )


def snap(
    *connectors: Connector,
    versions: tuple[str | None, ...] = ("3.9.0",),
    up: bool = True,
    named: tuple[NamedWorker, ...] = (),
) -> ClusterSnapshot:
    workers = tuple(Worker(url=f"http://w{i}:8083", reachable=True, version=v) for i, v in enumerate(versions))
    return ClusterSnapshot(
        cluster="prod",
        kind=SourceKind.CONNECT,
        taken_at=time.time(),
        duration=0.1,
        up=up,
        poll_interval=30.0,
        workers=workers,
        connectors=connectors if up else (),
        status_url="http://w0:8083",
        named_workers=named,
    )


def cfg(**kw: Any) -> AutohealConfig:
    base: dict[str, Any] = {"mode": "enforce", "backoff": {"jitter": 0.0}}
    base.update(kw)
    return AutohealConfig.model_validate(base)


def polled_now(s: ClusterSnapshot) -> ClusterSnapshot:
    """The same statuses read again by a poll that ends now."""
    return replace(s, taken_at=time.time())


class Driver:
    """Feeds snapshots to the policy at freezegun's current time and reports restart outcomes."""

    def __init__(self, config: AutohealConfig, local_worker_id: str | None = None) -> None:
        self.config = config
        self.state = PolicyState()
        self.local = local_worker_id

    def step(self, snapshot: ClusterSnapshot, outcome: Outcome = Outcome.ACCEPTED, spent: bool = True) -> Plan:
        plan, self.state = decide(self.config, snapshot, time.time(), self.state, local_worker_id=self.local)
        for group in plan.groups:
            for key in group.targets:
                self.state = record(self.state, Result(key, outcome, spent), time.time())
        return plan

    def attempts(self, key: TargetKey) -> int:
        ts = self.state.targets.get(key)
        return ts.attempts if ts else 0


def restarted(plan: Plan) -> list[TargetKey]:
    return [k for g in plan.groups for k in g.targets]


def reasons(plan: Plan) -> dict[TargetKey, Reason | None]:
    return {d.key: d.reason for d in plan.decisions if not d.restart}


T0 = TargetKey("orders", 0)
C = TargetKey("orders")


# --- 1. off by default -----------------------------------------------------------------------------------


def test_off_by_default_and_mode_spellings() -> None:
    assert AutohealConfig().mode == "off"
    assert not AutohealConfig().enabled
    assert AutohealConfig.model_validate({"mode": False}).mode == "off"  # YAML 1.1 reads `off` as false
    assert AutohealConfig.model_validate({"mode": "DRY_RUN"}).dry_run
    assert AutohealConfig.model_validate({"mode": "enforce"}).enabled
    with pytest.raises(ValueError, match="dry-run"):
        AutohealConfig.model_validate({"mode": "on"})
    with pytest.raises(ValueError, match="host:port"):
        AutohealConfig.model_validate({"worker_id": "no-port"})
    with pytest.raises(ValueError, match="regular expression"):
        AutohealConfig.model_validate({"deny": ["("]})
    with pytest.raises(ValueError, match="max must not be shorter"):
        BackoffConfig.model_validate({"initial": "2h", "max": "1h"})


# --- 2. what it touches ----------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["PAUSED", "STOPPED", "UNASSIGNED", "RESTARTING", "RUNNING", "DEGRADED_FUTURE"])
def test_only_failed_connectors_and_tasks_are_touched(clock: FrozenDateTimeFactory, state: str) -> None:
    d = Driver(cfg(grace_period="1s"))
    s = (conn("orders", state, (task(0, state),)),)
    for _ in range(5):
        plan = d.step(snap(*s))
        clock.tick(10 * MIN)
        assert plan.groups == () and plan.decisions == ()


@pytest.mark.parametrize("parent", ["PAUSED", "STOPPED", "RESTARTING", "SOMETHING_NEW"])
def test_failed_tasks_of_a_paused_or_stopped_connector_are_never_touched(
    clock: FrozenDateTimeFactory, parent: str
) -> None:
    d = Driver(cfg(grace_period="1s"))
    for _ in range(5):
        plan = d.step(snap(conn("orders", parent, (task(0, "FAILED"),))))
        clock.tick(10 * MIN)
        assert plan.groups == () and plan.decisions == ()


def test_failed_task_of_running_or_failed_connector_is_a_candidate(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg())
    d.step(snap(conn("orders", "FAILED", (task(0, "FAILED"), task(1)))))
    clock.tick(2 * MIN)
    plan = d.step(snap(conn("orders", "FAILED", (task(0, "FAILED"), task(1)))))
    assert restarted(plan) == [C, T0]
    assert plan.groups[0].combined


# --- 4. grace, backoff, cap, stable reset ----------------------------------------------------------------


def test_grace_period_leaves_a_fresh_failure_alone(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="2m"))
    failed = conn("orders", tasks=(task(0, "FAILED"),))
    plan = d.step(snap(failed))
    assert reasons(plan) == {T0: Reason.GRACE}
    assert plan.decisions[0].next_attempt_at == pytest.approx(time.time() + 2 * MIN)
    assert plan.decisions[0].changed
    clock.tick(119)
    plan = d.step(snap(failed))
    assert reasons(plan) == {T0: Reason.GRACE}
    assert not plan.decisions[0].changed  # same decision again: not logged again
    clock.tick(1)
    assert restarted(d.step(snap(failed))) == [T0]


def test_grace_restarts_when_the_failure_clears_and_comes_back(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1m"))
    d.step(snap(conn("orders", tasks=(task(0, "FAILED"),))))
    clock.tick(50)
    d.step(snap(conn("orders", tasks=(task(0, "RUNNING"),))))
    clock.tick(20)
    plan = d.step(snap(conn("orders", tasks=(task(0, "FAILED"),))))
    assert reasons(plan) == {T0: Reason.GRACE}  # a new failure: the grace period starts again


def test_backoff_follows_the_documented_schedule(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1m", max_attempts=10))
    failed = snap(conn("orders", tasks=(task(0, "FAILED"),)))
    d.step(failed)
    clock.tick(MIN)
    assert restarted(d.step(snap(conn("orders", tasks=(task(0, "FAILED"),))))) == [T0]
    # The task keeps failing: 2, 4, 8, 16, 32, 60, 60 minutes between restarts.
    for n, minutes in enumerate([2, 4, 8, 16, 32, 60, 60], start=1):
        assert d.attempts(T0) == n
        clock.tick(minutes * MIN - 1)
        plan = d.step(snap(conn("orders", tasks=(task(0, "FAILED"),))))
        assert reasons(plan) == {T0: Reason.BACKOFF}, minutes
        assert plan.decisions[0].next_attempt_at == pytest.approx(time.time() + 1)
        clock.tick(1)
        assert restarted(d.step(snap(conn("orders", tasks=(task(0, "FAILED"),))))) == [T0], minutes


def test_backoff_is_per_target(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1m"))
    d.step(snap(conn("orders", tasks=(task(0, "FAILED"), task(1)))))
    clock.tick(MIN)
    d.step(snap(conn("orders", tasks=(task(0, "FAILED"), task(1)))))
    clock.tick(MIN)
    plan = d.step(snap(conn("orders", tasks=(task(0, "FAILED"), task(1, "FAILED")))))
    assert reasons(plan) == {T0: Reason.BACKOFF, TargetKey("orders", 1): Reason.GRACE}
    clock.tick(MIN)
    plan = d.step(snap(conn("orders", tasks=(task(0, "FAILED"), task(1, "FAILED")))))
    assert restarted(plan) == [T0, TargetKey("orders", 1)]
    # Both parts were due together, so one KIP-745 call restarts them.
    assert plan.groups[0].combined


def test_backoff_delay_formula_jitter_and_no_overflow() -> None:
    b = BackoffConfig(initial=120, multiplier=2, max=3600, jitter=0)
    assert [backoff_delay(b, n, T0) / MIN for n in range(1, 9)] == [2, 4, 8, 16, 32, 60, 60, 60]
    jittered = BackoffConfig(initial=120, multiplier=2, max=3600, jitter=0.1)
    for n in range(1, 8):
        base = backoff_delay(b, n, T0)
        for key in (T0, TargetKey("orders", 1), TargetKey("billing")):
            assert base <= backoff_delay(jittered, n, key) < base * 1.1
    assert backoff_delay(jittered, 3, T0) == backoff_delay(jittered, 3, T0)  # reproducible
    spread = {backoff_delay(jittered, 3, TargetKey(f"c{i}", 0)) for i in range(20)}
    assert len(spread) > 10  # targets that failed together do not come back together
    huge = BackoffConfig(initial=1, multiplier=10, max=7200, jitter=0)
    assert backoff_delay(huge, 1000, T0) == 7200


def test_attempt_cap_marks_persistent_failure_once_and_leaves_it_alone(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1m", max_attempts=3))
    failing = conn("orders", tasks=(task(0, "FAILED"),))
    d.step(snap(failing))
    sent = 0
    events: list[Event] = []
    for _ in range(400):  # 400 minutes of a task that never heals
        clock.tick(MIN)
        plan = d.step(snap(failing))
        sent += len(restarted(plan))
        events.extend(e for e in plan.events if e.kind == "persistent")
    assert sent == 3
    assert len(events) == 1 and events[0].key == T0 and events[0].fields["attempts"] == 3
    assert d.state.targets[T0].persistent
    assert reasons(plan) == {T0: Reason.CAP}


def test_persistent_is_declared_a_grace_period_after_the_last_attempt(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1m", max_attempts=1))
    d.step(snap(conn("orders", tasks=(task(0, "FAILED"),))))
    clock.tick(MIN)
    assert restarted(d.step(snap(conn("orders", tasks=(task(0, "FAILED"),))))) == [T0]
    clock.tick(30)
    plan = d.step(snap(conn("orders", tasks=(task(0, "FAILED"),))))
    assert reasons(plan) == {T0: Reason.GRACE}  # judging the last attempt, not the 60-minute backoff
    assert plan.decisions[0].next_attempt_at is None
    clock.tick(30)
    plan = d.step(snap(conn("orders", tasks=(task(0, "FAILED"),))))
    assert [e.kind for e in plan.events] == ["persistent"]


def test_persistent_failure_recovers_and_retry_clears_it(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1m", max_attempts=1))
    failing = conn("orders", tasks=(task(0, "FAILED"),))
    for _ in range(4):
        d.step(snap(failing))
        clock.tick(MIN)
    assert d.state.targets[T0].persistent
    # An operator restarts it by hand and it runs: no longer a persistent failure ...
    plan = d.step(snap(conn("orders", tasks=(task(0, "RUNNING"),))))
    assert [e.kind for e in plan.events] == ["recovered"]
    assert not d.state.targets[T0].persistent
    # ... but the attempts are kept until it has been stable, so an immediate relapse is not retried.
    clock.tick(MIN)
    d.step(snap(failing))
    clock.tick(MIN)
    plan = d.step(snap(failing))
    assert restarted(plan) == [] and d.state.targets[T0].persistent
    # The operator asks for a retry: restarted at the next round (the grace period has passed).
    d.state = retry(d.state, connector="orders")
    clock.tick(1)
    assert restarted(d.step(snap(failing))) == [T0]


def test_attempts_reset_after_a_stable_period_but_not_while_flapping(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1m", stable_period="30m", max_attempts=6))
    failing = conn("orders", tasks=(task(0, "FAILED"),))
    running = conn("orders", tasks=(task(0, "RUNNING"),))
    d.step(snap(failing))
    clock.tick(MIN)
    d.step(snap(failing))
    assert d.attempts(T0) == 1
    # Runs for 29 minutes, then fails again: a flap, the attempt counts.
    for _ in range(29):
        clock.tick(MIN)
        d.step(snap(running))
    clock.tick(MIN)
    d.step(snap(failing))
    assert d.attempts(T0) == 1
    clock.tick(2 * MIN)
    d.step(snap(failing))
    assert d.attempts(T0) == 2
    # Now it stays RUNNING for the stable period: the counter is forgotten (strimzi#7891).
    events: list[Event] = []
    for _ in range(31):
        clock.tick(MIN)
        events.extend(d.step(snap(running)).events)
    assert T0 not in d.state.targets
    assert [e.kind for e in events] == ["reset"]


# --- budget -----------------------------------------------------------------------------------------------


def test_cluster_budget_of_restarts_per_minute(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1m", restarts_per_minute=10))
    connectors = tuple(conn(f"c{i:02}", tasks=(task(0, "FAILED"),)) for i in range(15))
    healthy = tuple(conn(f"h{i:02}", tasks=(task(0),)) for i in range(30))  # keeps the breaker shut
    d.step(snap(*connectors, *healthy))
    clock.tick(MIN)
    plan = d.step(snap(*connectors, *healthy))
    assert len(restarted(plan)) == 10
    assert list(reasons(plan).values()) == [Reason.BUDGET] * 5
    clock.tick(30)
    assert restarted(d.step(snap(*connectors, *healthy))) == []  # same minute: still spent
    clock.tick(30)
    plan = d.step(snap(*connectors, *healthy))
    assert len(restarted(plan)) == 5


def test_unsent_restarts_give_their_budget_back(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1m", restarts_per_minute=1))
    failing = snap(conn("orders", tasks=(task(0, "FAILED"),)), conn("h", tasks=(task(0), task(1))))
    d.step(failing)
    clock.tick(MIN)
    plan, d.state = decide(d.config, polled_now(failing), time.time(), d.state)
    assert restarted(plan) == [T0] and len(d.state.budget) == 1
    d.state = record_unsent(d.state, 1)
    assert d.state.budget == ()


def test_nothing_is_decided_on_a_snapshot_older_than_its_poll_interval(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1m"))
    failing = snap(conn("orders", tasks=(task(0, "FAILED"),)), conn("h", tasks=(task(0), task(1))))
    d.step(failing)
    clock.tick(MIN)
    old = replace(polled_now(failing), taken_at=time.time() - 31.0)  # one poll interval (30s) and a second
    plan = d.step(old)
    assert restarted(plan) == [] and plan.decisions == ()
    assert restarted(d.step(replace(old, taken_at=time.time() - 30.0))) == [T0]  # exactly one interval: current


def test_the_last_known_state_of_a_failed_poll_is_never_acted_on(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1m"))
    failing = snap(conn("orders", tasks=(task(0, "FAILED"),)), conn("h", tasks=(task(0), task(1))))
    d.step(failing)
    clock.tick(MIN)
    down = replace(polled_now(failing), up=False)
    held = hold_last_known(down, hold_last_known(failing, None, 600.0), 600.0)
    assert held.stale and held.connectors == failing.connectors
    assert restarted(d.step(held)) == [] and d.attempts(T0) == 0


# --- 3. conflicts, errors, 404 ------------------------------------------------------------------------------


def test_conflict_and_timeout_do_not_spend_an_attempt(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1m"))
    failing = conn("orders", tasks=(task(0, "FAILED"),))
    d.step(snap(failing))
    clock.tick(30)
    for outcome in (Outcome.CONFLICT, Outcome.ERROR, Outcome.CONFLICT):
        clock.tick(30)
        plan = d.step(snap(failing), outcome=outcome, spent=False)
        assert restarted(plan) == [T0]  # tried again at the very next cycle
        assert d.attempts(T0) == 0
        assert d.state.budget == ()
    clock.tick(30)
    d.step(snap(failing))
    assert d.attempts(T0) == 1


def test_not_found_forgets_the_connector_or_the_task(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1m"))
    s = snap(conn("orders", "FAILED", (task(0, "FAILED"), task(1, "FAILED"))))
    d.step(s)
    clock.tick(MIN)
    d.step(s)
    assert {k for k in d.state.targets if k.connector == "orders"} == {C, T0, TargetKey("orders", 1)}
    d.state = record(d.state, Result(T0, Outcome.NOT_FOUND, spent=False), time.time())
    assert T0 not in d.state.targets and C in d.state.targets
    d.state = record(d.state, Result(C, Outcome.NOT_FOUND, spent=False, forget_connector=True), time.time())
    assert not d.state.targets


def test_deleted_connectors_and_removed_tasks_are_forgotten(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1m"))
    d.step(snap(conn("orders", tasks=(task(0, "FAILED"), task(1, "FAILED"))), conn("gone", "FAILED")))
    clock.tick(MIN)
    d.step(snap(conn("orders", tasks=(task(0, "FAILED"), task(1, "FAILED"))), conn("gone", "FAILED")))
    clock.tick(MIN)
    d.step(snap(conn("orders", tasks=(task(0, "FAILED"),))))
    assert set(d.state.targets) == {T0}


def test_a_snapshot_read_before_the_last_restart_is_not_acted_on(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1m"))
    early = snap(conn("orders", tasks=(task(0, "FAILED"),)))
    d.step(early)
    clock.tick(MIN)
    d.step(snap(conn("orders", tasks=(task(0, "FAILED"),))))
    clock.tick(10 * MIN)
    plan = d.step(early)  # an old view (taken before the restart) arrives late
    assert plan.decisions == () and d.attempts(T0) == 1


def test_a_failed_poll_decides_nothing(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1m"))
    d.step(snap(conn("orders", tasks=(task(0, "FAILED"),))))
    clock.tick(MIN)
    plan = d.step(snap(up=False))
    assert plan.groups == () and T0 in d.state.targets  # nor is anything forgotten


@pytest.mark.parametrize(
    ("versions", "combined"),
    [(("3.9.0", "3.9.0"), True), (("2.8.1",), False), (("3.9.0", "2.8.1"), False), ((None,), False)],
)
def test_combined_call_only_when_every_worker_has_it(
    clock: FrozenDateTimeFactory, versions: tuple[str | None, ...], combined: bool
) -> None:
    d = Driver(cfg(grace_period="1m"))
    s = (conn("orders", "FAILED", (task(0, "FAILED"), task(1))),)
    d.step(snap(*s, versions=versions))
    clock.tick(MIN)
    plan = d.step(snap(*s, versions=versions))
    assert restarted(plan) == [C, T0]
    assert plan.groups[0].combined is combined


# --- allow / deny, scope ---------------------------------------------------------------------------------------


def test_allow_and_deny_match_whole_names_and_deny_wins(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1m", allow=["orders-.*", "billing"], deny=["orders-tmp-.*"]))
    names = ["orders-a", "orders-tmp-1", "billing", "billing-2", "xorders-a"]
    s = snap(*(conn(n, "FAILED") for n in names), conn("h", tasks=(task(0), task(1))))
    d.step(s)
    clock.tick(MIN)
    plan = d.step(polled_now(s))
    assert sorted(k.connector for k in restarted(plan)) == ["billing", "orders-a"]
    assert {k.connector: r for k, r in reasons(plan).items()} == {
        "orders-tmp-1": Reason.DENIED,
        "billing-2": Reason.DENIED,
        "xorders-a": Reason.DENIED,
    }


def test_local_worker_scope_restarts_only_what_this_worker_runs(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1m", scope="local-worker"), local_worker_id=W1)
    s = snap(
        conn("orders", "FAILED", (task(0, "FAILED", W1), task(1, "FAILED", W2)), worker=W2),
        conn("billing", tasks=(task(0, "FAILED", W1),)),
        conn("h", tasks=(task(0), task(1), task(2))),
    )
    d.step(s)
    clock.tick(MIN)
    plan = d.step(polled_now(s))
    assert sorted(restarted(plan), key=TargetKey.sort_key) == [TargetKey("billing", 0), TargetKey("orders", 0)]
    assert reasons(plan) == {C: Reason.SCOPE, TargetKey("orders", 1): Reason.SCOPE}
    by_conn = {g.connector: g for g in plan.groups}
    assert not by_conn["orders"].combined  # a combined call would restart the other worker's parts
    assert by_conn["billing"].combined

    # The sidecar beside the other worker takes exactly the rest: no target is restarted twice.
    other = Driver(cfg(grace_period="1m", scope="local-worker"), local_worker_id=W2)
    clock.tick(-MIN)
    other.step(polled_now(s))
    clock.tick(MIN)
    assert restarted(other.step(polled_now(s))) == [C, TargetKey("orders", 1)]


# --- mass-failure breaker --------------------------------------------------------------------------------------


def _fleet(failed: int, total: int = 10, healed: tuple[int, ...] = ()) -> ClusterSnapshot:
    return snap(
        *(
            conn(f"c{i}", tasks=(task(0, "FAILED" if i < failed and i not in healed else "RUNNING"),))
            for i in range(total)
        )
    )


def test_breaker_holds_restarts_during_a_mass_failure_then_probes_and_closes(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1m", breaker={"probe_interval": "5m"}))
    plan = d.step(_fleet(8))
    assert plan.breaker_open and [e.kind for e in plan.events] == ["breaker_opened"]
    assert plan.events[0].fields["recent_failed_tasks"] == 8 and plan.events[0].fields["tasks"] == 10
    for _ in range(4):  # held for the probe interval, whatever grace says
        clock.tick(MIN)
        plan = d.step(_fleet(8))
        assert plan.groups == ()
    assert set(reasons(plan).values()) == {Reason.BREAKER}
    clock.tick(MIN)
    plan = d.step(_fleet(8))
    assert [g.probe for g in plan.groups] == [True] and restarted(plan) == [TargetKey("c0", 0)]
    # The probe stays RUNNING for the probe interval: the outage is over, the breaker closes.
    for _ in range(4):
        clock.tick(MIN)
        plan = d.step(_fleet(8, healed=(0,)))
        assert plan.breaker_open and plan.groups == ()
    clock.tick(MIN)
    plan = d.step(_fleet(8, healed=(0,)))
    assert not plan.breaker_open
    assert [e.kind for e in plan.events] == ["breaker_closed"]
    assert plan.events[0].fields["why"] == "probe_succeeded"
    # The old failures do not reopen it; the budget paces their restarts.
    assert len(restarted(plan)) == 7


def test_breaker_probe_that_fails_again_keeps_it_open(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1m", breaker={"probe_interval": "5m"}, backoff={"initial": "10m", "jitter": 0}))
    d.step(_fleet(8))
    clock.tick(5 * MIN)
    assert restarted(d.step(_fleet(8))) == [TargetKey("c0", 0)]
    clock.tick(5 * MIN)
    plan = d.step(_fleet(8))  # the probe is FAILED again: the outage goes on
    assert plan.breaker_open
    assert [e.kind for e in plan.events] == ["probe_failed", "probe"]
    assert restarted(plan) == [TargetKey("c1", 0)]  # c0 is in backoff; another probe is tried


def test_breaker_closes_when_failures_clear_without_it(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1m"))
    d.step(_fleet(8))
    clock.tick(MIN)
    plan = d.step(_fleet(8, healed=(0, 1, 2, 3, 4)))  # an operator fixed most of them
    assert not plan.breaker_open and plan.events[0].fields["why"] == "failures_cleared"


@pytest.mark.parametrize(("failed", "total", "opens"), [(3, 4, False), (4, 6, True), (5, 10, False), (6, 10, True)])
def test_breaker_threshold_share_and_minimum(
    clock: FrozenDateTimeFactory, failed: int, total: int, opens: bool
) -> None:
    d = Driver(cfg(breaker={"max_failed_share": 0.5, "min_failed_tasks": 4}))
    assert d.step(_fleet(failed, total)).breaker_open is opens


def test_breaker_counts_failures_at_once_not_old_ones(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1h", breaker={"window": "5m"}))
    d.step(_fleet(3))
    clock.tick(10 * MIN)
    plan = d.step(_fleet(6))  # three old failures plus three new: not six "at once"
    assert not plan.breaker_open


# --- 6. losing the state never causes a burst -------------------------------------------------------------------


def test_fresh_state_with_many_failures_restarts_slowly(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1m", restarts_per_minute=10))
    fleet = snap(*(conn(f"c{i:03}", tasks=(task(0, "FAILED" if i < 40 else "RUNNING"),)) for i in range(100)))
    plan = d.step(fleet)  # an exporter that just started: everything FAILED is new to it
    assert restarted(plan) == []
    assert set(reasons(plan).values()) == {Reason.GRACE}
    per_minute = []
    for _ in range(4):
        clock.tick(MIN)
        per_minute.append(len(restarted(d.step(polled_now(fleet)))))
    assert per_minute == [10, 10, 10, 10]


# --- lost workers and names Connect cannot address -------------------------------------------------------


@pytest.mark.parametrize(
    "impaired",
    [NamedWorker(W2, WorkerState.LOST), NamedWorker(W2, WorkerState.REACHABLE, health="unhealthy")],
)
def test_work_of_a_lost_or_unhealthy_worker_is_left_alone(clock: FrozenDateTimeFactory, impaired: NamedWorker) -> None:
    d = Driver(cfg(grace_period="1m"))
    ok = NamedWorker(W1, WorkerState.REACHABLE, health="healthy")
    failing = conn("orders", tasks=(task(0, "FAILED", W1), task(1, "FAILED", W2)))
    d.step(snap(failing, named=(ok, impaired)))
    clock.tick(MIN)
    plan = d.step(snap(failing, named=(ok, impaired)))
    assert restarted(plan) == [T0]
    assert reasons(plan) == {TargetKey("orders", 1): Reason.LOST_WORKER}
    assert d.attempts(TargetKey("orders", 1)) == 0  # nothing spent while it waits for the rebalance
    # the rebalance moved it to a live worker: restarted then
    clock.tick(MIN)
    moved = conn("orders", tasks=(task(0, "RUNNING", W1), task(1, "FAILED", W1)))
    plan = d.step(snap(moved, named=(ok,)))
    assert restarted(plan) == [TargetKey("orders", 1)]


def test_an_unknown_worker_does_not_hold_restarts(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1m"))
    failing = conn("orders", tasks=(task(0, "FAILED", W1),))
    named = (NamedWorker(W1, WorkerState.UNKNOWN),)  # no route from here: not evidence of anything
    d.step(snap(failing, named=named))
    clock.tick(MIN)
    assert restarted(d.step(snap(failing, named=named))) == [T0]


def test_not_addressable_is_never_retried_until_an_operator_retry(clock: FrozenDateTimeFactory) -> None:
    d = Driver(cfg(grace_period="1m"))
    name = "50% sample"
    key = TargetKey(name, 0)
    connector = conn(name, tasks=(task(0, "FAILED"),))
    d.step(snap(connector))
    clock.tick(MIN)
    assert restarted(d.step(snap(connector), outcome=Outcome.NOT_ADDRESSABLE, spent=False)) == [key]
    assert d.state.budget == ()  # given back: nothing reached a connector
    for _ in range(5):
        clock.tick(MIN)
        plan = d.step(snap(connector))
        assert restarted(plan) == []
        assert reasons(plan) == {key: Reason.NOT_ADDRESSABLE}
    assert d.attempts(key) == 0
    d.state = retry(d.state, name)
    clock.tick(MIN)
    assert restarted(d.step(snap(connector))) == [key]
