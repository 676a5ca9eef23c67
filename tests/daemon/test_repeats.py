"""Warnings that repeat every cycle are logged once, then summarised, and always counted."""

from __future__ import annotations

import json
import signal
from typing import Any

from exporter.repeats import RepeatLimiter
from simulator.connect.server import SimThread
from tests.support.clocks import ManualClock
from tests.support.processes import exporter_process, free_port, wait_scrape


class Lines:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))


def test_a_repeated_warning_is_logged_once_then_summarised_and_always_counted() -> None:
    clock = ManualClock(1000.0)
    log = Lines()
    limiter = RepeatLimiter(300.0, clock=clock.time)
    for _ in range(10):  # a poll every 30 s for 5 minutes
        limiter.warn(log, "poll_failed", ("prod", "http://w1/"), url="http://w1/")
        clock.advance(30)
    assert [e for e, _ in log.lines] == ["poll_failed"]
    assert log.lines[0][1] == {"url": "http://w1/", "repeats": "logged once, then every 5m"}
    limiter.warn(log, "poll_failed", ("prod", "http://w1/"), url="http://w1/")  # 300 s after the first line
    assert log.lines[1] == ("poll_failed", {"url": "http://w1/", "repeated": 10, "over": "5m"})
    assert limiter.counts == {"poll_failed": 11}
    # Another key is its own story, counted under the same event.
    limiter.warn(log, "poll_failed", ("prod", "http://w2/"), url="http://w2/")
    assert len(log.lines) == 3 and limiter.counts["poll_failed"] == 12
    # Quiet for longer than the summary period: the worker answered again; its next failure is news.
    clock.advance(301)
    limiter.warn(log, "poll_failed", ("prod", "http://w1/"), url="http://w1/")
    assert log.lines[-1][1]["repeats"] == "logged once, then every 5m"
    assert limiter.reading().counts == {"poll_failed": 13}


def test_a_worker_that_never_answers_logs_once_while_the_counter_counts_every_poll(sim: SimThread) -> None:
    sim.cluster.add_connector("a", "source")
    silent = f"http://127.0.0.1:{free_port()}"  # nothing listens
    args = ["--connect.poll-interval", "200ms", "--connect.url", f"prod={silent}"]
    for url in sim.urls:
        args += ["--connect.url", f"prod={url}"]
    with exporter_process(*args) as (proc, base):
        wait_scrape(base, lambda s: (s.value("kafka_connect_exporter_warnings_total", event="poll_failed") or 0) >= 10)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 0, stderr[-2000:]
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    failed = [e for e in events if e["event"] == "poll_failed"]
    assert len(failed) == 1, failed
    assert failed[0]["url"].startswith(silent) and failed[0]["repeats"] == "logged once, then every 5m"
