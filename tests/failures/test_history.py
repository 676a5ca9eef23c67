"""Failure history across polls: failed-since, transitions, the bounded timeline (pure functions)."""

from __future__ import annotations

from exporter.failures.history import History, advance, failures
from exporter.failures.reading import FailuresReading, Transition
from exporter.failures.tracker import FailureTracker
from exporter.model import ClusterSnapshot, Connector, SourceKind, Task
from exporter.store import Store
from simulator.connect.state import task_trace

W1, W2 = "10.0.0.1:8083", "10.0.0.2:8083"
TRACE = task_trace("sink")


def conn(name: str, state: str = "RUNNING", *tasks: tuple[str, str]) -> Connector:
    return Connector(
        name=name,
        type="sink",
        class_name="FileStreamSink",
        state=state,
        worker_id=W1,
        tasks=tuple(
            Task(id=i, state=s, worker_id=w, trace=TRACE if s == "FAILED" else None) for i, (s, w) in enumerate(tasks)
        ),
        trace=TRACE if state == "FAILED" else None,
    )


def snap(at: float, *connectors: Connector, up: bool = True, kind: SourceKind = SourceKind.CONNECT) -> ClusterSnapshot:
    return ClusterSnapshot(
        cluster="prod", kind=kind, taken_at=at, duration=0.1, up=up, poll_interval=30.0, connectors=connectors
    )


def run(*snaps: ClusterSnapshot) -> History:
    h = History()
    for s in snaps:
        h = advance(h, s)
    return h


def test_failed_since_is_the_first_poll_that_saw_it_and_survives_a_move() -> None:
    h = run(
        snap(100, conn("a", "RUNNING", ("RUNNING", W1))),
        snap(130, conn("a", "RUNNING", ("FAILED", W1))),
        snap(160, conn("a", "RUNNING", ("FAILED", W2))),  # the worker died: the task moved, still FAILED
    )
    assert h.failed_since == {("a", 0): 130}
    (f,) = failures(h, snap(160, conn("a", "RUNNING", ("FAILED", W2))))
    assert (f.connector, f.task, f.since, f.worker_id) == ("a", 0, 130, W2)
    assert f.exception == "org.apache.kafka.connect.errors.ConnectException"
    assert f.root_cause == "java.sql.SQLException"
    assert f.first_line.startswith("org.apache.kafka.connect.errors.ConnectException: Exiting WorkerSinkTask")


def test_recovery_ends_failed_since_and_a_new_failure_starts_again() -> None:
    h = run(
        snap(100, conn("a", "FAILED")),
        snap(130, conn("a", "RUNNING")),
        snap(160, conn("a", "FAILED")),
    )
    assert h.failed_since == {("a", None): 160}
    assert failures(h, snap(160, conn("a", "FAILED")))[0].task is None


def test_transitions_count_each_change_by_connector_and_new_state() -> None:
    h = run(
        snap(1, conn("a", "RUNNING", ("RUNNING", W1), ("RUNNING", W1)), conn("b")),
        snap(2, conn("a", "RUNNING", ("FAILED", W1), ("RUNNING", W1)), conn("b")),
        snap(3, conn("a", "RUNNING", ("RESTARTING", W1), ("FAILED", W1)), conn("b")),
        snap(4, conn("a", "FAILED", ("RUNNING", W2), ("FAILED", W2)), conn("b")),
    )
    assert dict(h.transitions) == {("a", "FAILED"): 3, ("a", "RESTARTING"): 1, ("a", "RUNNING"): 1}
    assert h.timeline == (
        Transition(2, "prod", "a", 0, "RUNNING", "FAILED"),
        Transition(3, "prod", "a", 0, "FAILED", "RESTARTING"),
        Transition(3, "prod", "a", 1, "RUNNING", "FAILED"),
        Transition(4, "prod", "a", None, "RUNNING", "FAILED"),
        Transition(4, "prod", "a", 0, "RESTARTING", "RUNNING"),
    )


def test_first_sight_is_not_a_change_and_a_failed_poll_changes_nothing() -> None:
    h = run(snap(1, conn("a", "FAILED")))
    assert h.transitions == {} and h.timeline == () and h.failed_since == {("a", None): 1}
    assert advance(h, snap(2, up=False)) is h  # a down cluster: neither a change nor a recovery
    assert failures(h, snap(2, up=False)) == ()


def test_deleted_connectors_are_forgotten_with_their_counts() -> None:
    h = run(
        snap(1, conn("a"), conn("b")),
        snap(2, conn("a", "FAILED"), conn("b", "PAUSED")),
        snap(3, conn("b", "PAUSED")),
    )
    assert dict(h.transitions) == {("b", "PAUSED"): 1}
    assert h.failed_since == {}
    h = advance(h, snap(4, conn("a"), conn("b", "PAUSED")))
    assert ("a", "FAILED") not in h.transitions  # a re-created "a" starts from nothing
    assert len(h.timeline) == 2  # the timeline is history: it keeps what happened


def test_timeline_is_bounded_and_keeps_the_newest() -> None:
    h = History()
    for i in range(300):
        h = advance(h, snap(i, conn("a", "FAILED" if i % 2 else "RUNNING")), limit=10)
    assert len(h.timeline) == 10
    assert h.timeline[-1].at == 299 and h.timeline[0].at == 290
    assert h.transitions == {("a", "FAILED"): 150, ("a", "RUNNING"): 149}


def test_cloud_error_states_are_failures_with_the_error_state_as_root_cause() -> None:
    c = Connector(
        name="s3",
        type="sink",
        class_name="S3_SINK",
        state="FAILED",
        worker_id="s3",
        tasks=(Task(0, "USER_ACTIONABLE_ERROR", "s3", "Invalid bucket"), Task(1, "RUNNING", "s3")),
        trace="There were some errors with your configuration:\ntopics: bad\n",
    )
    s = snap(10, c, kind=SourceKind.CLOUD)
    got = {(f.task, f.exception, f.root_cause) for f in failures(advance(History(), s), s)}
    assert got == {(None, "unknown", "USER_ACTIONABLE_ERROR"), (0, "unknown", "USER_ACTIONABLE_ERROR")}


def test_tracker_derives_a_reading_per_cluster_from_the_store_s_snapshots() -> None:
    store = Store(expected=["prod"])
    tracker = FailureTracker()
    store.derive(tracker.step)
    store.publish_cluster(snap(1, conn("a", "RUNNING", ("RUNNING", W1))))
    store.publish_cluster(snap(2, conn("a", "RUNNING", ("FAILED", W1))))
    reading = store.view.reading(FailuresReading)
    assert reading is not None
    prod = reading.clusters["prod"]
    assert [(f.connector, f.task, f.since) for f in prod.failures] == [("a", 0, 2)]
    assert dict(prod.transitions) == {("a", "FAILED"): 1}
    assert tracker.history("prod").failed_since == {("a", 0): 2}


def test_a_removed_cluster_is_forgotten() -> None:
    tracker = FailureTracker()
    tracker.step(snap(1, conn("a", "FAILED")))
    reading = tracker.forget("prod")
    assert reading is not None and "prod" not in reading.clusters
    assert tracker.history("prod") == History()
    assert tracker.forget("never-seen") is None  # nothing to drop, nothing to publish


def test_a_restart_that_fails_again_between_two_polls_is_two_transitions() -> None:
    failed = conn("a", "RUNNING", ("FAILED", W1))
    h = advance(History(), snap(100, failed))
    # Auto-heal restarted the task at 110; the poll of 130 (begun at 129.9) finds it FAILED again.
    h = advance(h, snap(130, failed), restarts={("a", 0): 110.0})
    assert h.transitions == {("a", "RUNNING"): 1, ("a", "FAILED"): 1}
    assert [(t.at, t.from_state, t.to_state) for t in h.timeline] == [
        (110.0, "FAILED", "RUNNING"),
        (130, "RUNNING", "FAILED"),
    ]
    assert h.failed_since == {("a", 0): 130}  # a new failure: the restart ended the previous one
    # The same restart is counted once, however many polls see it in the reading.
    h = advance(h, snap(160, failed), restarts={("a", 0): 110.0})
    assert h.transitions == {("a", "RUNNING"): 1, ("a", "FAILED"): 1}
    # Four restarts, each failing again: KafkaConnectConnectorFlapping's three failures an hour and more.
    for i, at in enumerate((190, 220, 250, 280)):
        h = advance(h, snap(at, failed), restarts={("a", 0): at - 20.0 + i * 0.001})
    assert h.transitions[("a", "FAILED")] == 5


def test_a_restart_during_the_cycle_waits_for_the_next_poll_and_a_seen_recovery_is_not_doubled() -> None:
    failed = conn("a", "RUNNING", ("FAILED", W1))
    h = advance(History(), snap(100, failed))
    h = advance(h, snap(130, failed), restarts={("a", 0): 129.95})  # sent after this cycle read the statuses
    assert h.transitions == {}
    h = advance(h, snap(160, failed), restarts={("a", 0): 129.95})  # the next poll: it failed again
    assert h.transitions == {("a", "RUNNING"): 1, ("a", "FAILED"): 1}
    # A restart whose task the next poll sees RUNNING is an ordinary change, counted once.
    h = advance(h, snap(190, conn("a", "RUNNING", ("RUNNING", W1))), restarts={("a", 0): 170.0})
    h = advance(h, snap(220, failed), restarts={("a", 0): 170.0})
    assert h.transitions == {("a", "RUNNING"): 2, ("a", "FAILED"): 2}
    # A failed poll in between changes nothing; the restart is folded in by the next successful one.
    h = advance(h, snap(250, up=False), restarts={("a", 0): 230.0})
    h = advance(h, snap(280, failed), restarts={("a", 0): 230.0})
    assert h.transitions == {("a", "RUNNING"): 3, ("a", "FAILED"): 3}


def test_the_tracker_takes_the_restarts_from_the_healer_reading_in_the_view() -> None:
    from types import MappingProxyType

    from exporter.healer.policy import TargetKey
    from exporter.healer.reading import ClusterHealReading, HealerReading

    store = Store(expected=["prod"])
    store.derive(FailureTracker().step)
    failed = conn("a", "RUNNING", ("FAILED", W1))
    store.publish_cluster(snap(100, failed))
    heal = ClusterHealReading("enforce", "cluster", last_restart=MappingProxyType({TargetKey("a", 0): 110.0}))
    store.publish(HealerReading(MappingProxyType({"prod": heal})))
    store.publish_cluster(snap(130, failed))  # the tracker sees the healer's reading in the view it is handed
    reading = store.view.reading(FailuresReading)
    assert reading is not None
    assert reading.clusters["prod"].transitions == {("a", "RUNNING"): 1, ("a", "FAILED"): 1}
