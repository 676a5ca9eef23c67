"""The exporter as its real CLI process against real Kafka Connect workers, and the checks the real-Kafka tests
share (task states as served and as Connect reports them, poll counts, first-seen times)."""

from __future__ import annotations

import html
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import free_port
from tests.support.scrape import Scrape, parse_exposition

from .kafka.harness import ConnectCluster
from .kafka.rest import ConnectRest, file_sink, file_source, wait_until

POLL_INTERVAL = 1.0


def _exporter_argv() -> list[str]:
    script = Path(sys.executable).with_name("kafka-connect-exporter")
    return [str(script)] if script.exists() else [sys.executable, "-m", "exporter"]


@dataclass
class Exporter:
    base: str
    log: Path

    def scrape(self) -> Scrape:
        resp = httpx.get(f"{self.base}/metrics", timeout=5)
        assert resp.status_code == 200, resp.text[:500]
        return parse_exposition(resp.text)

    def page(self) -> str:
        resp = httpx.get(f"{self.base}/", timeout=5)
        assert resp.status_code == 200
        return html.unescape(resp.text)

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out


@contextmanager
def exporter(
    log: Path,
    urls: Sequence[str] = (),
    *,
    config: Path | None = None,
    extra: Sequence[str] = (),
    interval: float = POLL_INTERVAL,
) -> Iterator[Exporter]:
    """Run the exporter CLI (JSON logs to ``log``) polling ``urls`` every ``interval`` or as ``config`` says;
    yields once it answers /healthz; stops it by PID with SIGTERM and checks it exited cleanly."""
    port = free_port()
    argv = [*_exporter_argv(), "--web.listen-address", f"127.0.0.1:{port}", "--log.format", "json", *extra]
    if config is not None:
        argv += ["--config.file", str(config)]
    if urls:
        argv += ["--connect.poll-interval", f"{interval:g}s"]
    for url in urls:
        argv += ["--connect.url", url]
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:

        def answering() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"exporter exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200

        wait_until(answering, timeout=30, interval=0.1, what="the exporter to listen")
        yield Exporter(base, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0, f"exporter exited with {proc.returncode}:\n{log.read_text()[-3000:]}"


def wait_scrape(ex: Exporter, predicate: Callable[[Scrape], bool], what: str, timeout: float = 60.0) -> Scrape:
    def probe() -> Scrape | None:
        scrape = ex.scrape()  # a failing /metrics fails the test: it must keep answering
        return scrape if predicate(scrape) else None

    return wait_until(probe, timeout=timeout, interval=0.2, what=what)


def task_states(s: Scrape, connector: str) -> dict[str, tuple[str | None, str]]:
    """task id -> (current state, worker_id) as the exporter shows them."""
    out: dict[str, tuple[str | None, str]] = {}
    for labels, value in s.samples("kafka_connect_task_state", connector=connector):
        state = out.get(labels["task"], (None, ""))[0]
        out[labels["task"]] = (labels["state"] if value == 1.0 else state, labels["worker_id"])
    return out


def rest_states(rest: ConnectRest) -> dict[str, dict[str, Any]]:
    return {n: e["status"] for n, e in rest.connectors_expanded("status").items()}


def running_pipelines_and_a_busy_worker(
    connect: ConnectCluster, rest: ConnectRest, tmp_path: Path, prefix: str
) -> tuple[dict[str, dict[str, Any]], list[int], int]:
    """Two sources and a 2-task sink, all RUNNING: their statuses, the tasks each worker runs, and the index of
    the busiest worker.

    The set-up of the killed-worker tests, which kill that worker (it runs tasks).
    """
    file_source(rest, f"{prefix}source", tmp_path / "in.txt", f"{prefix}lines")
    file_sink(rest, f"{prefix}sink", tmp_path / "out.txt", f"{prefix}lines", tasks=2)
    file_source(rest, f"{prefix}source-2", tmp_path / "in2.txt", f"{prefix}lines-2")
    for n, k in ((f"{prefix}source", 1), (f"{prefix}sink", 2), (f"{prefix}source-2", 1)):
        rest.wait_for_state(n, "RUNNING", task_state="RUNNING", tasks=k)
    status = rest_states(rest)
    owned = [sum(t["worker_id"] == wid for st in status.values() for t in st["tasks"]) for wid in connect.worker_ids]
    return status, owned, max(range(2), key=lambda i: owned[i])


def polls_done(s: Scrape) -> float:
    """Poll cycles of the default cluster the exporter has published, failed or not."""
    return sum(v for _, v in s.samples("kafka_connect_exporter_polls_total", connect_cluster="default"))


def agreeing_with_connect(
    ex: Exporter,
    rest: ConnectRest,
    agree: Callable[[Scrape, dict[str, dict[str, Any]]], bool],
    rounds: int = 10,
) -> tuple[Scrape, dict[str, dict[str, Any]]]:
    """A scrape and Connect's statuses read side by side, again until ``agree`` holds for the pair or the exporter
    has published ``rounds`` more polls (a rebalance between the two reads is not a disagreement); the last pair."""
    s, status = ex.scrape(), rest_states(rest)
    start = polls_done(s)
    hung = time.monotonic() + 600.0  # only an exporter that stopped polling gets here
    while not agree(s, status) and polls_done(s) - start < rounds:
        assert time.monotonic() < hung, f"the exporter published {polls_done(s) - start:g} polls in 600 s"
        time.sleep(0.2)
        s, status = ex.scrape(), rest_states(rest)
    return s, status


def first_times(probes: Mapping[str, Callable[[], bool]], timeout: float, interval: float = 0.02) -> dict[str, float]:
    """Run each probe in its own thread every ``interval`` until it holds; for each, the monotonic time the
    first successful probe was sent (one probe's latency never delays another's)."""

    def run(probe: Callable[[], bool]) -> float:
        deadline = time.monotonic() + timeout
        while True:
            sent = time.monotonic()
            if probe():
                return sent
            if sent > deadline:
                raise TimeoutError
            time.sleep(interval)

    with ThreadPoolExecutor(max_workers=len(probes)) as pool:
        futures = {key: pool.submit(run, probe) for key, probe in probes.items()}
        seen, missing = {}, []
        for key, future in futures.items():
            try:
                seen[key] = future.result()
            except TimeoutError:
                missing.append(key)
    if missing:
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {missing}")
    return seen
