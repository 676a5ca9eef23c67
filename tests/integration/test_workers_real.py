"""Workers as the statuses name them, against real Kafka Connect workers of every pinned version (>= 3.9).

The exporter is configured with ONE worker URL, the way most Kubernetes users point it at a Service. The other
worker is SIGKILLed: Connect keeps its tasks RUNNING under its worker_id until the rebalance delay
(scheduled.rebalance.max.delay.ms, 10 s in the harness, 5 minutes by default) moves them. The exporter must
show it lost within two poll intervals, count its tasks per connector, mark it on the status page (loaded in a
real headless Chromium; the screenshot is kept under the test's tmp dir), and forget it once the work moved.
The harness's workers advertise 127.0.0.1 (rest.advertised.host.name), so every probe stays on loopback.
"""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import pytest

from tests.support.browser import load
from tests.support.scrape import Scrape

from .cli_exporter import (
    exporter,
    polls_done,
    rest_states,
    running_pipelines_and_a_busy_worker,
    wait_scrape,
)
from .kafka.harness import ConnectCluster
from .kafka.rest import ConnectRest

pytestmark = pytest.mark.integration

REACHABLE = "kafka_connect_worker_reachable"
ON_LOST = "kafka_connect_connector_tasks_on_lost_workers"


def on_lost(s: Scrape) -> dict[str, float]:
    return {labels["connector"]: v for labels, v in s.samples(ON_LOST, connect_cluster="default")}


def test_a_killed_worker_is_lost_while_connect_still_reports_its_tasks_running(
    connect: ConnectCluster, connect_rest: ConnectRest, tmp_path: Path
) -> None:
    assert all(re.match(r"^127\.\d+\.\d+\.\d+:\d+$", w) for w in connect.worker_ids), connect.worker_ids
    status, owned, victim = running_pipelines_and_a_busy_worker(connect, connect_rest, tmp_path, "w-")
    survivor = 1 - victim
    dead_id, live_id = connect.worker_ids[victim], connect.worker_ids[survivor]
    on_dead = {(n, t["id"]) for n, st in status.items() for t in st["tasks"] if t["worker_id"] == dead_id}
    assert on_dead, f"no task on either worker? {status}"
    per_connector = {n: sum(1 for c, _ in on_dead if c == n) for n in status}

    with exporter(tmp_path / "exporter.log", [connect.urls[survivor]]) as ex:  # ONE URL: the survivor's
        s = wait_scrape(
            ex,
            lambda s: s.value(REACHABLE, worker_id=dead_id) == 1.0 and s.value(REACHABLE, worker_id=live_id) == 1.0,
            "both workers, found in the statuses, reachable",
        )
        assert s.value("kafka_connect_worker_up", worker=connect.urls[victim]) is None  # never configured
        assert s.value("kafka_connect_worker_tasks", worker_id=dead_id) == owned[victim]
        for wid in (dead_id, live_id):  # every pinned version is >= 3.9: GET /health answers
            assert s.value("kafka_connect_worker_health", worker_id=wid, status="healthy") == 1.0
        assert set(on_lost(s).values()) == {0.0}

        connect.kill_worker(victim)
        killed_at = time.monotonic()
        polls_at_kill = polls_done(ex.scrape())
        scrapes: list[tuple[float, Scrape]] = []

        def lost(s: Scrape) -> bool:
            scrapes.append((time.monotonic() - killed_at, s))
            return s.value(REACHABLE, worker_id=dead_id) == 0.0

        s = wait_scrape(ex, lost, "the killed worker lost", timeout=30)
        # The gap this closes: Connect, asked right now, still reports the dead worker's tasks RUNNING on it.
        with connect.rest(survivor) as rest:
            now = rest_states(rest)
        still = {(n, t["id"]) for n, st in now.items() for t in st["tasks"] if t["worker_id"] == dead_id}
        assert still == on_dead, f"Connect already moved the tasks; statuses now {now}"
        assert all(t["state"] == "RUNNING" for st in now.values() for t in st["tasks"] if t["worker_id"] == dead_id)
        lost_after = scrapes[-1][0]
        # Within two poll intervals, counted in the exporter's own polls (as test_exporter_real counts its lag), so
        # a loaded machine that slows the scrapes cannot break it: the poll in flight at the kill may have probed
        # the worker just before it died; the one after it cannot miss it (a killed worker refuses at once).
        lag_polls = polls_done(s) - polls_at_kill
        assert 0 <= lag_polls <= 2, f"lost only after {lag_polls} polls ({lost_after:.1f}s)"
        print(f"killed worker lost after {lag_polls:g} polls, {lost_after:.1f}s")
        assert on_lost(s) == {n: float(k) for n, k in per_connector.items()}
        assert s.value(REACHABLE, worker_id=live_id) == 1.0
        assert s.value("kafka_connect_worker_tasks", worker_id=dead_id) == len(on_dead)
        assert s.value("kafka_connect_up", connect_cluster="default") == 1.0

        page = load(ex.base + "/", tmp_path / "status-page-lost-worker.png")
        print(f"status page screenshot: {page.screenshot}")
        dom = html.unescape(page.dom)
        assert re.search(rf"<td>{re.escape(dead_id)}</td><td>lost</td>", dom), dom[-3000:]
        assert re.search(rf"<td>{re.escape(live_id)}</td><td>reachable \(healthy\)</td>", dom)
        marked = set(re.findall(r"<td>([^<]+) <strong class=\"lost-worker\">\[on lost worker\]</strong>", dom))
        assert marked == {n for n, k in per_connector.items() if k}

        # The rebalance delay ends: the work moves, the lost worker is forgotten and the counts are 0.
        s = wait_scrape(
            ex,
            lambda s: s.value(REACHABLE, worker_id=dead_id) is None and set(on_lost(s).values()) == {0.0},
            "the work moved and the lost worker forgotten",
            timeout=90,
        )
        assert s.value("kafka_connect_worker_tasks", worker_id=live_id) == sum(owned)
        assert "Traceback" not in ex.log_text()
