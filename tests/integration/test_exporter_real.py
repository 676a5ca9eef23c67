"""The exporter, run as its real CLI process, against real Kafka Connect workers of every pinned version.

Each test drives the real workers through their REST API and reads what the exporter serves over real HTTP
(parsed /metrics, the status page, its JSON log). Poll interval 1 s, so "within two poll intervals" is 2 s.
"""

from __future__ import annotations

import html
import json
import os
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
import pytest

from tests.scrape import Scrape, parse_exposition

from .kafka.harness import ConnectCluster, KafkaEnvironment, free_port
from .kafka.rest import FILE_SINK, FILE_SOURCE, ConnectRest, file_sink, file_source, wait_until

pytestmark = pytest.mark.integration

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


# -- (a) connectors appear RUNNING, with type, class, worker_id and task count, within two poll intervals ----


def test_new_connectors_appear_running_within_two_poll_intervals(
    kafka_env: KafkaEnvironment,
    connect: ConnectCluster,
    connect_rest: ConnectRest,
    tmp_path: Path,
    kafka_version: tuple[int, int, int],
) -> None:
    expected = {"a-source": ("source", FILE_SOURCE, 1), "a-sink": ("sink", FILE_SINK, 2)}
    # 2 s rather than 1 s: on two shared cores a busy JVM answers a poll in up to a few hundred ms, which is
    # noise against the bound at 2 s and would decide the test at 1 s.
    interval = 2.0
    with exporter(tmp_path / "exporter.log", connect.urls, interval=interval) as ex:
        wait_scrape(ex, lambda s: s.value("kafka_connect_up", connect_cluster="default") == 1.0, "first poll")
        file_source(connect_rest, "a-source", tmp_path / "in.txt", "a-lines")
        file_sink(connect_rest, "a-sink", tmp_path / "out.txt", "a-lines", tasks=2)

        # From the worker's REST API first reporting a connector RUNNING with all its tasks RUNNING to the
        # exporter's /metrics doing the same, both probed side by side. The bound is counted in the exporter's
        # own polls, not seconds, so a loaded machine that slows the JVM or the scrapes cannot break it: when the
        # worker first says RUNNING, the poll in flight may have read the status before; the one after it cannot.
        polls_when: dict[str, float] = {}
        polls = polls_done

        def worker_says(name: str) -> Callable[[], bool]:
            def probe() -> bool:
                resp = connect_rest.request("GET", f"/connectors/{name}/status")
                if resp.status_code != 200:
                    return False
                st = resp.json()
                tasks = [t["state"] for t in st["tasks"]]
                running = st["connector"]["state"] == "RUNNING" and tasks == ["RUNNING"] * expected[name][2]
                if running:
                    polls_when[f"rest:{name}"] = polls(ex.scrape())
                return running

            return probe

        def exporter_says(name: str) -> Callable[[], bool]:
            def probe() -> bool:
                s = ex.scrape()
                states = [st for st, _ in task_states(s, name).values()]
                running = (
                    s.current_state("kafka_connect_connector_state", connector=name) == "RUNNING"
                    and states == ["RUNNING"] * expected[name][2]
                )
                if running:
                    polls_when[f"exporter:{name}"] = polls(s)
                return running

            return probe

        probes = {f"rest:{n}": worker_says(n) for n in expected} | {f"exporter:{n}": exporter_says(n) for n in expected}
        seen = first_times(probes, timeout=90)
        delays = {n: round(seen[f"exporter:{n}"] - seen[f"rest:{n}"], 3) for n in expected}
        lag_polls = {n: polls_when[f"exporter:{n}"] - polls_when[f"rest:{n}"] for n in expected}
        assert all(p <= 2 for p in lag_polls.values()), f"lag behind the worker in polls {lag_polls}; s {delays}"
        assert all(p >= 0 for p in lag_polls.values()), lag_polls

        def agree(s: Scrape, status: dict[str, dict[str, Any]]) -> bool:
            return all(
                n in status
                and task_states(s, n) == {str(t["id"]): ("RUNNING", t["worker_id"]) for t in status[n]["tasks"]}
                and [lbl["worker_id"] for lbl, _ in s.samples("kafka_connect_connector_info", connector=n)]
                == [status[n]["connector"]["worker_id"]]
                for n in expected
            )

        s, status = agreeing_with_connect(ex, connect_rest, agree)
        durations = s.samples("kafka_connect_exporter_poll_duration_seconds")
    print(
        f"kafka {kafka_env.version}: exporter lag behind the worker REST API (poll every {interval:g}s):"
        f" {delays} s, {lag_polls} polls; poll durations {durations}"
    )
    assert s.value("kafka_connect_up", connect_cluster="default") == 1.0
    for name, (kind, cls, ntasks) in expected.items():
        [(info, _)] = s.samples("kafka_connect_connector_info", connector=name)
        assert (info["connector_type"], info["connector_class"]) == (kind, cls)
        assert info["worker_id"] == status[name]["connector"]["worker_id"]
        assert info["worker_id"] in connect.worker_ids
        # KIP-891 (4.1+): the running plugin's version, as the worker's own status says it; none before.
        said = status[name]["connector"].get("version") or ""
        assert info["connector_version"] == said
        assert bool(said) == (kafka_version >= (4, 1)), status[name]
        task_versions = sorted({t["version"] for t in status[name]["tasks"] if t.get("version")})
        assert info["task_version"] == ",".join(task_versions)
        assert s.value("kafka_connect_connector_tasks", connector=name) == float(ntasks)
        assert s.value("kafka_connect_connector_tasks_max", connector=name) == float(ntasks)
        assert s.value("kafka_connect_connector_tasks_by_state", connector=name, state="RUNNING") == float(ntasks)
        shown = task_states(s, name)
        assert shown == {str(t["id"]): ("RUNNING", t["worker_id"]) for t in status[name]["tasks"]}
        assert {wid for _, wid in shown.values()} <= set(connect.worker_ids)
    for url in connect.urls:
        assert s.value("kafka_connect_worker_up", worker=url) == 1.0
        [(labels, _)] = s.samples("kafka_connect_worker_info", worker=url)
        assert labels["version"] == kafka_env.version
        assert labels["commit"] == kafka_env.server_info["commit"]
        assert labels["kafka_cluster_id"] == kafka_env.server_info["kafka_cluster_id"]
    plugins = {lbl["plugin_class"]: lbl for lbl, _ in s.samples("kafka_connect_plugin_info")}
    assert plugins[FILE_SOURCE]["version"] == kafka_env.version
    assert (plugins[FILE_SOURCE]["plugin_type"], plugins[FILE_SINK]["plugin_type"]) == ("source", "sink")


# -- (b) a sink that cannot write its file: FAILED with a trace, shown on the page, healed by a restart ------


def test_failed_sink_task_is_shown_and_recovers_after_fix_and_restart(
    connect: ConnectCluster, connect_rest: ConnectRest, tmp_path: Path
) -> None:
    out_dir = tmp_path / "missing-dir"
    name = "b-sink"
    file_sink(connect_rest, name, out_dir / "out.txt", "b-lines")
    st = connect_rest.wait_for_state(name, "RUNNING", task_state="FAILED", tasks=1)
    trace = st["tasks"][0]["trace"]
    first = trace.splitlines()[0]
    assert "Couldn't find or create file" in first and str(out_dir) in first

    with exporter(tmp_path / "exporter.log", connect.urls) as ex:
        s = wait_scrape(
            ex, lambda s: task_states(s, name).get("0", (None, ""))[0] == "FAILED", "the FAILED task in /metrics"
        )
        assert s.current_state("kafka_connect_connector_state", connector=name) == "RUNNING"
        assert s.value("kafka_connect_connector_tasks_by_state", connector=name, state="FAILED") == 1.0
        assert s.value("kafka_connect_connector_tasks_by_state", connector=name, state="RUNNING") == 0.0
        assert task_states(s, name)["0"][1] == st["tasks"][0]["worker_id"]
        # The trace is for people (status page), never a label: no message or path of it is in the exposition,
        # and its exception classes only as the bounded fingerprint labels of kafka_connect_failure_info.
        assert "Couldn't find" not in s.text and str(out_dir) not in s.text
        outside_fingerprint = [x for x in s.text.splitlines() if not x.startswith("kafka_connect_failure_info")]
        assert not [x for x in outside_fingerprint if "ConnectException" in x]
        [(fingerprint, _)] = s.samples("kafka_connect_failure_info", connector=name)
        assert fingerprint["exception"] == "org.apache.kafka.connect.errors.ConnectException", fingerprint
        page = ex.page()
        assert first in page
        assert "\tat " not in page and "Caused by" not in page  # only the first line

        out_dir.mkdir()  # the operator fixes the cause and restarts the task
        connect_rest.restart_task(name, 0)
        s = wait_scrape(
            ex, lambda s: task_states(s, name).get("0", (None, ""))[0] == "RUNNING", "the restarted task RUNNING"
        )
        assert s.value("kafka_connect_connector_tasks_by_state", connector=name, state="FAILED") == 0.0
        assert s.value("kafka_connect_connector_tasks_by_state", connector=name, state="RUNNING") == 1.0
        assert first not in ex.page()


# What a failed poll itself changes; every other series of the cluster is the last known state while it lasts.
THIS_CYCLE = ("kafka_connect_up", "kafka_connect_worker_up", "kafka_connect_worker_info", "kafka_connect_exporter_")


def cluster_series(s: Scrape) -> dict[str, float]:
    """Every sample line of the cluster (name and labels -> value), except what a failed poll itself changes."""
    out = {}
    for line in s.text.splitlines():
        if line.startswith(("#", *THIS_CYCLE)) or "connect_cluster=" not in line:
            continue
        series, _, value = line.rpartition(" ")
        out[series] = float(value)
    return out


@contextmanager
def frozen_workers(connect: ConnectCluster) -> Iterator[None]:
    """SIGSTOP every worker JVM (a cluster that accepts connections and never answers), SIGCONT on the way out."""
    pids = [p.pid for p in connect.processes if p is not None and p.alive() and p.pid is not None]
    assert len(pids) == connect.size
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def test_an_outage_of_every_worker_keeps_the_last_known_state(
    connect: ConnectCluster, connect_rest: ConnectRest, tmp_path: Path
) -> None:
    file_sink(connect_rest, "lk-failed", tmp_path / "missing-dir" / "out.txt", "lk-lines")
    file_sink(connect_rest, "lk-ok", tmp_path / "out.txt", "lk-lines")
    connect_rest.wait_for_state("lk-failed", "RUNNING", task_state="FAILED", tasks=1)
    connect_rest.wait_for_state("lk-ok", "RUNNING", task_state="RUNNING", tasks=1)

    with exporter(tmp_path / "exporter.log", connect.urls) as ex:
        healthy = wait_scrape(
            ex,
            lambda s: (
                s.value("kafka_connect_up") == 1.0
                and task_states(s, "lk-failed").get("0", (None, ""))[0] == "FAILED"
                and task_states(s, "lk-ok").get("0", (None, ""))[0] == "RUNNING"
                and bool(s.samples("kafka_connect_failure_info", connector="lk-failed"))
                and s.label_values("kafka_connect_connector_health", "health", connector="lk-failed") == {"failed"}
            ),
            "both sinks, the failure and its health",
        )
        before = cluster_series(healthy)
        with frozen_workers(connect):
            down = wait_scrape(ex, lambda s: s.value("kafka_connect_up") == 0.0, "kafka_connect_up 0")
            # Three more failed polls, each of which publishes the last known state again.
            failed = down.value("kafka_connect_exporter_polls_total", result="failure") or 0.0
            during = wait_scrape(
                ex,
                lambda s: (s.value("kafka_connect_exporter_polls_total", result="failure") or 0.0) >= failed + 3,
                "three more failed polls",
            )
        assert during.value("kafka_connect_up") == 0.0
        assert cluster_series(during) == before  # every connector, task, failure, health and worker series, held
        assert task_states(during, "lk-failed")["0"][0] == "FAILED"
        assert during.label_values("kafka_connect_connector_health", "health", connector="lk-failed") == {"failed"}
        assert (during.value("kafka_connect_exporter_poll_errors_total", reason="timeout") or 0.0) >= 1.0
        back = wait_scrape(ex, lambda s: s.value("kafka_connect_up") == 1.0, "recovery after the outage", 120)
        assert task_states(back, "lk-failed")["0"][0] == "FAILED"
        assert (back.value("kafka_connect_state_transitions_total", connector="lk-failed", to_state="FAILED") or 0) == 0


# -- (c) pause, resume, stop, delete ------------------------------------------------------------------------


def test_exporter_follows_lifecycle_and_forgets_deleted_connectors(
    connect: ConnectCluster, connect_rest: ConnectRest, tmp_path: Path, kafka_version: tuple[int, int, int]
) -> None:
    name, other = "c-source", "c-other"
    file_source(connect_rest, name, tmp_path / "in.txt", "c-lines")
    file_source(connect_rest, other, tmp_path / "other.txt", "c-other-lines")
    for n in (name, other):
        connect_rest.wait_for_state(n, "RUNNING", task_state="RUNNING", tasks=1)

    def shows(state: str, task: str | None) -> Callable[[Scrape], bool]:
        def check(s: Scrape) -> bool:
            tasks = [st for st, _ in task_states(s, name).values()]
            return s.current_state("kafka_connect_connector_state", connector=name) == state and tasks == (
                [task] if task else []
            )

        return check

    with exporter(tmp_path / "exporter.log", connect.urls) as ex:
        wait_scrape(ex, shows("RUNNING", "RUNNING"), "RUNNING")
        connect_rest.pause(name)
        s = wait_scrape(ex, shows("PAUSED", "PAUSED"), "PAUSED connector and task")
        assert s.value("kafka_connect_connector_tasks_by_state", connector=name, state="PAUSED") == 1.0
        connect_rest.resume(name)
        wait_scrape(ex, shows("RUNNING", "RUNNING"), "RUNNING again after resume")
        if kafka_version >= (3, 5, 0):  # PUT /stop (KIP-875)
            connect_rest.stop(name)
            s = wait_scrape(ex, shows("STOPPED", None), "STOPPED connector without tasks")
            assert s.value("kafka_connect_connector_tasks", connector=name) == 0.0
            assert s.samples("kafka_connect_task_state", connector=name) == []
            assert {v for _, v in s.samples("kafka_connect_connector_tasks_by_state", connector=name)} == {0.0}
        connect_rest.delete(name)
        s = wait_scrape(
            ex,
            lambda s: not any(name == lbl.get("connector") for series in s.families.values() for lbl, _ in series),
            "every series of the deleted connector gone",
        )
        assert s.current_state("kafka_connect_connector_state", connector=other) == "RUNNING"
        # Gone for good, not flickering back while the worker's status store catches up with the delete.
        for _ in range(3 * int(POLL_INTERVAL / 0.5)):
            time.sleep(0.5)
            assert ex.scrape().samples("kafka_connect_connector_state", connector=name) == []


# -- (d) SIGKILL of a worker: tasks move, the exporter fails over, nothing crashes ----------------------------


def test_killed_worker_fail_over_and_task_move(
    connect: ConnectCluster, connect_rest: ConnectRest, tmp_path: Path
) -> None:
    status, _, victim = running_pipelines_and_a_busy_worker(connect, connect_rest, tmp_path, "d-")
    survivor = 1 - victim
    dead_id, dead_url = connect.worker_ids[victim], connect.urls[victim]
    moved = {(n, str(t["id"])) for n, st in status.items() for t in st["tasks"] if t["worker_id"] == dead_id}
    assert moved, f"no task on either worker? {status}"

    # The victim's URL first: it is the worker the exporter reads the statuses from.
    with exporter(tmp_path / "exporter.log", [dead_url, connect.urls[survivor]]) as ex:
        # .get: before its first poll the exporter shows no task at all, which is "not yet", not an error.
        s = wait_scrape(
            ex, lambda s: all(task_states(s, n).get(t, ("", ""))[0] == "RUNNING" for n, t in moved), "all RUNNING"
        )
        assert {task_states(s, n)[t][1] for n, t in moved} == {dead_id}
        connect.kill_worker(victim)
        killed_at = time.monotonic()
        # Polls published by the time of the kill (read just after it): the poll in flight may have asked the
        # victim before it died; the one after it cannot. Bounds below count polls, not seconds a loaded
        # machine can stretch.
        polls_at_kill = polls_done(ex.scrape())

        scrapes: list[tuple[float, Scrape]] = []

        def record(s: Scrape) -> bool:
            scrapes.append((time.monotonic() - killed_at, s))
            return all(task_states(s, n).get(t, (None, dead_id))[1] != dead_id for n, t in moved) and all(
                st == "RUNNING" for n in status for st, _ in task_states(s, n).values()
            )

        s = wait_scrape(ex, record, "the dead worker's tasks to move and run elsewhere", timeout=90)
        moved_after = scrapes[-1][0]
        log = ex.log_text()
        connect.start_worker(victim)
        wait_scrape(ex, lambda s: s.value("kafka_connect_worker_up", worker=dead_url) == 1.0, "restarted worker up")

    # Fail-over: every scrape after the kill still had the cluster up, read from the surviving worker.
    assert all(sc.value("kafka_connect_up", connect_cluster="default") == 1.0 for _, sc in scrapes)
    down = [(t, polls_done(sc)) for t, sc in scrapes if sc.value("kafka_connect_worker_up", worker=dead_url) == 0.0]
    assert down and down[0][1] - polls_at_kill <= 2, f"dead worker's up went 0 only at {down[0]} (s, polls)"
    assert all(sc.value("kafka_connect_worker_up", worker=connect.urls[survivor]) == 1.0 for _, sc in scrapes)
    # Real workers keep the SIGKILLed worker's tasks RUNNING under its worker_id until the rebalance delay
    # (scheduled.rebalance.max.delay.ms, 10 s here) expires; the exporter shows exactly that, then the move.
    stale = [t for t, sc in scrapes if sc.value("kafka_connect_worker_up", worker=dead_url) == 0.0
             and any(task_states(sc, n).get(tk) == ("RUNNING", dead_id) for n, tk in moved)]  # fmt: skip
    assert stale, "no scrape showed the dead worker's tasks still RUNNING under its worker_id"
    for n, t in moved:
        assert task_states(s, n)[t] == ("RUNNING", connect.worker_ids[survivor])
    for n in status:
        [(info, _)] = s.samples("kafka_connect_connector_info", connector=n)
        assert info["worker_id"] == connect.worker_ids[survivor]
    events = [e for e in ex.events() if e.get("event") == "poll_failed"]
    assert any(e.get("url", "").startswith(dead_url) and e.get("reason") == "connect" for e in events), log[-2000:]
    assert s.value("kafka_connect_exporter_polls_total", connect_cluster="default", result="failure") == 0.0
    assert "Traceback" not in log
    print(f"tasks of the killed worker moved after {moved_after:.1f}s; stale RUNNING for {stale[-1]:.1f}s")
