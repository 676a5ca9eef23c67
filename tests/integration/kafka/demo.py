"""``make demo-kafka``: real Apache Kafka Connect with a few connectors, and the exporter against it.

Starts the newest pinned Kafka (a KRaft broker and two distributed workers, see harness.py), creates a
FileStreamSource feeding a FileStreamSink, a sink that fails because its file cannot be written, and a paused
source, then runs the exporter process against both workers and prints the URLs to open. Ctrl-C (or SIGTERM)
stops the exporter and every JVM by PID. Needs Java 17 and Maven (the jars come from Maven Central, cached).

    python -m tests.integration.kafka.demo [--version 3.9.2] [--web.listen-address 127.0.0.1:9838]
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

from .fetch import pinned_versions
from .harness import HarnessError, KafkaEnvironment, _set_pdeathsig, start_environment
from .rest import FILE_SINK, FILE_SOURCE, ConnectRest, wait_until


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


def exporter_command(env: KafkaEnvironment, listen: str) -> list[str]:
    exe = shutil.which("kafka-connect-exporter")
    cmd = [exe] if exe else [sys.executable, "-m", "exporter"]
    for url in env.connect.urls:
        cmd += ["--connect.url", f"kafka-{env.version}={url}"]
    return [*cmd, "--connect.poll-interval", "5s", "--web.listen-address", listen, "--log.format", "console"]


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo-kafka", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", default=pinned_versions()[-1], help="a Kafka version from versions.txt")
    parser.add_argument("--web.listen-address", dest="listen", default="127.0.0.1:9838")
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (default: at Ctrl-C)")
    args = parser.parse_args(argv)
    # Ctrl-C and SIGTERM stop everything: exporter first, then the JVMs by PID. SIGINT is set explicitly: a
    # process started in the background by a non-interactive shell inherits SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler, so Ctrl-C (or a test's SIGINT) would do nothing.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)

    print(f"starting Apache Kafka {args.version}: a KRaft broker and 2 Connect workers ...", flush=True)
    env = start_environment(args.version)
    proc: subprocess.Popen[bytes] | None = None
    problems: list[str] = []
    try:
        data = env.workdir / "demo-data"
        data.mkdir()
        with env.connect.rest() as rest:
            create_connectors(rest, data)
        proc = subprocess.Popen(
            exporter_command(env, args.listen),
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=_set_pdeathsig,  # noqa: PLW1509 - dies with this process, like the JVMs; main thread only
        )
        base = f"http://{args.listen}"
        wait_for_metrics(base, proc)
        print(
            f"\nKafka Connect {env.version} workers: {' '.join(env.connect.urls)}\n"
            f"  status page  {base}/\n  metrics      {base}/metrics\n"
            "Connectors: lines-source -> lines-sink (RUNNING), broken-sink (task FAILED), paused-source (PAUSED).\n"
            "Try: curl -X PUT <worker>/connectors/paused-source/resume   ...   Ctrl-C stops everything.\n",
            flush=True,
        )
        deadline = time.monotonic() + args.seconds if args.seconds else None
        while proc.poll() is None and (deadline is None or time.monotonic() < deadline):
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
        problems, saved = env.close()
        if problems:
            print(f"left behind: {problems}; logs in {saved}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
