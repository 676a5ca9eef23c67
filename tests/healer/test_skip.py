"""Skip rules: failures a restart cannot fix are never restarted, counted under ``skip`` with their rule."""

from __future__ import annotations

import time

import pytest
from freezegun.api import FrozenDateTimeFactory
from pydantic import ValidationError

from exporter.healer.config import DEFAULT_SKIP, AutohealConfig, SkipRule
from exporter.healer.policy import PolicyState, Reason, TargetKey, decide, matching_skip_rule
from exporter.healer.reading import HealerReading
from exporter.model import ClusterSnapshot, Connector, SourceKind, Task, Worker
from simulator.connect.state import SimCluster, connector_trace, java_trace, task_trace
from tests.healer.world import loop
from tests.support.traces import BAD_JSON_TRACE, FILE_TRACE

CONFIG_EXC = "org.apache.kafka.common.config.ConfigException"


def test_defaults_skip_bad_data_and_bad_config_but_not_what_a_restart_fixes() -> None:
    rules = DEFAULT_SKIP
    assert matching_skip_rule(rules, BAD_JSON_TRACE) == "tolerance-exceeded"
    dx = java_trace(
        "org.apache.kafka.connect.errors.DataException",
        "JsonConverter with schemas.enable requires ...",
        ("a.B.c(B.java:1)",),
    )
    assert matching_skip_rule(rules, dx) == "data-exception"
    assert (
        matching_skip_rule(
            rules, task_trace("sink", ("org.apache.kafka.common.errors.SerializationException", "Unknown magic byte!"))
        )
        == "serialization"
    )
    wrapped = java_trace(
        "org.apache.kafka.connect.errors.ConnectException", "x", (), (CONFIG_EXC, "Missing required configuration")
    )
    assert matching_skip_rule(rules, wrapped) == "config-exception"
    # Failures of the world around the connector: a restart heals them once it is back.
    for trace in (FILE_TRACE, task_trace("source"), task_trace("sink"), connector_trace(), None, "", "boom"):
        assert matching_skip_rule(rules, trace) is None, trace


def test_every_given_pattern_must_match() -> None:
    rule = SkipRule(name="pg-dup", root_cause=r"org\.postgresql\.util\.PSQLException", first_line="duplicate key")
    dup = java_trace(
        "org.apache.kafka.connect.errors.ConnectException",
        "duplicate key value",
        (),
        ("org.postgresql.util.PSQLException", "dup"),
    )
    other = java_trace(
        "org.apache.kafka.connect.errors.ConnectException",
        "connection lost",
        (),
        ("org.postgresql.util.PSQLException", "x"),
    )
    assert matching_skip_rule([rule], dup) == "pg-dup"
    assert matching_skip_rule([rule], other) is None
    # Class patterns match whole names: "Exception" alone matches no class.
    assert matching_skip_rule([SkipRule(name="all", exception="Exception")], dup) is None
    assert matching_skip_rule([SkipRule(name="any", exception=r".*Exception")], dup) == "any"
    assert matching_skip_rule([], dup) is None


def test_config_validation() -> None:
    assert [r.name for r in AutohealConfig().skip] == [
        "tolerance-exceeded",
        "data-exception",
        "serialization",
        "config-exception",
    ]
    assert AutohealConfig(skip=[]).skip == []
    with pytest.raises(ValidationError, match="needs exception"):
        AutohealConfig.model_validate({"skip": [{"name": "empty"}]})
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        AutohealConfig.model_validate({"skip": [{"name": "bad", "cause": "("}]})
    with pytest.raises(ValidationError):
        AutohealConfig.model_validate({"skip": [{"name": "typo", "exeption": "x"}]})


def snap(*tasks: Task) -> ClusterSnapshot:
    return ClusterSnapshot(
        cluster="prod",
        kind=SourceKind.CONNECT,
        taken_at=time.time(),
        duration=0.1,
        up=True,
        poll_interval=30.0,
        workers=(Worker(url="http://w0:8083", reachable=True, version="3.9.0"),),
        connectors=(Connector("orders", "sink", "X", "RUNNING", "w0:8083", tasks),),
        status_url="http://w0:8083",
    )


def test_a_skipped_target_is_never_restarted_and_the_others_are(clock: FrozenDateTimeFactory) -> None:
    config = AutohealConfig.model_validate({"mode": "enforce", "grace_period": "1m", "backoff": {"jitter": 0}})
    state = PolicyState()
    s = snap(Task(0, "FAILED", "w0:8083", BAD_JSON_TRACE), Task(1, "FAILED", "w0:8083", FILE_TRACE))
    restarted: list[TargetKey] = []
    for minute in range(30):
        plan, state = decide(config, s, time.time(), state)
        skipped = [d for d in plan.decisions if d.reason is Reason.SKIP]
        assert [(d.key, d.rule) for d in skipped] == [(TargetKey("orders", 0), "tolerance-exceeded")], minute
        assert skipped[0].changed is (minute == 0)  # logged once, when it starts
        restarted += [k for g in plan.groups for k in g.targets]
        clock.tick(60)
        s = snap(*s.connectors[0].tasks)
    assert restarted and set(restarted) == {TargetKey("orders", 1)}
    # The same target without the default rules is restarted like any other.
    plan, _ = decide(config.model_copy(update={"skip": []}), s, time.time(), PolicyState())
    clock.tick(120)
    plan2, _ = decide(config.model_copy(update={"skip": []}), snap(*s.connectors[0].tasks), time.time(), _)
    assert TargetKey("orders", 0) in [k for g in plan2.groups for k in g.targets]


def test_denied_comes_before_skip() -> None:
    config = AutohealConfig.model_validate({"mode": "enforce", "deny": ["orders"]})
    plan, _ = decide(config, snap(Task(0, "FAILED", "w0:8083", BAD_JSON_TRACE)), time.time(), PolicyState())
    assert [d.reason for d in plan.decisions] == [Reason.DENIED]


async def test_the_healer_counts_skips_shows_the_rule_and_stamps_the_last_restart() -> None:
    sim = SimCluster(version="3.9.0", worker_count=1)
    sim.add_connector("orders", "sink", tasks_max=2)
    async with loop(sim) as lp:
        await lp.cycle()
        sim.fail_task("orders", 0, trace=BAD_JSON_TRACE, persistent=True)
        sim.fail_task("orders", 1)
        await lp.cycle()
        await lp.cycle(2 * 60)  # past the grace period
        assert lp.restarts() == ["/connectors/orders/tasks/1/restart"]  # only what a restart can fix
        m = lp.scrape()
        assert m.value("kafka_connect_autoheal_suppressed_total", reason="skip") == 2
        assert m.value("kafka_connect_autoheal_last_restart_timestamp_seconds", connector="orders", task="1") == (
            lp.clock.now
        )
        assert m.samples("kafka_connect_autoheal_last_restart_timestamp_seconds", task="0") == []
        reading = lp.store.view.reading(HealerReading)
        assert reading is not None
        assert dict(reading.clusters["sim"].skipped) == {TargetKey("orders", 0): "tolerance-exceeded"}
