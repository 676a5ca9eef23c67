"""``python -m bench.faults``: how /metrics and the event loop fare while a cluster misbehaves.

The fault matrix (``tests/daemon/test_faults.py``) proves the behaviour: every scrape answers while a worker
hangs, answers late, refuses, or sends 50 MB. This measures what that costs, on this machine, at this load,
without asserting it (a loaded CI machine would break any budget). For each case the real daemon runs in
this process against a simulated cluster of 2 workers (same settings as the matrix: poll 0.25 s, request
timeout 0.3 s, cycle deadline 0.8 s, 4 MiB response bound), the fault is set, and one client scrapes
``/metrics`` back to back (from a thread of its own) for ``--seconds`` while a 10 ms ticker on the event loop records:

* ``/metrics`` latency at the client (p50, p95, max);
* loop CPU: the most CPU the event loop thread spent between two ticks, i.e. without yielding. Unlike
  wall-clock lag (also recorded), it does not grow when the machine is busy and the process is descheduled;
  it grows when something runs on the loop without yielding. The scraping client runs in another thread.

``BENCH_QUICK=1`` (or ``--quick``) runs each case for 1 s. Prints a table and writes ``bench/faults.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.run import ROOT, machine
from exporter.config import build_config
from exporter.daemon import Daemon
from exporter.logs import configure as configure_logs
from simulator.connect.server import SimThread, connect_in_thread
from simulator.connect.state import SimCluster
from simulator.faults import Fault

CLUSTER_OPTS: dict[str, Any] = {
    "poll_interval": 0.25,
    "request_timeout": 0.3,
    "cycle_timeout": 0.8,
    "max_response_size": "4MiB",
}


@dataclass(frozen=True)
class Case:
    name: str
    faults: Callable[[], dict[int, Fault]]  # worker index -> fault


CASES = [
    Case("healthy", dict),
    Case("refused (all workers)", lambda: {0: Fault.refuse(), 1: Fault.refuse()}),
    Case("accepts, never answers", lambda: {0: Fault.hang(), 1: Fault.hang()}),
    Case("slower than timeout", lambda: {0: Fault.slow(2.0), 1: Fault.slow(2.0)}),
    Case("HTTP 503 on /connectors", lambda: {w: Fault.http_status(503, path="/connectors") for w in (0, 1)}),
    Case("malformed JSON", lambda: {w: Fault.malformed_json(path="/connectors") for w in (0, 1)}),
    Case("50 MB body", lambda: {w: Fault.huge_body(path="/connectors") for w in (0, 1)}),
    Case("50 MB body (chunked)", lambda: {w: Fault.huge_body(chunked=True, path="/connectors") for w in (0, 1)}),
]


class LoopWatch:
    """Ticks every 10 ms on the event loop; records the loop thread's CPU time and wall-clock lag per tick."""

    def __init__(self) -> None:
        self.max_cpu = 0.0
        self.max_lag = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            wall, cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(0.01)
            self.max_lag = max(self.max_lag, time.perf_counter() - wall - 0.01)
            self.max_cpu = max(self.max_cpu, time.thread_time() - cpu)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


def scrape_for(url: str, seconds: float) -> tuple[list[float], int]:
    """Scrape back to back on one keep-alive connection; latency to the last byte."""
    latencies: list[float] = []
    errors = 0
    with httpx.Client(timeout=30) as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.perf_counter()
            response = client.get(url)
            latencies.append(time.perf_counter() - t0)
            errors += response.status_code != 200
    return latencies, errors


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


async def measure(sim: SimThread, case: Case, seconds: float) -> dict[str, Any]:
    config = build_config(
        {
            "web": {"listen_address": "127.0.0.1:0"},
            "clusters": [{"name": "c", "urls": sim.urls, **CLUSTER_OPTS}],
        }
    )
    daemon = Daemon(config)
    await daemon.start()
    host, port = daemon.bound[0]
    url = f"http://{host}:{port}/metrics"
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            deadline = time.monotonic() + 30
            while 'kafka_connect_up{connect_cluster="c"} 1.0' not in (await client.get(url)).text:
                if time.monotonic() > deadline:
                    raise RuntimeError("the simulated cluster never came up")
                await asyncio.sleep(0.05)
            for worker, fault in case.faults().items():
                sim.set_fault(worker, fault)
            await asyncio.sleep(1.0)  # a few failing cycles before measuring: the fault is in full swing
            watch = LoopWatch()
            watch.start()
            # The scraper runs in a thread of its own, so the loop's CPU figure is the daemon's work alone.
            latencies, errors = await asyncio.to_thread(scrape_for, url, seconds)
            watch.stop()
    finally:
        await daemon.stop()
        sim.clear_faults()
    return {
        "case": case.name,
        "scrapes": len(latencies),
        "scrape_errors": errors,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p95_ms": percentile(latencies, 0.95) * 1000,
        "max_ms": max(latencies) * 1000,
        "loop_cpu_max_ms": watch.max_cpu * 1000,
        "loop_lag_max_ms": watch.max_lag * 1000,
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| case | scrapes | p50 ms | p95 ms | max ms | loop CPU max ms | loop lag max ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['scrapes']:,} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['max_ms']:.1f} "
            f"| {r['loop_cpu_max_ms']:.1f} | {r['loop_lag_max_ms']:.1f} |"
        )
    return "\n".join(lines)


async def run(cases: list[Case], seconds: float) -> list[dict[str, Any]]:
    cluster = SimCluster(version="3.9.0", worker_count=2)
    for i in range(20):
        cluster.add_connector(f"c{i}", "sink" if i % 2 else "source", tasks_max=1 + i % 3)
    rows = []
    with connect_in_thread(cluster) as sim:
        for case in cases:
            rows.append(await measure(sim, case, seconds))
            print(f"  {case.name} done", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    p = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=None, help="scraping per case (default 10, quick 1)")
    p.add_argument("--case", action="append", dest="cases", help="a case to run, repeatable (default: all)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "faults.json")
    p.add_argument("--quick", action="store_true", default=quick, help="1 s per case (BENCH_QUICK=1)")
    args = p.parse_args(argv)
    seconds = args.seconds or (1.0 if args.quick else 10.0)
    wanted = args.cases or [c.name for c in CASES]
    unknown = set(wanted) - {c.name for c in CASES}
    if unknown:
        p.error(f"unknown cases {sorted(unknown)}; known: {[c.name for c in CASES]}")
    configure_logs("error", stream=sys.stderr)  # every failed poll is a warning; the table is the output
    started = time.monotonic()
    rows = asyncio.run(run([c for c in CASES if c.name in wanted], seconds))
    report = {"machine": machine(), "settings": {**CLUSTER_OPTS, "seconds": seconds}, "results": rows}
    report["elapsed_s"] = time.monotonic() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(rows))
    print(f"\n{args.out} written in {report['elapsed_s']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
