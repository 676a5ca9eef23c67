"""``kafka-connect-exporter demo``: a simulated Connect cluster with a churning scenario, a simulated Confluent
Cloud organisation, and the exporter watching both, in one process. Needs no Java and no network beyond loopback.

What it shows: connectors and tasks failing, pausing, moving and coming back; auto-heal deciding restarts (dry-run
unless ``--autoheal.mode enforce``); a worker that stops answering for a while (``WORKER_LOSS``); sink lag from
simulated topics and a sink that stops committing (``STALLED_SINK``); managed Cloud connectors in every state.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from typing import Any

import structlog

from exporter.checks import review
from exporter.config import load_config, split_host_port
from exporter.logs import configure
from exporter.offsets.reading import STALLED_AFTER_SECONDS
from exporter.settings import ConfigError, format_duration, parse_duration
from simulator.cloud.demo import demo_config as demo_cloud_config
from simulator.cloud.demo import start_demo_cloud
from simulator.connect.scenario import Scenario
from simulator.connect.server import SimConnectServer
from simulator.connect.state import SimCluster
from simulator.faults import Fault
from simulator.kafka import SimTopics

DEMO_LISTEN = "127.0.0.1:9838"
STEP_SECONDS = 5.0
POLL_SECONDS = 5.0
GRACE_SECONDS = 15.0  # auto-heal waits this long on a FAILED target (1m outside the demo)
# One of the three workers stops answering its REST port for a while, every few minutes: its work goes on, but
# the exporter cannot reach it (kafka_connect_worker_up 0, connectors with tasks on it degraded).
LOST_WORKER = 2
# A sink that keeps RUNNING but never commits again: lag grows (kafka_connect_sink_lag_records), and once its
# offsets stood still for the stall window it is degraded (stalled) on the page and in the metrics.
STALLED_SINK = "search-es-sink"
OFFSETS_SECONDS = 30.0
WORKER_LOSS = (12, 24, 48)  # (first lost at step, back at step, cycle length) in scenario steps
PROG = "kafka-connect-exporter demo"


def build_demo_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Start a simulated Kafka Connect cluster (3 workers, a seeded story of failures, pauses, "
        "rebalances and a worker that stops answering) and a simulated Confluent Cloud organisation on loopback, "
        "and the exporter watching both. Open the status page it prints; Ctrl-C stops everything.",
        epilog="To try your own configuration against a simulated Connect cluster, start one with "
        "`python -m simulator` and point --connect.url or clusters[].urls at it (see README.md).",
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        default=DEMO_LISTEN,
        metavar="ADDR",
        help=f"where the exporter serves its status page and metrics (default {DEMO_LISTEN})",
    )
    parser.add_argument(
        "--connect.poll-interval",
        dest="poll_interval",
        type=_duration,
        default=POLL_SECONDS,
        metavar="DURATION",
        help=f"how often the exporter polls the simulated cluster (default {format_duration(POLL_SECONDS)})",
    )
    parser.add_argument(
        "--autoheal.mode",
        dest="autoheal_mode",
        choices=["off", "dry-run", "enforce"],
        default="dry-run",
        help="auto-heal of the simulated cluster: dry-run (default: decide and log the restarts it would make), "
        "enforce (restart FAILED connectors and tasks) or off",
    )
    parser.add_argument(
        "--autoheal.grace-period",
        dest="autoheal_grace_period",
        type=_duration,
        default=GRACE_SECONDS,
        metavar="DURATION",
        help=f"how long a target stays FAILED before auto-heal acts (default {format_duration(GRACE_SECONDS)})",
    )
    parser.add_argument(
        "--no-worker-loss",
        dest="worker_loss",
        action="store_false",
        help="keep every simulated worker answering (by default one stops answering for a minute every 4 minutes)",
    )
    parser.add_argument(
        "--log.level", dest="log_level", choices=["debug", "info", "warning", "error"], help="log level (default info)"
    )
    parser.add_argument(
        "--log.format",
        dest="log_format",
        choices=["json", "console"],
        help="log format (default console in the demo)",
    )
    return parser


def _duration(value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class WorkerLoss:
    """Makes one worker stop answering (its REST port hangs, its work goes on) for a stretch of every cycle."""

    def __init__(self, server: SimConnectServer, worker: int = LOST_WORKER) -> None:
        self.server = server
        self.worker = worker
        self.steps = 0
        self.lost = False

    async def step(self) -> None:
        first, back, cycle = WORKER_LOSS
        self.steps += 1
        beat = self.steps % cycle
        if beat == first and not self.lost:
            self.lost = True
            await self.server.set_fault(self.worker, Fault.hang())
        elif beat == back and self.lost:
            self.lost = False
            await self.server.set_fault(self.worker, None)


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
        autoheal = {"mode": args.autoheal_mode, "grace_period": args.autoheal_grace_period}
        config = load_config(
            None,
            environ={},
            overrides={**_overrides(args), "confluent_cloud": demo_cloud_config(cloud_url)},
            quickstart_urls=[f"demo={u}" for u in urls],
            quickstart_interval=args.poll_interval,
            quickstart_autoheal=autoheal,
        )
        # Requests time out before the short demo cycle's deadline, as a well-set-up cluster's do.
        # Offsets every 30s rather than 2m, so sink lag shows within a minute of the start.
        clusters = [
            c.model_copy(update={"request_timeout": c.poll_interval * 0.8, "offsets_interval": OFFSETS_SECONDS})
            for c in config.clusters
        ]
        config = config.model_copy(update={"clusters": clusters})
        findings = review(config)
        findings.raise_errors()
        for warning in findings.warnings:
            log.warning("config_warning", problem=warning)
        topics = SimTopics(cluster, stalled=[STALLED_SINK])
        topics.step()
        daemon = Daemon(config, brokers=lambda c: topics if c.name == "demo" else None)
        loss = WorkerLoss(server) if args.worker_loss else None

        async def step() -> Sequence[object]:
            scenario.step()
            topics.step()
            if loss is not None:
                await loss.step()
            return ()  # moves the simulated world on; nothing to publish

        daemon.add_job("demo:scenario", STEP_SECONDS, step)

        async def cloud_step() -> Sequence[object]:
            cloud_scenario.step()
            return ()

        daemon.add_job("demo:ccloud-scenario", STEP_SECONDS, cloud_step)
        await daemon.start()
        host, port = daemon.bound[0]
        base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104
        heal = f"  auto-heal: {args.autoheal_mode}"
        if args.autoheal_mode == "dry-run":
            heal += " (decides and logs the restarts it would make; --autoheal.mode enforce makes them)"
        loss_line = (
            f"  worker {urls[LOST_WORKER]} stops answering for a minute every 4 minutes (--no-worker-loss)\n"
            if args.worker_loss
            else ""
        )
        print(
            "\nkafka-connect-exporter demo is running.\n"
            f"  status page:  {base}/\n"
            f"  metrics:      {base}{config.web.telemetry_path}\n"
            f"  simulated Connect workers: {', '.join(urls)}\n"
            f'  simulated Confluent Cloud APIs: {cloud_url} (managed connectors: connect_cluster="ccloud-demo")\n'
            f"{heal}\n{loss_line}"
            "  managed auto-heal: enforce on the simulated Cloud: snowflake-sink's SYSTEM_ERROR is restarted, "
            "s3-archive's USER_ACTIONABLE_ERROR left alone; managed sink bigquery-sink has lag and receives "
            "nothing: stalled\n"
            f"  sink {STALLED_SINK} stops committing: its lag grows, and after "
            f"{format_duration(STALLED_AFTER_SECONDS)} of unmoved offsets it is called stalled\n"
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
    out: dict[str, Any] = {"web.listen_address": args.listen_address}
    if args.log_level:
        out["log.level"] = args.log_level
    out["log.format"] = args.log_format or "console"
    return out


def run_demo(argv: Sequence[str]) -> int:
    from exporter.daemon import ListenError

    args = build_demo_parser().parse_args(argv)
    configure(args.log_level or "info", args.log_format or "console")
    try:
        split_host_port(args.listen_address)
        asyncio.run(demo(args))
    except ConfigError as exc:
        print(f"{PROG}: configuration error:\n{exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except ListenError as exc:
        print(
            f"{PROG}: {exc}; is another demo or exporter running? Choose another address with "
            f"--web.listen-address, e.g. --web.listen-address 127.0.0.1:{_next_port(exc.address)}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _next_port(address: str) -> int:
    _, port = split_host_port(address)
    return port + 1 if 0 < port < 65535 else 9839
