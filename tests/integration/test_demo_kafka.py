"""``make demo-kafka`` as a user runs it: real Kafka Connect, the exporter against it, Ctrl-C stops it all."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.integration.kafka.rest import wait_until
from tests.support.processes import free_port
from tests.support.scrape import Scrape, parse_exposition

ROOT = Path(__file__).resolve().parents[2]


def test_demo_kafka_shows_real_connectors_and_stops_everything_on_ctrl_c() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.kafka.demo", "--web.listen-address", f"127.0.0.1:{port}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out: list[str] = []
    try:
        assert proc.stdout is not None
        stdout = proc.stdout
        banner = threading.Event()

        def drain() -> None:
            # Read every line to the end: the exporter logs to the same pipe, and a pipe nobody reads fills up
            # (64 KiB) and blocks the demo and the exporter on their next write, so Ctrl-C would hang.
            for line in stdout:
                out.append(line)
                if "Ctrl-C stops everything" in line:  # the banner comes once everything runs
                    banner.set()
            banner.set()  # the demo ended before its banner: the assertion below shows its output

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        assert banner.wait(timeout=300), "".join(out)
        workers = next((m.group(1).split() for x in out if (m := re.match(r"Kafka Connect \S+ workers: (.*)", x))), [])
        assert len(workers) == 2, "".join(out)

        def states(s: Scrape) -> dict[str, str | None]:
            return {
                c: s.current_state("kafka_connect_connector_state", connector=c)
                for c in ("lines-source", "lines-sink", "broken-sink", "paused-source")
            }

        base = f"http://127.0.0.1:{port}"

        def settled() -> Scrape | None:
            s = parse_exposition(httpx.get(base + "/metrics", timeout=5).text)
            failed = s.current_state("kafka_connect_task_state", connector="broken-sink", task="0") == "FAILED"
            return s if failed and states(s)["paused-source"] == "PAUSED" else None

        s = wait_until(settled, timeout=90, interval=1.0, what="the demo's connector states in the scrape")
        assert states(s) == {
            "lines-source": "RUNNING",
            "lines-sink": "RUNNING",
            "broken-sink": "RUNNING",  # the connector runs; its task is what failed
            "paused-source": "PAUSED",
        }
        assert all(s.value("kafka_connect_worker_up", worker=w) == 1.0 for w in workers)

        # The CDC pipeline: the database stops on SIGUSR1 and the exporter says silent while Connect says
        # RUNNING; SIGUSR2 starts it again and the signal clears. Bounds: 5x the ~45 s the defaults give.
        heartbeat = "__debezium-heartbeat.shop"

        def silent(want: float) -> Callable[[], Scrape | None]:
            def probe() -> Scrape | None:
                s = parse_exposition(httpx.get(base + "/metrics", timeout=5).text)
                return (
                    s
                    if s.value("kafka_connect_source_silent", connector="orders-cdc", topic=heartbeat) == want
                    else None
                )

            return probe

        wait_until(silent(0.0), timeout=300, interval=2.0, what="orders-cdc heartbeats seen by the exporter")
        proc.send_signal(signal.SIGUSR1)
        s = wait_until(silent(1.0), timeout=300, interval=2.0, what="orders-cdc silent after the database stopped")
        assert s.current_state("kafka_connect_connector_state", connector="orders-cdc") == "RUNNING"
        assert s.label_values("kafka_connect_connector_health", "health", connector="orders-cdc") == {"degraded"}
        proc.send_signal(signal.SIGUSR2)
        wait_until(silent(0.0), timeout=300, interval=2.0, what="orders-cdc heard from again after the restart")

        proc.send_signal(signal.SIGINT)
        # By design a stop can take 50 s: the exporter gets 10 s, then the workers and the broker 20 s of
        # SIGTERM grace each before SIGKILL, and a loaded machine makes the JVMs use it (a CI run beside other
        # JVMs took over 60 s). The bound is 3x that design worst case; a stop that hangs still fails.
        try:
            code = proc.wait(timeout=150)
        except subprocess.TimeoutExpired:
            raise AssertionError("the demo did not stop within 150 s of Ctrl-C:\n" + "".join(out)) from None
        assert code == 0, "".join(out)
        reader.join(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The exporter and both workers are gone: their ports refuse connections.
    for url in [*workers, f"http://127.0.0.1:{port}"]:
        host, _, p = url.removeprefix("http://").partition(":")
        with socket.socket() as sock:
            assert sock.connect_ex((host, int(p))) != 0, f"{url} still answers after Ctrl-C"
