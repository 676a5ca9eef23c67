"""``kafka-connect-exporter demo``: a simulated Connect cluster with a churning scenario, and the exporter
watching it, in one process. Needs no Java and no network beyond loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from typing import Any

import structlog

from exporter.config import load_config, split_host_port
from exporter.logs import configure
from exporter.settings import ConfigError
from simulator.cloud.demo import demo_config as demo_cloud_config
from simulator.cloud.demo import start_demo_cloud
from simulator.connect.scenario import Scenario
from simulator.connect.server import SimConnectServer
from simulator.connect.state import SimCluster

DEMO_LISTEN = "127.0.0.1:9838"
STEP_SECONDS = 5.0
POLL_SECONDS = 5.0


async def demo(args: argparse.Namespace, *, ready: asyncio.Event | None = None) -> None:
    from exporter.daemon import Daemon

    cluster = SimCluster(version="3.9.0", worker_count=3)
    scenario = Scenario(cluster, seed=7)
    server = SimConnectServer(cluster)
    urls = await server.start()
    cloud_sim, cloud_scenario, cloud_url = await start_demo_cloud()
    log = structlog.get_logger("exporter.demo")
    daemon: Daemon | None = None
    try:
        config = load_config(
            args.config_file,
            overrides={**_overrides(args), "confluent_cloud": demo_cloud_config(cloud_url)},
            quickstart_urls=[f"demo={u}" for u in urls],
            quickstart_interval=args.poll_interval or POLL_SECONDS,
        )
        daemon = Daemon(config)

        async def step() -> Sequence[object]:
            scenario.step()
            return ()  # moves the simulated world on; nothing to publish

        daemon.add_job("demo:scenario", STEP_SECONDS, step)

        async def cloud_step() -> Sequence[object]:
            cloud_scenario.step()
            return ()

        daemon.add_job("demo:ccloud-scenario", STEP_SECONDS, cloud_step)
        await daemon.start()
        host, port = daemon.bound[0]
        base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104
        print(
            "\nkafka-connect-exporter demo is running.\n"
            f"  status page:  {base}/\n"
            f"  metrics:      {base}{config.web.telemetry_path}\n"
            f"  simulated Connect workers: {', '.join(urls)}\n"
            f'  simulated Confluent Cloud APIs: {cloud_url} (managed connectors: connect_cluster="ccloud-demo")\n'
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        log.info("demo_started", exporter=base, workers=urls)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        if daemon is not None:
            await daemon.stop()
        await server.stop()
        await cloud_sim.stop()


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"web.listen_address": args.listen_address or DEMO_LISTEN}
    if args.log_level:
        out["log.level"] = args.log_level
    out["log.format"] = args.log_format or "console"
    return out


def run_demo(args: argparse.Namespace) -> int:
    level = args.log_level or "info"
    configure(level, args.log_format or "console")
    try:
        split_host_port(args.listen_address or DEMO_LISTEN)
        asyncio.run(demo(args))
    except ConfigError as exc:
        print(f"kafka-connect-exporter: configuration error:\n{exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"kafka-connect-exporter: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"kafka-connect-exporter demo: cannot listen: {exc}", file=sys.stderr)
        return 1
    return 0
