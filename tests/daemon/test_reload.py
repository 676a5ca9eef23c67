"""Live reload on the real process: SIGHUP and POST /-/reload (with --web.enable-lifecycle) re-read the file.

One exporter process goes through a sequence of reloads: add a cluster, remove one, change a poll interval,
break the file (the old configuration keeps serving), mend it; all under a steady scrape load that must never
see a failed scrape. The cluster the reloads never touch keeps its counters and its auto-heal history.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from simulator.connect.server import SimThread, connect_in_thread
from simulator.connect.state import SimCluster
from tests.support.processes import free_port, start_exporter
from tests.support.scrape import Scrape, parse_exposition
from tests.support.waiting import eventually

# Generous bounds for a busy 2-core machine: each waits for something that takes a few 0.3 s polls.
WAIT = 30.0
OK = "kafka_connect_exporter_config_last_reload_successful"
OK_AT = "kafka_connect_exporter_config_last_reload_success_timestamp_seconds"
DRY_RUN = "kafka_connect_autoheal_restarts_total"
RESTART = {"connect_cluster": "a", "connector": "broken-sink", "kind": "connector", "outcome": "dry_run"}


def cluster(name: str, sim: SimThread, **extra: Any) -> dict[str, Any]:
    return {"name": name, "urls": sim.urls, "poll_interval": "0.3s", "cycle_timeout": "5s", **extra}


def healed(sim: SimThread) -> dict[str, Any]:
    # dry-run: decisions are counted, nothing is sent; a 1h backoff pins the next attempt time once decided.
    return cluster("a", sim, autoheal={"mode": "dry-run", "grace_period": "0.1s", "backoff": {"initial": "1h"}})


def wait_until(what: str, check: Callable[[], bool], timeout: float = WAIT) -> None:
    eventually(check, what=what, timeout=timeout)


class Exporter:
    def __init__(self, tmp_path: Path, config: dict[str, Any], *flags: str) -> None:
        self.path = tmp_path / "config.yml"
        self.log = tmp_path / "exporter.log"
        self.write(config)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = start_exporter(
            "--config.file", str(self.path), "--web.listen-address", f"127.0.0.1:{self.port}", *flags,
            log_path=self.log,
        )  # fmt: skip

    def write(self, config: dict[str, Any] | str) -> None:
        text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
        self.path.write_text(text, encoding="utf-8")

    def scrape(self) -> Scrape:
        response = httpx.get(self.base + "/metrics", timeout=10)
        assert response.status_code == 200
        return parse_exposition(response.text)

    def sighup(self) -> None:
        self.proc.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def exporter(tmp_path: Path, config: dict[str, Any], *flags: str) -> Iterator[Exporter]:
    ex = Exporter(tmp_path, config, *flags)
    try:
        wait_until("the exporter to serve", lambda: _serves(ex))
        yield ex
    finally:
        ex.stop()
    assert ex.proc.returncode == 0, ex.log.read_text()[-3000:]


def _serves(ex: Exporter) -> bool:
    if ex.proc.poll() is not None:
        raise AssertionError(f"exporter exited: {ex.log.read_text()[-3000:]}")
    try:
        return httpx.get(ex.base + "/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


class ScrapeLoad:
    """Scrapes /metrics back to back in a thread; every answer must be a 200 that parses."""

    def __init__(self, ex: Exporter) -> None:
        self.ex = ex
        self.count = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                try:
                    response = client.get(self.ex.base + "/metrics")
                    if response.status_code != 200:
                        self.failures.append(f"status {response.status_code}")
                    else:
                        parse_exposition(response.text)
                except Exception as exc:
                    self.failures.append(repr(exc))
                self.count += 1

    def __enter__(self) -> ScrapeLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(20)


@pytest.fixture
def sims() -> Iterator[dict[str, SimThread]]:
    clusters = {name: SimCluster(version="3.9.0", worker_count=1) for name in ("a", "b", "c")}
    clusters["a"].add_connector("broken-sink", "sink")
    clusters["a"].fail_connector("broken-sink", persistent=True)
    for name, c in clusters.items():
        c.add_connector(f"{name}-src", "source")
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(connect_in_thread(c)) for name, c in clusters.items()}


def test_reloads_add_remove_change_and_survive_a_broken_file(tmp_path: Path, sims: dict[str, SimThread]) -> None:
    a, b, c = sims["a"], sims["b"], sims["c"]
    with exporter(tmp_path, {"clusters": [healed(a), cluster("b", b)]}, "--web.enable-lifecycle") as ex:
        wait_until("a's healer to decide a restart", lambda: ex.scrape().value(DRY_RUN, **RESTART) == 1.0)
        first = ex.scrape()
        assert first.value(OK) == 1.0 and first.value(OK_AT)
        next_attempt = first.value("kafka_connect_autoheal_next_attempt_timestamp_seconds", connector="broken-sink")
        polls_a = first.value("kafka_connect_exporter_polls_total", connect_cluster="a", result="success")
        assert next_attempt is not None and polls_a

        with ScrapeLoad(ex) as load:
            # 1. SIGHUP adds a cluster.
            ex.write({"clusters": [healed(a), cluster("b", b), cluster("c", c)]})
            ex.sighup()
            wait_until("c to be polled", lambda: ex.scrape().value("kafka_connect_up", connect_cluster="c") == 1.0)
            # 2. POST /-/reload removes one: its series are gone with the next scrape after the reload.
            ex.write({"clusters": [healed(a), cluster("c", c)]})
            answer = httpx.post(ex.base + "/-/reload", timeout=30)
            assert answer.status_code == 200, answer.text
            after = ex.scrape()
            assert after.value("kafka_connect_up", connect_cluster="b") is None
            assert 'connect_cluster="b"' not in after.text
            # 3. A changed poll interval applies.
            ex.write({"clusters": [healed(a), cluster("c", c, poll_interval="0.7s")]})
            assert httpx.post(ex.base + "/-/reload", timeout=30).status_code == 200
            wait_until(
                "c's new interval",
                lambda: ex.scrape().value("kafka_connect_exporter_poll_interval_seconds", connect_cluster="c") == 0.7,
            )
            good_at = ex.scrape().value(OK_AT)
            # 4. A broken file: the reload fails, the old configuration keeps serving.
            ex.write("clusters:\n  - name: a\n    urls: [not a url]\n    poll_intervall: 1s\n")
            ex.sighup()
            wait_until("the failed reload", lambda: ex.scrape().value(OK) == 0.0)
            assert httpx.post(ex.base + "/-/reload", timeout=30).status_code == 500
            broken = ex.scrape()
            assert broken.value(OK_AT) == good_at
            polls_c = broken.value("kafka_connect_exporter_polls_total", connect_cluster="c", result="success") or 0
            wait_until(
                "c to keep being polled",
                lambda: (
                    (
                        ex.scrape().value("kafka_connect_exporter_polls_total", connect_cluster="c", result="success")
                        or 0
                    )
                    > polls_c
                ),
            )
            # 5. Mended: reloads succeed again. Several SIGHUPs in a row, under the same scrape load.
            ex.write({"clusters": [healed(a), cluster("c", c)]})
            for _ in range(5):
                ex.sighup()
                time.sleep(0.2)
            wait_until("the mended reload", lambda: ex.scrape().value(OK) == 1.0)
            assert (ex.scrape().value(OK_AT) or 0) > (good_at or 0)
        assert load.count > 20, load.count
        assert load.failures == [], load.failures[:5]

        last = ex.scrape()
        # Cluster a was never touched: its counters went on, its healer kept its history (the same next attempt,
        # decided before the first reload; a fresh history would decide a new one).
        assert (last.value("kafka_connect_exporter_polls_total", connect_cluster="a", result="success") or 0) > polls_a
        assert (
            last.value("kafka_connect_autoheal_next_attempt_timestamp_seconds", connector="broken-sink") == next_attempt
        )
        assert last.value(DRY_RUN, **RESTART) == 1.0
    events = [line for line in ex.log.read_text().splitlines() if "config_reload" in line]
    assert any("config_reload_failed" in e for e in events) and any("config_reloaded" in e for e in events)


def test_reload_endpoint_needs_the_lifecycle_flag(tmp_path: Path, sims: dict[str, SimThread]) -> None:
    with exporter(tmp_path, {"clusters": [cluster("b", sims["b"])]}) as ex:
        assert httpx.post(ex.base + "/-/reload", timeout=10).status_code == 404
        ex.write({"clusters": [cluster("b", sims["b"]), cluster("c", sims["c"])]})
        ex.sighup()  # SIGHUP always reloads
        wait_until("c to be polled", lambda: ex.scrape().value("kafka_connect_up", connect_cluster="c") == 1.0)
