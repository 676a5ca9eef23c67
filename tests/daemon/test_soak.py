"""Bounded soak: the exporter as a real process under connector churn, rotating worker faults and 8
concurrent scrapers; its RSS and open file descriptors must stay flat.

Duration: ``SOAK_SECONDS`` (default 40 s in ``make test``; ``make soak`` runs 30 minutes). The first
``WARMUP`` share of the run lets caches, pools and the allocator settle; after it:

* RSS: the median of the last fifth of the samples may exceed the median of the first fifth (after
  warm-up) by at most ``RSS_BOUND_BYTES`` (8 MiB) and the highest sample by at most twice that.
* Open fds: never more than ``FD_BOUND`` (16) above the post-warm-up baseline, and back within 4 of it once
  the scrapers stop (keep-alive connections, per-worker pools and the listener are all that should remain).
* Every scrape answers 200 and parses; every scraper keeps scraping and the daemon keeps polling (both
  checked as conditions, not as rates, which a loaded machine would break).

``SOAK_REPORT=path.json`` writes the samples and figures.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from simulator.connect.server import connect_in_thread
from simulator.connect.state import SimCluster
from simulator.faults import Fault
from tests.support.processes import free_port, open_fds, rss_bytes, start_exporter
from tests.support.scrape import parse_exposition

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "40"))
WARMUP = 0.25
RSS_BOUND_BYTES = 8 * 1024 * 1024
FD_BOUND = 16
SCRAPERS = 8

FAULTS = [
    None,
    Fault.refuse(),
    Fault.http_status(503, path="/connectors"),
    Fault.malformed_json(path="/connectors"),
    Fault.hang(path="/connectors"),
    Fault.huge_body(size=8 * 1024 * 1024, path="/connectors"),
    Fault.foreign_cluster(),
    Fault.truncated_json(),
    Fault.disconnect(path="/connectors"),
    Fault.slow(1.0),
]


def after_warmup(samples: list[tuple[float, int, int]]) -> list[tuple[float, int, int]]:
    return [s for s in samples if s[0] >= SOAK_SECONDS * WARMUP]


def fd_baseline(samples: list[tuple[float, int, int]]) -> float:
    """Open fds at the start of the measured part: the median of its first fifth."""
    measured = after_warmup(samples)
    return statistics.median(s[2] for s in measured[: max(1, len(measured) // 5)])


def polls_total(base: str) -> float:
    scrape = parse_exposition(httpx.get(base + "/metrics", timeout=5).text)
    return sum(v for _, v in scrape.samples("kafka_connect_exporter_polls_total"))


def test_soak_rss_and_fds_stay_flat(tmp_path: Path) -> None:
    cluster = SimCluster(worker_count=3)
    for i in range(40):
        cluster.add_connector(f"base-{i}", "sink" if i % 2 else "source", tasks_max=1 + i % 4)
    with connect_in_thread(cluster) as sim:
        config = {
            "web": {"listen_address": f"127.0.0.1:{free_port()}"},
            "log": {"level": "warning"},
            "clusters": [
                {
                    "name": "soak",
                    "urls": sim.urls,
                    "poll_interval": "0.25s",
                    "request_timeout": "0.5s",
                    "cycle_timeout": "1s",
                    "max_response_size": "2MiB",
                    "autoheal": {"mode": "dry-run", "grace_period": "1s"},
                }
            ],
        }
        path = tmp_path / "config.yml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        log = tmp_path / "log"
        proc = start_exporter("--config.file", str(path), log_path=log)
        base = "http://" + config["web"]["listen_address"]
        stop = threading.Event()
        stats: dict[str, Any] = {"scrapes": 0, "errors": [], "bytes": 0, "per_scraper": [0] * SCRAPERS}
        lock = threading.Lock()

        def scraper(n: int) -> None:
            headers = [
                {},
                {"Accept-Encoding": "gzip"},
                {"Accept": "application/openmetrics-text; version=1.0.0"},
            ][n % 3]
            with httpx.Client(timeout=5, headers=headers) as client:
                while not stop.is_set():
                    try:
                        r = client.get(base + ("/" if n == 7 and stats["scrapes"] % 5 == 0 else "/metrics"))
                        if r.status_code != 200:
                            raise AssertionError(f"HTTP {r.status_code}")
                        if "openmetrics" not in str(headers) and r.headers["content-type"].startswith("text/plain"):
                            parse_exposition(r.text)
                        with lock:
                            stats["scrapes"] += 1
                            stats["per_scraper"][n] += 1
                            stats["bytes"] += len(r.content)
                    except Exception as exc:
                        with lock:
                            stats["errors"].append(f"{type(exc).__name__}: {exc}"[:200])
                    time.sleep(0.02)

        def churn() -> None:
            gen, fault_i = 0, 0
            while not stop.is_set():
                gen += 1
                for i in range(5):
                    if f"churn-{gen - 1}-{i}" in cluster.connector_names():
                        cluster.delete(f"churn-{gen - 1}-{i}")
                    cluster.add_connector(f"churn-{gen}-{i}", "source", tasks_max=2)
                victim = f"base-{gen % 40}"
                if gen % 2:
                    cluster.fail_task(victim, 0)
                else:
                    cluster.set_state(victim, "RUNNING", task=0)
                if gen % 8 == 0:  # a new fault on one worker every 2 s; the others stay healthy
                    fault_i += 1
                    sim.set_fault(fault_i % 3, None)
                    sim.set_fault((fault_i + 1) % 3, FAULTS[fault_i % len(FAULTS)])
                sim.clear_requests()  # the simulator's own request log must not grow either
                time.sleep(0.25)

        samples: list[tuple[float, int, int]] = []
        threads: list[threading.Thread] = []
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text()[-2000:]
                time.sleep(0.1)
            threads = [threading.Thread(target=scraper, args=(n,), daemon=True) for n in range(SCRAPERS)]
            threads.append(threading.Thread(target=churn, daemon=True))
            for t in threads:
                t.start()
            started = time.monotonic()
            while time.monotonic() - started < SOAK_SECONDS:
                samples.append((time.monotonic() - started, rss_bytes(proc.pid), open_fds(proc.pid)))
                time.sleep(0.5)
            stop.set()
            for t in threads:
                t.join(15)
            sim.clear_faults()
            polls_at_stop = polls_total(base)
            # Idle keep-alive connections of the scrapers close once their clients are gone: waited for (up
            # to 20 s), not slept on. What remains is compared with the baseline below.
            deadline = time.monotonic() + 20
            while (fds_after := open_fds(proc.pid)) > fd_baseline(samples) + 4 and time.monotonic() < deadline:
                time.sleep(0.2)
            # The daemon is still polling after the soak: two more cycles, waited for.
            deadline = time.monotonic() + 20
            while (polls := polls_total(base)) < polls_at_stop + 2 and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            stop.set()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(20)

    assert code == 0
    assert not stats["errors"], stats["errors"][:10]
    # Every scraper ran throughout (~20 scrapes a second each when idle; 10 in the whole run is a floor no
    # loaded machine reaches), and the daemon polled after the soak as well as during it.
    assert min(stats["per_scraper"]) >= 10, stats["per_scraper"]
    assert polls >= polls_at_stop + 2, (polls_at_stop, polls)

    measured = after_warmup(samples)
    fifth = max(1, len(measured) // 5)
    rss_start = statistics.median(s[1] for s in measured[:fifth])
    rss_end = statistics.median(s[1] for s in measured[-fifth:])
    rss_peak = max(s[1] for s in measured)
    fd_base = fd_baseline(samples)
    fd_peak = max(s[2] for s in measured)
    figures: dict[str, Any] = {
        "seconds": SOAK_SECONDS,
        "scrapes": stats["scrapes"],
        "scraped_mib": round(stats["bytes"] / 2**20, 1),
        "polls": polls,
        "rss_start_mib": round(rss_start / 2**20, 2),
        "rss_end_mib": round(rss_end / 2**20, 2),
        "rss_growth_mib": round((rss_end - rss_start) / 2**20, 2),
        "rss_peak_mib": round(rss_peak / 2**20, 2),
        "fd_baseline": fd_base,
        "fd_peak": fd_peak,
        "fd_after_idle": fds_after,
        "bounds": {"rss_growth_mib": RSS_BOUND_BYTES / 2**20, "fd_over_baseline": FD_BOUND},
    }
    report = os.environ.get("SOAK_REPORT")
    if report:
        Path(report).write_text(json.dumps({**figures, "samples": samples}, indent=1), encoding="utf-8")
    print("soak:", json.dumps(figures))
    assert rss_end - rss_start <= RSS_BOUND_BYTES, figures
    assert rss_peak - rss_start <= 2 * RSS_BOUND_BYTES, figures
    assert fd_peak <= fd_base + FD_BOUND, figures
    assert fds_after <= fd_base + 4, figures
