"""The benchmark harness still runs end to end (at a tiny size, so it cannot rot). Numbers are not asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.simfarm import counts_through_cycle
from simulator.connect.server import RecordedRequest

ROOT = Path(__file__).resolve().parents[2]


def _recorded(*keys: str) -> list[RecordedRequest]:
    return [RecordedRequest(0, k.split()[0], k.split()[1], (), {}) for k in keys]


def test_request_counts_are_cut_at_cycle_ends_whatever_order_a_cycle_s_requests_arrive_in() -> None:
    # Cycle 1's second GET / arrives after its status read; cycle 2's first GET / before its status read,
    # the second after it; an offsets read of the offsets reader lands between.
    log = _recorded(
        "GET /", "GET /connectors", "GET /", "GET /health", "GET /health",
        "GET /", "GET /connectors/a/offsets", "GET /connectors", "GET /", "GET /health", "GET /health",
        "GET /", "GET /",
    )  # fmt: skip
    assert counts_through_cycle(log, 1) == {"GET /": 2, "GET /connectors": 1, "GET /health": 2}
    assert counts_through_cycle(log, 2) is None  # the third status read has not arrived: cycle 2 may go on
    log += _recorded("GET /connectors")
    second = counts_through_cycle(log, 2)
    assert second == {"GET /": 4, "GET /connectors": 2, "GET /health": 4, "GET /connectors/a/offsets": 1}


def test_bench_harness_runs_at_a_tiny_size(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    cmd = [sys.executable, "-m", "bench.run", "--quick", "--sizes", "40x2x2", "--runs", "1", "--cycles", "1"]
    cmd += ["--scrape-seconds", "1", "--poll-interval", "1", "--latency", "0.005", "--out", str(out), "--profile"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "40x2/2cl" in done.stdout  # the table
    (result,) = json.loads(out.read_text())["results"]
    process, stages = result["process"], result["stages"]
    # One status request per cluster and cycle, plus GET / on each of the 2 workers.
    assert process["requests_per_cluster_cycle"]["GET /connectors"] == 1
    assert process["requests_per_cluster_cycle"]["GET /"] == 2
    # Worker probes: the statuses name the same 2 workers, so their GET / is the one above (not sent twice),
    # and each (Kafka 3.9) gets one GET /health: one extra request per worker per cycle, counted at the simulator.
    assert process["requests_per_cluster_cycle"]["GET /health"] == 2
    assert process["scrapes"] > 0 and process["scrape_errors"] == 0
    assert 0 < process["exposition_gzip_bytes"] < process["exposition_bytes"]
    assert process["peak_rss_mb"] > 0 and process["cycle_cpu_s"] >= 0
    assert stages["cycle_cpu_s"] >= stages["render_cpu_s"] > 0
    profile = (tmp_path / "profile-40x2.txt").read_text()
    assert "exporter/" in profile and str(ROOT) not in profile  # paths relative to the repository root


def test_committed_profiles_record_no_path_of_the_machine() -> None:
    profiles = sorted((ROOT / "bench").glob("profile-*.txt"))
    assert profiles
    for profile in profiles:
        lines = profile.read_text().splitlines()
        assert [line for line in lines if "exporter/" in line], profile.name
        assert not [line for line in lines if " /" in line or "(/" in line], profile.name


def test_fault_bench_runs_briefly(tmp_path: Path) -> None:
    out = tmp_path / "faults.json"
    cmd = [
        sys.executable,
        "-m",
        "bench.faults",
        "--seconds",
        "0.3",
        "--case",
        "healthy",
        "--case",
        "accepts, never answers",
    ]
    cmd += ["--out", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| accepts, never answers |" in done.stdout  # the table
    rows = json.loads(out.read_text())["results"]
    assert [r["case"] for r in rows] == ["healthy", "accepts, never answers"]
    for r in rows:
        assert r["scrapes"] > 0 and r["scrape_errors"] == 0
        assert r["max_ms"] >= r["p95_ms"] >= r["p50_ms"] > 0 and r["loop_cpu_max_ms"] >= 0


def test_series_bench_runs_at_a_tiny_size(tmp_path: Path) -> None:
    """bench/series.py against a real Prometheus at 40 x 2: runs end to end; only orders are asserted."""
    out = tmp_path / "series.json"
    cmd = [sys.executable, "-m", "bench.series", "--size", "40x2", "--scrapes", "2", "--scrape-interval", "1"]
    cmd += ["--poll-interval", "1", "--out", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| `current` |" in done.stdout  # the table
    rows = {r["setting"]: r for r in json.loads(out.read_text())["results"]}
    assert list(rows) == ["all", "current", "all, task_metrics: false", "current, task_metrics: false"]
    series = {name: r["head_series"] for name, r in rows.items()}
    assert series["current"] < series["current, task_metrics: false"] < series["all, task_metrics: false"]
    assert series["all, task_metrics: false"] < series["all"]
    for r in rows.values():
        assert r["scrapes"] >= 2 and r["scrape_samples"] > 0 and r["prometheus_rss_mb"] > 0
        assert 0 < r["exposition_gzip_bytes"] < r["exposition_bytes"]
