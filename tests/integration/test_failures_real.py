"""Failure intelligence against real Apache Kafka Connect workers (every pinned version).

The real poller reads the real workers every second; the failure tracker and the healer step on each snapshot,
as in the daemon. Two real failures:

- a FileStreamSink whose output directory does not exist fails in ``start()`` ("Couldn't find or create
  file ...", caused by the missing path): a restart heals it once the directory exists;
- a sink whose ``JsonConverter`` has ``schemas.enable=true`` reading plain strings fails on its first record
  (with ``errors.tolerance=none``): no restart can fix it, and the default skip rules keep the healer away.

The expected classes come from the real traces, read by a deliberately naive oracle (the text before the first
colon of the first line, and of the last line that starts with ``Caused by: ``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from exporter.healer.reading import HealerReading
from tests.support.scrape import Scrape
from tests.support.waiting import eventually_async

from .fingerprints import fingerprint_of, oracle
from .kafka.harness import ConnectCluster
from .kafka.rest import ConnectRest, file_sink, file_source
from .watch import FAST, watching

pytestmark = pytest.mark.integration

STRING = "org.apache.kafka.connect.storage.StringConverter"
JSON = "org.apache.kafka.connect.json.JsonConverter"
# What the sources read: plain lines, which a JsonConverter with schemas cannot parse.
PLAIN = "hello world\nnot json at all\n"


def task(rest: ConnectRest, name: str) -> dict[str, Any] | None:
    resp = rest.request("GET", f"/connectors/{name}/status")
    tasks = resp.json().get("tasks", []) if resp.status_code == 200 else []
    return tasks[0] if tasks else None


def task_state(rest: ConnectRest, name: str) -> str | None:
    t = task(rest, name)
    return None if t is None else str(t["state"])


async def test_file_sink_fingerprint_and_failed_since_survive_a_worker_kill(
    connect: ConnectCluster, connect_rest: ConnectRest, tmp_path: Path
) -> None:
    file_source(connect_rest, "fi-src", tmp_path / "in.txt", "fi-lines", PLAIN)
    file_sink(connect_rest, "fi-sink", tmp_path / "missing-dir" / "out.txt", "fi-lines")
    await eventually_async(
        lambda: task_state(connect_rest, "fi-sink") == "FAILED", timeout=60, interval=0.5, what="the sink task to fail"
    )
    first = task(connect_rest, "fi-sink")
    assert first is not None
    trace = str(first["trace"])
    assert "Couldn't find or create file" in trace
    expected = oracle(trace)
    assert expected[0] == "org.apache.kafka.connect.errors.ConnectException"

    async with watching(connect) as w:
        await eventually_async(
            lambda: fingerprint_of(w.scrape(), "fi-sink") is not None,
            timeout=30,
            interval=0.5,
            what="the failure fingerprint",
        )
        s = w.scrape()
        assert fingerprint_of(s, "fi-sink") == expected
        since = s.value("kafka_connect_failed_since_timestamp_seconds", connector="fi-sink", task="0")
        assert since is not None
        assert s.samples("kafka_connect_failure_info", connector="fi-src") == []
        assert s.label_values("kafka_connect_connector_health", "health", connector="fi-sink") == {"failed"}
        await eventually_async(
            lambda: (
                w.scrape().label_values("kafka_connect_connector_health", "health", connector="fi-src") == {"healthy"}
            ),
            timeout=30,
            interval=0.5,
            what=f"the source to be healthy; it is {w.store.view.clusters['real'].connector('fi-src')}",
        )

        # Kill the worker that ran the failed task: after the rebalance delay the task moves to the other
        # worker, which starts it, and it fails there again. Failed-since is the first poll that saw it fail.
        owner = connect.worker_ids.index(str(first["worker_id"]))
        survivor = 1 - owner
        connect.kill_worker(owner)
        with connect.rest(survivor) as rest:
            await eventually_async(
                lambda: (
                    (t := task(rest, "fi-sink")) is not None
                    and t["worker_id"] == connect.worker_ids[survivor]
                    and t["state"] == "FAILED"
                ),
                timeout=120,
                interval=0.5,
                what="the failed task to move to the surviving worker and fail there",
            )
            await w.after(3, rounds=3)  # several polls of the moved task
            s = w.scrape()
            assert s.value("kafka_connect_failed_since_timestamp_seconds", connector="fi-sink", task="0") == since
            assert fingerprint_of(s, "fi-sink") == oracle(str(task(rest, "fi-sink")["trace"]))  # type: ignore[index]
            moved = [t for t in w.tracker.history("real").timeline if t.connector == "fi-sink"]
            assert all(t.to_state == "FAILED" or t.from_state == "FAILED" for t in moved)
            counted = {
                lbl["to_state"]: v for lbl, v in s.samples("kafka_connect_state_transitions_total", connector="fi-sink")
            }
            assert {k: v for k, v in counted.items() if v} == {k: float(v) for k, v in w.changes("fi-sink").items()}


async def test_a_sink_that_fails_after_every_restart_counts_a_failure_per_restart(
    connect: ConnectCluster, connect_rest: ConnectRest, tmp_path: Path
) -> None:
    """A FileStreamSink whose output directory does not exist fails in start() after every restart, usually before
    the next poll: each accepted restart still counts one transition to FAILED, so KafkaConnectConnectorFlapping
    (three an hour) fires."""
    file_sink(connect_rest, "fl-sink", tmp_path / "missing-dir" / "out.txt", "fl-lines")
    await eventually_async(
        lambda: task_state(connect_rest, "fl-sink") == "FAILED", timeout=60, interval=0.5, what="the sink task to fail"
    )

    def failures(s: Scrape) -> float:
        return s.value("kafka_connect_state_transitions_total", connector="fl-sink", to_state="FAILED") or 0.0

    async with watching(connect, FAST) as w:
        # Seen FAILED at the first poll (not a change); every restart folded in by the poll after it adds one.
        await eventually_async(
            lambda: w.restarts("fl-sink") >= 3 and failures(w.scrape()) == w.restarts("fl-sink"),
            timeout=120,
            interval=0.5,
            what="one transition to FAILED per restart",
        )
        s = w.scrape()
        assert task_state(connect_rest, "fl-sink") == "FAILED"
        assert failures(s) >= 3  # the flapping alert's threshold
        timeline = [t for t in w.tracker.history("real").timeline if t.connector == "fl-sink"]
        assert {(t.from_state, t.to_state) for t in timeline} <= {
            ("FAILED", "RUNNING"),
            ("RUNNING", "FAILED"),
            ("FAILED", "RESTARTING"),
            ("RESTARTING", "FAILED"),
            ("RESTARTING", "RUNNING"),
            ("UNASSIGNED", "RUNNING"),
            ("FAILED", "UNASSIGNED"),
            ("UNASSIGNED", "FAILED"),
        }
        assert sum(1 for t in timeline if t.to_state == "FAILED") == failures(s)


async def test_the_healer_restarts_the_file_failure_and_skips_the_bad_data_failure(
    connect: ConnectCluster, connect_rest: ConnectRest, tmp_path: Path
) -> None:
    # Plain strings (StringConverter) on the topic, read by a JsonConverter that expects schema + payload.
    file_source(connect_rest, "bd-src", tmp_path / "plain.txt", "bd-lines", PLAIN, **{"value.converter": STRING})
    file_sink(
        connect_rest,
        "bd-sink",
        tmp_path / "bd-out.txt",
        "bd-lines",
        **{"value.converter": JSON, "value.converter.schemas.enable": "true"},
    )
    out_dir = tmp_path / "not-yet"
    file_source(connect_rest, "fx-src", tmp_path / "fx.txt", "fx-lines", PLAIN)
    file_sink(connect_rest, "fx-sink", out_dir / "out.txt", "fx-lines")
    await eventually_async(
        lambda: task_state(connect_rest, "bd-sink") == "FAILED",
        timeout=60,
        interval=0.5,
        what="the bad-data sink to fail",
    )
    await eventually_async(
        lambda: task_state(connect_rest, "fx-sink") == "FAILED", timeout=60, interval=0.5, what="the file sink to fail"
    )
    bad = task(connect_rest, "bd-sink")
    assert bad is not None
    bad_trace = str(bad["trace"])
    assert "org.apache.kafka.connect.errors.DataException" in bad_trace  # the converter's error, in the chain

    async with watching(connect, FAST) as w:
        # The file sink is restarted (and fails again) while its directory is missing ...
        await eventually_async(
            lambda: w.restarts("fx-sink") >= 2,
            timeout=60,
            interval=0.5,
            what="two restarts of the still-broken file sink",
        )
        s = w.scrape()
        # ... the bad-data sink never: a default skip rule says no restart can fix it.
        assert w.restarts("bd-sink") == 0
        assert s.value("kafka_connect_autoheal_suppressed_total", connect_cluster="real", reason="skip") >= 2  # type: ignore[operator]
        reading = w.store.view.reading(HealerReading)
        assert reading is not None
        skipped = {(k.connector, k.task): rule for k, rule in reading.clusters["real"].skipped.items()}
        assert skipped == {("bd-sink", 0): "tolerance-exceeded"}
        assert fingerprint_of(s, "bd-sink") == oracle(bad_trace)
        assert s.value("kafka_connect_autoheal_last_restart_timestamp_seconds", connector="fx-sink", task="0")
        assert s.samples("kafka_connect_autoheal_last_restart_timestamp_seconds", connector="bd-sink") == []
        # A restart that fails again within a poll interval is FAILED at both polls, yet it went RUNNING and back:
        # counted as those two changes (below), beside whatever changes the polls saw themselves.

        out_dir.mkdir()  # the operator fixes the cause; the healer does the rest
        await eventually_async(
            lambda: task_state(connect_rest, "fx-sink") == "RUNNING",
            timeout=60,
            interval=0.5,
            what="the file sink to be healed",
        )
        await eventually_async(
            lambda: w.scrape().samples("kafka_connect_failure_info", connector="fx-sink") == [],
            timeout=30,
            interval=0.5,
            what="the healed sink's failure to go",
        )
        s = w.scrape()
        assert s.samples("kafka_connect_failed_since_timestamp_seconds", connector="fx-sink") == []
        assert s.label_values("kafka_connect_connector_health", "health", connector="fx-sink") == {"healthy"}
        assert w.restarts("bd-sink") == 0
        assert task_state(connect_rest, "bd-sink") == "FAILED"
        assert fingerprint_of(s, "bd-sink") == oracle(bad_trace)
        counted = {
            lbl["to_state"]: v for lbl, v in s.samples("kafka_connect_state_transitions_total", connector="bd-sink")
        }
        assert {k: v for k, v in counted.items() if v} == {k: float(v) for k, v in w.changes("bd-sink").items()}
        # fx-sink: what the polls saw, plus one RUNNING and one FAILED for each restart that failed again unseen.
        counted = {
            lbl["to_state"]: v for lbl, v in s.samples("kafka_connect_state_transitions_total", connector="fx-sink")
        }
        seen = w.changes("fx-sink")
        unseen = counted.get("FAILED", 0) - seen.get("FAILED", 0)
        assert 0 <= unseen == counted.get("RUNNING", 0) - seen.get("RUNNING", 0)
        assert unseen <= w.restarts("fx-sink")
        assert w.changes("fx-sink").get("RUNNING", 0) >= 1
