"""Status page details in a real headless Chromium: no bare table headers for an empty timeline, no auto-heal
columns without auto-heal, and no "0/0" workers for a Confluent Cloud cluster (whose workers nobody sees)."""

from __future__ import annotations

import asyncio
import html
import re
from pathlib import Path
from typing import Any

from exporter.config import build_config
from simulator.cloud.demo import DEMO_NAME, demo_config, start_demo_cloud
from simulator.connect.server import connect_in_thread
from simulator.connect.state import SimCluster
from tests.support.browser import load
from tests.support.daemon_harness import Running, running_daemon
from tests.support.waiting import eventually_async


def _cells(table: str) -> list[list[str]]:
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
    return [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r, re.S)] for r in rows
    ]


def _table_after(dom: str, heading: str) -> str:
    found = re.search(
        re.escape(heading) + r"</h[23]>\s*(?:<script>.*?</script>)?\s*(?:<p>.*?</p>)?\s*<table[^>]*>(.*?)</table>",
        dom,
        re.S,
    )
    assert found is not None, dom[-4000:]
    return found.group(1)


def _config(urls: list[str], cloud_url: str, autoheal: str) -> Any:
    return build_config(
        {
            "web": {"listen_address": "127.0.0.1:0"},
            "clusters": [
                {
                    "name": "c",
                    "urls": urls,
                    "poll_interval": 0.2,
                    "cycle_timeout": 2.0,
                    "offsets_enabled": False,
                    "autoheal": {"mode": autoheal, "grace_period": "1h"},
                }
            ],
            # The managed connectors' auto-heal follows the same mode here (the demo's own is enforce).
            "confluent_cloud": {
                **demo_config(cloud_url, interval=0.5),
                "autoheal": {"mode": autoheal, "grace_period": "1h"},
            },
        }
    )


async def _both_polled(ex: Running) -> None:
    await ex.next_polls("c", 2)
    # The Cloud source publishes within its first cycle.
    await eventually_async(lambda: DEMO_NAME in ex.daemon.store.view.clusters, what="the Cloud cluster published")


async def test_page_details_in_chromium(tmp_path: Path) -> None:
    cluster = SimCluster(version="3.9.0", worker_count=2)
    cluster.add_connector("orders-sink", "sink", tasks_max=2)
    cluster.add_connector("clicks-src", "source")
    cluster.fail_task("orders-sink", 1)
    cloud, _, cloud_url = await start_demo_cloud()
    try:
        with connect_in_thread(cluster) as sim:
            async with running_daemon(_config(sim.urls, cloud_url, "off")) as ex:
                await _both_polled(ex)
                page = await asyncio.to_thread(load, ex.base + "/", tmp_path / "status-page.png")
            dom = html.unescape(page.dom)
            print(f"status page screenshot: {page.screenshot}")

            # Confluent Cloud shows no workers: "managed", never "0/0".
            clusters = {row[0]: row for row in _cells(_table_after(dom, "<h2>Clusters"))[1:]}
            assert clusters["c"][3] == "2/2"
            assert clusters[DEMO_NAME][1] == "ccloud" and clusters[DEMO_NAME][3] == "managed"
            assert "0/0" not in dom

            # Auto-heal is off: the fleet table has no restart columns.
            fleet = _cells(_table_after(dom, "Connectors that are not healthy"))
            assert fleet[0] == ["cluster", "connector", "health", "state", "fingerprint (exception ← root cause)",
                                "failed since (UTC)"]  # fmt: skip
            assert all(len(row) == len(fleet[0]) for row in fleet[1:])
            assert any(row[:3] == ["c", "orders-sink", "degraded"] for row in fleet[1:]), fleet

            # Nothing changed state yet: a sentence, not a table of bare headers.
            assert re.search(r"<h3>Last state transitions</h3>\s*<p>None seen since", dom), dom[-3000:]
            assert 'id="transitions"' not in dom

            # With auto-heal (dry-run) the columns are there; after a change, the timeline is a table.
            async with running_daemon(_config(sim.urls, cloud_url, "dry-run")) as ex:
                await _both_polled(ex)
                sim.cluster.fail_task("orders-sink", 0)
                await ex.next_polls("c", 3)
                healed = html.unescape((await ex.client.get(ex.base + "/")).text)
            header = _cells(_table_after(healed, "Connectors that are not healthy"))[0]
            assert header[-3:] == ["restarts", "last restart (UTC)", "skip rule"]
            timeline = _cells(_table_after(healed, "Last state transitions"))
            assert timeline[0] == ["time (UTC)", "cluster", "connector", "task", "change"]
            assert ["c", "orders-sink", "0", "RUNNING → FAILED"] in [row[1:] for row in timeline[1:]]
    finally:
        await cloud.stop()
