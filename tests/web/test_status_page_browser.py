"""The status page in a real headless Chromium: the Workers table and the lost-worker mark are there after a
worker of a simulated cluster is killed (the exporter configured with one URL of it). The screenshot is kept
under pytest's temporary directory (``<basetemp>/<test>/status-page.png``, the newest runs are kept)."""

from __future__ import annotations

import asyncio
import html
import re
import time
from pathlib import Path

from exporter.config import build_config
from exporter.model import WorkerState
from simulator.connect.server import connect_in_thread
from simulator.connect.state import SimCluster
from simulator.faults import Fault
from tests.support.browser import load
from tests.support.daemon_harness import quick_config, running_daemon


async def test_workers_table_and_lost_worker_mark_in_chromium(tmp_path: Path) -> None:
    cluster = SimCluster(version="4.3.1", worker_count=2)
    for name in ("orders-sink", "billing-sink", "clicks-src"):
        cluster.add_connector(name, "source" if name.endswith("src") else "sink", tasks_max=2)
    with connect_in_thread(cluster) as sim:
        dead = cluster.worker_id(1)
        async with running_daemon(quick_config({"c": sim.urls[:1]})) as ex:
            await ex.next_polls("c", 2)
            sim.kill_worker(1)

            def lost() -> bool:
                snap = ex.daemon.store.view.clusters["c"]
                return any(w.worker_id == dead and w.state is WorkerState.LOST for w in snap.named_workers)

            for _ in range(20):  # the first poll after the kill already sees it; 20 only bounds a failure
                if lost():
                    break
                await ex.next_polls("c", 1)
            assert lost()
            page = await asyncio.to_thread(load, ex.base + "/", tmp_path / "status-page.png")
    dom = html.unescape(page.dom)
    print(f"status page screenshot: {page.screenshot}")
    workers = re.search(r'<table id="workers-table">(.*?)</table>', dom, re.S)
    assert workers is not None, dom[-3000:]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", workers.group(1), re.S)
    cells = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r, re.S) for r in rows]
    assert cells[0][:6] == ["cluster", "worker id", "state", "version", "tasks", "connectors"]
    by_id = {c[1]: c for c in cells[1:]}
    assert by_id[dead][2] == "lost" and by_id[cluster.worker_id(0)][2] == "reachable (healthy)"
    assert by_id[cluster.worker_id(0)][3] == "4.3.1"
    on_dead = sum(1 for n in cluster.connector_names() for t in cluster.connector(n).tasks if t.worker == 1)
    assert on_dead > 0 and int(by_id[dead][4]) == on_dead
    marked = re.findall(r"<td>([^<]+) <strong class=\"lost-worker\">\[on lost worker\]</strong>", dom)
    expected = {n for n in cluster.connector_names() if any(t.worker == 1 for t in cluster.connector(n).tasks)}
    assert expected and set(marked) == expected


async def test_a_down_or_unpolled_source_is_the_first_thing_on_the_page_in_chromium(tmp_path: Path) -> None:
    """prod answered, then every worker answers 500; legacy has refused every connection since the start; slow
    accepts and never answers, so its first poll has not finished. The daemon's clock runs five minutes behind
    the page's, so prod's last known state was read "5m ago" when the page is rendered."""
    prod, legacy, slow = (SimCluster(version="4.3.1", worker_count=2) for _ in range(3))
    prod.add_connector("orders-sink", "sink", tasks_max=2)
    prod.add_connector("clicks-src", "source")
    legacy.add_connector("old-src", "source")
    with connect_in_thread(prod) as p, connect_in_thread(legacy) as lg, connect_in_thread(slow) as sl:
        for worker in (0, 1):
            lg.set_fault(worker, Fault.refuse())
            sl.set_fault(worker, Fault.hang())
        config = build_config(
            {
                "web": {"listen_address": "127.0.0.1:0"},
                "clusters": [
                    {"name": "prod", "urls": p.urls, "poll_interval": 0.2, "cycle_timeout": 2},
                    {"name": "legacy", "urls": lg.urls, "poll_interval": 0.2, "cycle_timeout": 2},
                    {
                        "name": "slow",
                        "urls": sl.urls,
                        "poll_interval": 0.2,
                        "request_timeout": 600,
                        "cycle_timeout": 600,
                    },
                ],
            }
        )
        async with running_daemon(config, clock=lambda: time.time() - 300) as ex:
            await ex.wait_for(
                lambda s: s.current_state("kafka_connect_task_state", connector="orders-sink", task="1") == "RUNNING"
            )
            prod.fail_task("orders-sink", 1)
            await ex.wait_for(
                lambda s: s.current_state("kafka_connect_task_state", connector="orders-sink", task="1") == "FAILED"
            )
            for worker in (0, 1):
                p.set_fault(worker, Fault.http_status(500, "Request timed out"))
            await ex.wait_for(lambda s: s.value("kafka_connect_up", connect_cluster="prod") == 0.0, what="prod down")
            await ex.next_polls("legacy", 1)
            assert "slow" not in ex.daemon.store.view.clusters
            page = await asyncio.to_thread(load, ex.base + "/", tmp_path / "status-page-down.png")
    dom = html.unescape(page.dom)
    print(f"status page screenshot: {page.screenshot}")
    headings = re.findall(r"<h2[^>]*>(.*?)</h2>", dom, re.S)
    assert headings[0] == "Sources down", headings
    table = re.search(r'<table id="sources-down-table">(.*?)</table>', dom, re.S)
    assert table is not None, dom[:3000]
    rows = {
        c[0]: c
        for r in re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(1), re.S)[1:]
        for c in [re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)]
    }
    assert set(rows) == {"prod", "legacy", "slow"}
    assert rows["prod"][2] == "DOWN" and "HTTP 500" in rows["prod"][4]
    assert rows["prod"][5].startswith("2 shown as last seen 5m ago"), rows["prod"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(\d+m ago\)", rows["prod"][3]), rows["prod"][3]
    assert rows["legacy"][2] == "DOWN" and rows["legacy"][5] == "unknown: no poll has succeeded yet"
    assert "ConnectError" in rows["legacy"][4]
    assert rows["slow"][2] == "not polled yet"
    # Never a claim of health while sources are unseen; prod's last known state is shown, marked, in every table.
    assert "Every connector is healthy" not in dom and "Every connector is RUNNING" not in dom
    mark = "[last seen 5m ago]"
    for table_id in ("fleet", "workers-table"):
        found = re.search(rf'<table id="{table_id}">(.*?)</table>', dom, re.S)
        assert found is not None, table_id
        prod_rows = [r for r in re.findall(r"<tr[^>]*>(.*?)</tr>", found.group(1), re.S) if "<td>prod" in r]
        assert prod_rows and all(mark in r for r in prod_rows), (table_id, prod_rows)
    problems = re.search(r"<h2>Connectors that are not RUNNING</h2><table>(.*?)</table>", dom, re.S)
    assert problems is not None and "orders-sink" in problems.group(1) and mark in problems.group(1)
    clusters = re.search(r"<h2>Clusters</h2>\s*<table>(.*?)</table>", dom, re.S)
    assert clusters is not None and mark in clusters.group(1)
