"""Auto-heal against real Apache Kafka Connect workers (every pinned version).

The real poller reads the real workers every second and the Healer acts on its snapshots, with the policy's
minutes scaled down to seconds. A FileStreamSink whose output directory does not exist fails in
``start()`` ("Couldn't find or create file ..."): a real FAILED task with a real trace, whose cause a test can
fix by creating the directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.waiting import eventually_async

from .kafka.harness import ConnectCluster
from .kafka.rest import ConnectRest, file_sink, file_source
from .watch import FAST, watching

pytestmark = pytest.mark.integration


def task_states(rest: ConnectRest, name: str) -> list[str]:
    resp = rest.request("GET", f"/connectors/{name}/status")
    return [t["state"] for t in resp.json().get("tasks", [])] if resp.status_code == 200 else []


async def test_sink_that_cannot_write_its_file_is_healed_once_the_cause_is_fixed(
    connect: ConnectCluster, connect_rest: ConnectRest, tmp_path: Path
) -> None:
    out_dir = tmp_path / "not-yet"
    out = out_dir / "out.txt"
    file_source(connect_rest, "heal-src", tmp_path / "in.txt", "heal-lines", "alpha\nbeta\n")
    file_sink(connect_rest, "heal-sink", out, "heal-lines")
    await eventually_async(
        lambda: task_states(connect_rest, "heal-sink") == ["FAILED"],
        timeout=60,
        interval=0.5,
        what="the sink task to fail",
    )
    trace = connect_rest.status("heal-sink")["tasks"][0]["trace"]
    assert "Couldn't find or create file" in trace

    async with watching(connect, {**FAST, "max_attempts": 50}) as h:
        # While the directory is missing, restarts are tried (backed off) and fail again.
        await eventually_async(
            lambda: h.restarts("heal-sink") >= 2, timeout=60, interval=0.5, what="two restarts of the still-broken sink"
        )
        assert task_states(connect_rest, "heal-sink") in (["FAILED"], ["RESTARTING"], ["RUNNING"])
        out_dir.mkdir()  # the operator fixes the cause; the healer does the rest
        await eventually_async(
            lambda: task_states(connect_rest, "heal-sink") == ["RUNNING"],
            timeout=60,
            interval=0.5,
            what="the sink to be healed",
        )
        await eventually_async(
            lambda: out.exists() and out.read_text(encoding="utf-8") == "alpha\nbeta\n",
            timeout=60,
            interval=0.5,
            what="records in the sink file",
        )
        healed_after = h.restarts("heal-sink")
        await h.after(5, rounds=5)
        assert h.restarts("heal-sink") == healed_after  # nothing more once it runs
        m = h.scrape()
        assert m.value("kafka_connect_autoheal_persistent_failures", connect_cluster="real") == 0
        assert m.samples("kafka_connect_autoheal_restarts_total", connector="heal-src") == []


async def test_sink_that_keeps_failing_reaches_the_attempt_cap_and_is_left_alone(
    connect: ConnectCluster, connect_rest: ConnectRest, tmp_path: Path
) -> None:
    file_sink(connect_rest, "cap-sink", tmp_path / "never" / "out.txt", "cap-lines")
    await eventually_async(
        lambda: task_states(connect_rest, "cap-sink") == ["FAILED"],
        timeout=60,
        interval=0.5,
        what="the sink task to fail",
    )
    async with watching(connect, {**FAST, "max_attempts": 2}) as h:
        await eventually_async(
            lambda: h.scrape().value("kafka_connect_autoheal_persistent_failure", connector="cap-sink", task="0") == 1,
            timeout=90,
            interval=0.5,
            what="the sink to be marked a persistent failure",
        )
        assert h.restarts("cap-sink") == 2
        await h.after(12, rounds=8)  # several grace periods, backoffs and healer rounds later: still left alone
        assert h.restarts("cap-sink") == 2
        m = h.scrape()
        assert m.value("kafka_connect_autoheal_persistent_failures", connect_cluster="real") == 1
        assert m.value("kafka_connect_autoheal_suppressed_total", connect_cluster="real", reason="cap") >= 5  # type: ignore[operator]
        assert task_states(connect_rest, "cap-sink") == ["FAILED"]


async def test_paused_and_stopped_connectors_are_never_touched(
    connect: ConnectCluster, connect_rest: ConnectRest, tmp_path: Path
) -> None:
    file_sink(connect_rest, "paused-sink", tmp_path / "gone-a" / "out.txt", "paused-lines")
    file_sink(connect_rest, "stopped-sink", tmp_path / "gone-b" / "out.txt", "stopped-lines")
    for name in ("paused-sink", "stopped-sink"):
        await eventually_async(
            lambda name=name: task_states(connect_rest, name) == ["FAILED"],
            timeout=60,
            interval=0.5,
            what=f"{name} to fail",
        )
    connect_rest.pause("paused-sink")
    connect_rest.stop("stopped-sink")
    await eventually_async(
        lambda: connect_rest.status("stopped-sink")["connector"]["state"] == "STOPPED",
        timeout=60,
        interval=0.5,
        what="the connector to stop",
    )
    await eventually_async(
        lambda: connect_rest.status("paused-sink")["connector"]["state"] == "PAUSED",
        timeout=60,
        interval=0.5,
        what="the connector to pause",
    )
    async with watching(connect, FAST) as h:
        await h.after(15, rounds=10)  # many grace periods and healer rounds
        assert h.scrape().samples("kafka_connect_autoheal_restarts_total") == []
        suppressed = h.scrape().samples("kafka_connect_autoheal_suppressed_total")
        assert suppressed and all(v == 0 for _, v in suppressed)  # not even considered
    paused = connect_rest.status("paused-sink")
    assert paused["connector"]["state"] == "PAUSED"
    assert [t["state"] for t in paused["tasks"]] == ["FAILED"]  # a FAILED task under a paused connector stays
    stopped = connect_rest.status("stopped-sink")
    assert stopped["connector"]["state"] == "STOPPED" and stopped["tasks"] == []
