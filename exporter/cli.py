"""Command line: ``kafka-connect-exporter [run|check-config|demo] [flags]``.

Flags follow the Prometheus exporter convention (``--web.listen-address``). An operator's mistake never ends
in a traceback: configuration errors (``exporter.checks.review``, shared by ``run`` and ``check-config``) print one
line per problem and exit with code 2; a listen address that cannot be bound prints one line and exits with 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from exporter import __version__, logs
from exporter.checks import review
from exporter.cloud.config import quickstart_overrides
from exporter.config import DEFAULT_LISTEN_ADDRESS, Config, load_config, masked_dump
from exporter.cpu_worker import limit_malloc_arenas
from exporter.settings import ConfigError, parse_duration

COMMANDS = {
    "run": "run the exporter (the default)",
    "check-config": "run every check run runs, warn on likely mistakes, print the configuration (secrets masked)",
    "demo": "simulated Connect workers and Confluent Cloud with the exporter watching them (demo --help)",
}
EXIT_CONFIG = 2
EXIT_LISTEN = 1
SHUTDOWN_SECONDS = 10.0


def _duration(value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    commands = "\n".join(f"  {name:<14}{text}" for name, text in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="kafka-connect-exporter",
        usage="%(prog)s [run|check-config|demo] [flags]",
        description="Prometheus exporter for Apache Kafka Connect clusters and Confluent Cloud managed connectors.",
        epilog=f"commands:\n{commands}\n\nEnvironment: KCE_<KEY>__<SUBKEY>=value overrides any config key, "
        "e.g. KCE_WEB__LISTEN_ADDRESS=:9900. See README.md and docs/.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config.file",
        dest="config_file",
        type=Path,
        metavar="PATH",
        help="YAML configuration file (see docs/configuration.md)",
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        metavar="ADDR",
        help=f"address to serve /metrics, / and probes on (default {DEFAULT_LISTEN_ADDRESS})",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        type=Path,
        metavar="PATH",
        help="exporter-toolkit web config: TLS, client certificates, basic auth, headers (docs/security.md)",
    )
    parser.add_argument(
        "--web.open-healthz",
        dest="open_healthz",
        action="store_true",
        default=None,
        help="serve /healthz without basic auth, for probes that cannot send credentials",
    )
    parser.add_argument(
        "--web.enable-lifecycle",
        dest="enable_lifecycle",
        action="store_true",
        default=None,
        help="serve POST /-/reload to re-read the configuration (SIGHUP always does)",
    )
    parser.add_argument(
        "--web.telemetry-path",
        dest="telemetry_path",
        metavar="PATH",
        help="path of the metrics endpoint (default /metrics)",
    )
    parser.add_argument(
        "--connect.url",
        dest="connect_urls",
        action="append",
        default=[],
        metavar="[NAME=]URL",
        help="a Connect worker URL; repeat for more workers. NAME= groups URLs into clusters "
        "(default cluster name: 'default')",
    )
    parser.add_argument(
        "--connect.poll-interval",
        dest="poll_interval",
        type=_duration,
        metavar="DURATION",
        help="poll interval for clusters given with --connect.url (default 30s)",
    )
    parser.add_argument(
        "--autoheal.mode",
        dest="autoheal_mode",
        choices=["off", "dry-run", "enforce"],
        help="restart FAILED connectors and tasks of the clusters given with --connect.url: off (default), "
        "dry-run (decide and log only) or enforce; see docs/autoheal.md",
    )
    parser.add_argument(
        "--autoheal.grace-period",
        dest="autoheal_grace_period",
        type=_duration,
        metavar="DURATION",
        help="how long a connector or task must stay FAILED before auto-heal restarts it (default 1m)",
    )
    parser.add_argument(
        "--ccloud.environment",
        dest="ccloud_environment",
        metavar="ENV_ID",
        help="Confluent Cloud environment (env-…) of the --ccloud.cluster clusters; the key and secret come "
        "from CONFLUENT_CLOUD_API_KEY and CONFLUENT_CLOUD_API_SECRET",
    )
    parser.add_argument(
        "--ccloud.cluster",
        dest="ccloud_clusters",
        action="append",
        default=[],
        metavar="[NAME=]LKC_ID",
        help="a Kafka cluster (lkc-…) whose managed connectors to watch; repeat for more",
    )
    parser.add_argument(
        "--ccloud.api-url",
        dest="ccloud_api_url",
        metavar="URL",
        help="Confluent Cloud API base URL (default https://api.confluent.cloud)",
    )
    parser.add_argument(
        "--ccloud.metrics-url",
        dest="ccloud_metrics_url",
        metavar="URL",
        help="Confluent Cloud Metrics API base URL (default https://api.telemetry.confluent.cloud)",
    )
    parser.add_argument(
        "--ccloud.autoheal.mode",
        dest="ccloud_autoheal_mode",
        choices=["off", "dry-run", "enforce"],
        help="restart FAILED and SYSTEM_ERROR managed connectors of the --ccloud.cluster clusters: off (default), "
        "dry-run or enforce; see docs/autoheal.md",
    )
    parser.add_argument(
        "--sharding.shard",
        dest="shard",
        type=int,
        metavar="N",
        help="watch only the clusters[] whose name hashes to shard N of --sharding.shards (docs/sharding.md)",
    )
    parser.add_argument(
        "--sharding.shards",
        dest="shards",
        type=int,
        metavar="COUNT",
        help="split clusters[] over COUNT replicas by a stable hash of their name (default 1: no sharding)",
    )
    parser.add_argument(
        "--log.level",
        dest="log_level",
        choices=["debug", "info", "warning", "error"],
        help="log level (default info)",
    )
    parser.add_argument(
        "--log.format",
        dest="log_format",
        choices=["json", "console"],
        help="log format: json lines (default) or console for humans",
    )
    return parser


def _split_command(argv: Sequence[str]) -> tuple[str, list[str]]:
    args = list(argv)
    if args and args[0] in COMMANDS:
        return args[0], args[1:]
    return "run", args


# Flags that set a configuration key to their value when given, and switches that set one to true.
_FLAG_KEYS = {
    "listen_address": "web.listen_address",
    "telemetry_path": "web.telemetry_path",
    "shard": "sharding.shard",
    "shards": "sharding.shards",
    "log_level": "log.level",
    "log_format": "log.format",
}
_SWITCH_KEYS = {"open_healthz": "web.open_healthz", "enable_lifecycle": "web.enable_lifecycle"}


def config_from_args(args: argparse.Namespace, *, environ: dict[str, str] | None = None) -> Config:
    overrides: dict[str, Any] = {
        key: getattr(args, attr) for attr, key in _FLAG_KEYS.items() if getattr(args, attr, None) is not None
    }
    if getattr(args, "web_config_file", None) is not None:
        overrides["web.config_file"] = str(args.web_config_file)
    for attr, key in _SWITCH_KEYS.items():
        if getattr(args, attr, None):
            overrides[key] = True
    try:
        overrides.update(
            quickstart_overrides(
                args.ccloud_environment,
                args.ccloud_clusters,
                args.ccloud_api_url,
                args.ccloud_metrics_url,
                getattr(args, "ccloud_autoheal_mode", None),
            )
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    autoheal: dict[str, Any] = {}
    if args.autoheal_mode is not None:
        autoheal["mode"] = args.autoheal_mode
    if args.autoheal_grace_period is not None:
        autoheal["grace_period"] = args.autoheal_grace_period
    if autoheal and not args.connect_urls:
        raise ConfigError(
            "--autoheal.*: these flags apply to clusters given with --connect.url; "
            "in a config file, set clusters[].autoheal instead"
        )
    return load_config(
        args.config_file,
        environ=environ,
        overrides=overrides,
        quickstart_urls=args.connect_urls,
        quickstart_interval=args.poll_interval,
        quickstart_autoheal=autoheal,
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers are installed (start-up, imports)
        return 130


def config_error(message: str, *, prog: str = "kafka-connect-exporter") -> int:
    print(f"{prog}: configuration error:\n{message}", file=sys.stderr)
    return EXIT_CONFIG


def _main(argv: Sequence[str]) -> int:
    command, rest = _split_command(argv)
    if command == "demo":
        from exporter.demo import run_demo

        return run_demo(rest)
    args = build_parser().parse_args(rest)

    try:
        config = config_from_args(args)
    except ConfigError as exc:
        return config_error(str(exc))
    findings = review(config)
    if findings.errors:
        return config_error("\n".join(findings.errors))

    if command == "check-config":
        sys.stdout.write(masked_dump(config))
        for path in config.inline_secret_paths():
            print(f"warning: {path} is written inline; prefer *_env or *_file", file=sys.stderr)
        for warning in findings.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        return 0
    return run(config, loader=partial(reload_config, args), warnings=findings.warnings)


def reload_config(args: argparse.Namespace) -> Config:
    """The configuration again, as at start (file, environment, flags), its secrets kept out of the logs. The web
    config file is not checked here: it is re-read on change by its own watcher (``web_security``)."""
    config = config_from_args(args)
    for secret in secrets_of(config):
        logs.register_secret(secret)
    return config


def prepare_logging(config: Config) -> None:
    logs.configure(config.log.level, config.log.format)
    for secret in secrets_of(config):
        logs.register_secret(secret)
    log = structlog.get_logger("exporter")
    for path in config.inline_secret_paths():
        log.warning("inline_secret", key=path, hint="prefer *_env or *_file so the secret is not in the file")


def secrets_of(config: Config) -> list[str]:
    """Every secret value in the config, found by walking the models (features add their own fields)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        from pydantic import BaseModel, SecretStr

        if isinstance(node, SecretStr):
            found.append(node.get_secret_value())
        elif isinstance(node, BaseModel):
            for name in type(node).model_fields:
                walk(getattr(node, name))
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for item in node.values():
                walk(item)

    walk(config)
    return found


def run(config: Config, loader: Callable[[], Config] | None = None, warnings: Sequence[str] = ()) -> int:
    """Serve until a signal; 0 on a clean stop, 1 when the listen address cannot be bound, 2 on a configuration
    problem only the start-up finds."""
    from exporter.daemon import ListenError

    limit_malloc_arenas()  # before any thread starts
    prepare_logging(config)
    log = structlog.get_logger("exporter")
    for warning in warnings:
        log.warning("config_warning", problem=warning)
    try:
        asyncio.run(serve(config, loader=loader))
    except ListenError as exc:
        print(f"kafka-connect-exporter: {exc}", file=sys.stderr)
        return EXIT_LISTEN
    except ConfigError as exc:
        return config_error(str(exc))
    return 0


async def serve(config: Config, ready: asyncio.Event | None = None, loader: Callable[[], Config] | None = None) -> None:
    """Run until SIGTERM or SIGINT; a second signal exits at once. SIGHUP reloads the configuration."""
    from exporter.daemon import Daemon

    log = structlog.get_logger("exporter")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signame: str) -> None:
        if stop.is_set():
            log.warning("second_signal_exit", signal=signame)
            os._exit(1)
        log.info("shutting_down", signal=signame)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)
    daemon = Daemon(config, loader=loader)
    reloads: set[asyncio.Task[bool]] = set()

    def on_hangup() -> None:
        log.info("reload_requested", signal="SIGHUP")
        task = loop.create_task(daemon.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    try:
        await daemon.start()  # binds first: a taken address raises ListenError before any job runs
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        try:
            async with asyncio.timeout(SHUTDOWN_SECONDS):
                await daemon.stop()
        except TimeoutError:
            log.error("shutdown_timeout", seconds=SHUTDOWN_SECONDS)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
