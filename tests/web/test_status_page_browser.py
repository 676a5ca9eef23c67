"""The status page in a real headless Chromium: the Workers table and the lost-worker mark are there after a
worker of a simulated cluster is killed (the exporter configured with one URL of it). The screenshot is kept
under pytest's temporary directory (``<basetemp>/<test>/status-page.png``, the newest runs are kept)."""

from __future__ import annotations

import asyncio
import html
import re
from pathlib import Path

from exporter.model import WorkerState
from simulator.connect.server import connect_in_thread
from simulator.connect.state import SimCluster
from tests.browser import load
from tests.daemon_harness import quick_config, running_daemon


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
