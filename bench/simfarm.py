"""``python -m bench.simfarm``: serve several large static simulated Connect clusters for the benchmark.

Connectors are split as evenly as possible over ``--clusters`` clusters, each with ``--workers`` listeners.
Prints one JSON line on stdout: ``{"clusters": {name: [worker urls]}, "control": url}``; ``GET <control>/requests``
returns how many requests each cluster's workers answered, by method and path (query dropped).

The clusters never change, so GET answers are computed once and memoised: a real worker serves these from
another machine, and on a shared 2-core box the simulator must not steal the CPU being measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from simulator.connect import rest
from simulator.connect.scenario import populate_static
from simulator.connect.server import SimConnectServer
from simulator.connect.state import SimCluster

_handle = rest.handle
_memo: dict[tuple[int, str, str, tuple[tuple[str, str], ...]], rest.SimResponse] = {}


_moves: Counter[str] = Counter()
MOVING_OFFSETS: list[bool] = []  # non-empty with --moving-offsets


def _move_offsets(cluster: SimCluster, raw_path: str) -> None:
    """Before each GET /connectors/{c}/offsets: every offset one further than at the last request, so the
    exporter sees the offsets change as in a live estate."""
    name = unquote(raw_path.split("/")[2])
    _moves[name] += 1
    n = _moves[name]
    entries = []
    for entry in cluster.offsets(name)["offsets"]:  # type: ignore[union-attr]
        assert isinstance(entry, dict)
        sink = "kafka_topic" in entry["partition"]  # type: ignore[operator]
        entries.append({**entry, "offset": {"kafka_offset": 4711 + n} if sink else {"position": n}})
    cluster.set_offsets(name, entries)


def _memo_handle(cluster: SimCluster, method: str, raw_path: str, **kw: Any) -> rest.SimResponse:
    if method == "GET" and MOVING_OFFSETS and raw_path.startswith("/connectors/") and raw_path.endswith("/offsets"):
        _move_offsets(cluster, raw_path)
        return _handle(cluster, method, raw_path, **kw)
    if method != "GET":
        return _handle(cluster, method, raw_path, **kw)
    key = (id(cluster), method, raw_path, tuple(kw.get("query", ())))
    found = _memo.get(key)
    if found is None:
        found = _memo[key] = _handle(cluster, method, raw_path, **kw)
    return found


def sink_layout(i: int, topics: int) -> tuple[str, str, int]:
    """Sink ``i`` of ``--sinks``: its name, its topic (one partition) and its committed offset; bench.sinks
    commits the same offsets to the brokers."""
    return f"sink-{i:05d}", f"bench-topic-{i % topics:03d}", 500 + i % 500


def populate_sinks(cluster: SimCluster, sinks: int, tasks: int, topics: int) -> None:
    """``sinks`` RUNNING sink connectors, each reading one topic and answering its committed offset."""
    for i in range(sinks):
        name, topic, offset = sink_layout(i, topics)
        cluster.add_connector(name, "sink", tasks_max=tasks, config={"topics": topic})
        cluster.set_sink_offsets(name, {(topic, 0): offset})


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


async def serve(args: argparse.Namespace) -> int:
    rest.handle = _memo_handle  # type: ignore[assignment]
    if args.moving_offsets:
        MOVING_OFFSETS.append(True)
    servers: dict[str, SimConnectServer] = {}
    for i, n in enumerate(split(args.connectors, args.clusters)):
        cluster = SimCluster("3.9.0", args.workers, kafka_cluster_id=f"bench-kafka-{i:02d}")
        if args.sinks:
            populate_sinks(cluster, n, args.tasks, args.topics)
        else:
            populate_static(cluster, n, args.tasks, seed=i, failed_ratio=args.failed_ratio)
        servers[f"bench-{i:02d}"] = SimConnectServer(cluster, "127.0.0.1", latency=args.latency)
    for server in servers.values():
        await server.start()

    async def requests(_: web.Request) -> web.Response:
        out = {name: dict(Counter(f"{r.method} {r.path}" for r in s.requests)) for name, s in servers.items()}
        return web.json_response(out)

    app = web.Application()
    app.router.add_get("/requests", requests)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(json.dumps({"clusters": {n: s.urls for n, s in servers.items()}, "control": f"http://127.0.0.1:{port}"}))
    sys.stdout.flush()

    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    await done.wait()
    await runner.cleanup()
    for server in servers.values():
        await server.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.simfarm", description=__doc__.splitlines()[0])
    p.add_argument("--clusters", type=int, default=3)
    p.add_argument("--connectors", type=int, default=1000, help="connectors over all clusters")
    p.add_argument("--tasks", type=int, default=4, help="tasks per connector")
    p.add_argument("--workers", type=int, default=2, help="workers (listeners) per cluster")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    p.add_argument("--failed-ratio", type=float, default=0.01)
    p.add_argument("--sinks", action="store_true", help="sink connectors with offsets (bench.sinks), not the catalog")
    p.add_argument("--topics", type=int, default=50, help="with --sinks: topics the sinks share")
    p.add_argument("--moving-offsets", action="store_true", help="every offsets answer one further than the last")
    return asyncio.run(serve(p.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
