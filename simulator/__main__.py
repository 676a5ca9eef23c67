"""``python -m simulator``: serve a simulated Kafka Connect cluster until SIGINT/SIGTERM.

Prints one ``http://host:port`` line per worker on stdout (then flushes), so scripts and benchmarks can read
the URLs; events of the scenario go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

from simulator.connect.scenario import Scenario, drive, populate_static
from simulator.connect.server import SimConnectServer
from simulator.connect.state import SimCluster


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m simulator", description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=2, help="number of workers (listeners), default 2")
    p.add_argument("--version", default="3.9.0", help="Kafka version GET / reports, default 3.9.0")
    p.add_argument("--api-version", default=None, help="Kafka version whose API is served (default: --version)")
    p.add_argument("--kafka-cluster-id", default="MkU3OEVBNTcwNTJENDM2Qk")
    p.add_argument("--host", default="127.0.0.1", help="listen address, default 127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="first port (workers use port, port+1, ...); 0: free ports")
    p.add_argument("--seed", type=int, default=42, help="scenario seed")
    p.add_argument("--step-interval", type=float, default=5.0, help="seconds between scenario steps")
    p.add_argument("--connectors", type=int, default=None, help="serve a large static cluster of N connectors")
    p.add_argument("--tasks", type=int, default=2, help="tasks per connector of the static cluster")
    p.add_argument("--failed-ratio", type=float, default=0.01, help="share of FAILED tasks in the static cluster")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    p.add_argument("--user", default=None, help="require basic auth with this user (password from --password)")
    p.add_argument("--password", default="", help="basic auth password")
    p.add_argument("--quiet", action="store_true", help="do not log scenario events")
    return p


async def _serve(args: argparse.Namespace) -> int:
    cluster = SimCluster(
        args.version, args.workers, kafka_cluster_id=args.kafka_cluster_id, api_version=args.api_version
    )
    scenario: Scenario | None = None
    if args.connectors is not None:
        populate_static(cluster, args.connectors, args.tasks, seed=args.seed, failed_ratio=args.failed_ratio)
    else:
        scenario = Scenario(cluster, seed=args.seed)
    ports = [args.port + i for i in range(args.workers)] if args.port else None
    credentials = {args.user: args.password} if args.user else None
    server = SimConnectServer(cluster, args.host, ports=ports, credentials=credentials, latency=args.latency)
    try:
        urls = await server.start()
    except OSError as e:
        print(f"cannot listen: {e}", file=sys.stderr)
        return 1
    for url in urls:
        print(url)
    sys.stdout.flush()

    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    runner: asyncio.Task[None] | None = None
    if scenario is not None:
        log = None if args.quiet else (lambda event: print(event, file=sys.stderr, flush=True))
        runner = asyncio.create_task(drive(scenario, args.step_interval, log))
    try:
        await done.wait()
    finally:
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        await server.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.workers < 1:
        print("--workers must be at least 1", file=sys.stderr)
        return 2
    return asyncio.run(_serve(args))


if __name__ == "__main__":
    raise SystemExit(main())
