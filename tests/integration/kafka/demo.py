"""``make demo-kafka``: real Apache Kafka Connect with a few connectors, and the exporter against it.

Starts the newest pinned Kafka (a KRaft broker and two distributed workers, see harness.py), creates a
FileStreamSource feeding a FileStreamSink, a sink that fails because its file cannot be written, and a paused
source, and a CDC pipeline: a PostgreSQL server (Debian's package, see postgres.py) captured by the Debezium
PostgreSQL source ``orders-cdc`` (heartbeat every 2 s). It runs the exporter process against both workers with the
brokers configured (source topics, silent sources, sink lag) and prints the URLs to open. The database stops on
SIGUSR1 and starts again on SIGUSR2 (``kill -USR1 <pid>``, the banner prints the commands): Connect keeps saying
RUNNING while the exporter reports ``orders-cdc`` silent and degraded within about 45 s, and healthy again soon
after the database is back. Ctrl-C (or SIGTERM) stops the exporter, the database and every JVM by PID. Needs Java
17 and Maven (the jars come from Maven Central, cached); without PostgreSQL the CDC pipeline is left out.

    python -m tests.integration.kafka.demo [--version 4.4.0] [--web.listen-address 127.0.0.1:9838] [--no-cdc]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from .fetch import pinned_versions
from .harness import HarnessError, KafkaEnvironment, _set_pdeathsig, start_environment
from .postgres import PostgresError, PostgresServer, debezium_config
from .rest import FILE_SINK, FILE_SOURCE, ConnectRest, wait_until

CDC = "orders-cdc"


def create_connectors(rest: ConnectRest, data: Path) -> None:
    lines = data / "lines.txt"
    lines.write_text("".join(f"record {i}\n" for i in range(100)), encoding="utf-8")
    rest.create_connector("lines-source", {"connector.class": FILE_SOURCE, "file": str(lines), "topic": "lines"})
    rest.create_connector(
        "lines-sink", {"connector.class": FILE_SINK, "file": str(data / "out.txt"), "topics": "lines", "tasks.max": "1"}
    )
    # The directory does not exist: the task fails with a trace, as a misconfigured sink would.
    rest.create_connector(
        "broken-sink",
        {"connector.class": FILE_SINK, "file": str(data / "missing" / "out.txt"), "topics": "lines"},
    )
    rest.create_connector("paused-source", {"connector.class": FILE_SOURCE, "file": str(lines), "topic": "paused"})
    rest.pause("paused-source")


def start_cdc(rest: ConnectRest) -> PostgresServer:
    """A PostgreSQL server with an ``orders`` table, captured by the Debezium source ``orders-cdc``."""
    pg = PostgresServer()
    try:
        pg.start()
        pg.psql(
            "CREATE TABLE public.orders (id serial PRIMARY KEY, item text NOT NULL);"
            "INSERT INTO public.orders (item) VALUES ('first'), ('second');"
        )
        rest.create_connector(CDC, debezium_config(pg, "shop"))
    except Exception:
        pg.close()
        raise
    return pg


def exporter_config(env: KafkaEnvironment, path: Path) -> Path:
    cluster = {
        "name": f"kafka-{env.version}",
        "urls": env.connect.urls,
        "poll_interval": "5s",
        "offsets_interval": "30s",
        "kafka": {"bootstrap_servers": env.broker.bootstrap},
    }
    path.write_text(yaml.safe_dump({"clusters": [cluster]}), encoding="utf-8")
    return path


def exporter_command(config: Path, listen: str) -> list[str]:
    exe = shutil.which("kafka-connect-exporter")
    cmd = [exe] if exe else [sys.executable, "-m", "exporter"]
    return [*cmd, "--config.file", str(config), "--web.listen-address", listen, "--log.format", "console"]


def wait_for_metrics(base: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    def ready() -> bool:
        if proc.poll() is not None:
            raise HarnessError(f"the exporter exited with code {proc.returncode}")
        try:
            return httpx.get(base + "/readyz", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, timeout=timeout, what="the exporter to be ready")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


# The database's wanted state, set by SIGUSR1 (down) and SIGUSR2 (up); the main loop acts on it.
_WANT_DB_UP: list[bool] = [True]


def _database(signum: int, frame: object) -> None:
    _WANT_DB_UP[0] = signum == signal.SIGUSR2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo-kafka", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", default=pinned_versions()[-1], help="a Kafka version from versions.txt")
    parser.add_argument("--web.listen-address", dest="listen", default="127.0.0.1:9838")
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (default: at Ctrl-C)")
    parser.add_argument("--no-cdc", dest="cdc", action="store_false", help="leave out PostgreSQL and Debezium")
    args = parser.parse_args(argv)
    # Ctrl-C and SIGTERM stop everything: exporter first, then the JVMs by PID. SIGINT is set explicitly: a
    # process started in the background by a non-interactive shell inherits SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler, so Ctrl-C (or a test's SIGINT) would do nothing.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGUSR1, _database)
    signal.signal(signal.SIGUSR2, _database)

    print(f"starting Apache Kafka {args.version}: a KRaft broker and 2 Connect workers ...", flush=True)
    env = start_environment(args.version)
    proc: subprocess.Popen[bytes] | None = None
    pg: PostgresServer | None = None
    problems: list[str] = []
    try:
        data = env.workdir / "demo-data"
        data.mkdir()
        cdc_note = "CDC pipeline left out (--no-cdc)."
        with env.connect.rest() as rest:
            create_connectors(rest, data)
            if args.cdc:
                try:
                    pg = start_cdc(rest)
                except (PostgresError, HarnessError, OSError) as exc:
                    cdc_note = f"CDC pipeline left out: {exc}"
        if pg is not None:
            cdc_note = (
                f"CDC: PostgreSQL on 127.0.0.1:{pg.port} (table public.orders) -> {CDC} (Debezium, heartbeat 2 s).\n"
                f"  stop the database   kill -USR1 {os.getpid()}   (Connect keeps saying RUNNING; the exporter\n"
                f"                      says {CDC} silent/degraded within ~45 s, KafkaConnectSourceSilent)\n"
                f"  start it again      kill -USR2 {os.getpid()}\n"
                f"  watch               curl -s {'http://' + args.listen}/metrics | grep -E 'source_silent|topic_info'"
            )
        proc = subprocess.Popen(
            exporter_command(exporter_config(env, env.workdir / "exporter.yml"), args.listen),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=_set_pdeathsig,  # noqa: PLW1509 - dies with this process, like the JVMs; main thread only
        )
        base = f"http://{args.listen}"
        wait_for_metrics(base, proc)
        print(
            f"\nKafka Connect {env.version} workers: {' '.join(env.connect.urls)}\n"
            f"  status page  {base}/\n  metrics      {base}/metrics\n"
            "Connectors: lines-source -> lines-sink (RUNNING), broken-sink (task FAILED), paused-source (PAUSED).\n"
            f"{cdc_note}\n"
            "Try: curl -X PUT <worker>/connectors/paused-source/resume   ...   Ctrl-C stops everything.\n",
            flush=True,
        )
        deadline = time.monotonic() + args.seconds if args.seconds else None
        while proc.poll() is None and (deadline is None or time.monotonic() < deadline):
            if pg is not None and pg.alive() != _WANT_DB_UP[0]:
                if _WANT_DB_UP[0]:
                    pg.start()
                    print(f"database started again on 127.0.0.1:{pg.port}", flush=True)
                else:
                    pg.stop()
                    print("database stopped (fast shutdown)", flush=True)
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping ...", flush=True)
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if pg is not None:
            try:  # the connector first, so that it does not retry against a stopped database
                with env.connect.rest() as rest:
                    rest.delete(CDC)
            except Exception as exc:
                print(f"could not delete {CDC}: {exc}", file=sys.stderr)
            pg.close()
        problems, saved = env.close()
        if problems:
            print(f"left behind: {problems}; logs in {saved}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
