"""The exporter and the demo as users run them: real processes, real HTTP, real logs."""

from __future__ import annotations

import json
import signal

import httpx

from simulator.connect.server import SimThread
from simulator.faults import Fault
from tests.support.processes import exporter_process, wait_scrape


def test_exporter_process_logs_one_json_event_per_failed_request_and_stops_on_sigterm(sim: SimThread) -> None:
    sim.cluster.add_connector("a", "source")
    args = ["--connect.poll-interval", "0.3s"]
    for url in sim.urls:
        args += ["--connect.url", f"prod={url}"]
    with exporter_process(*args) as (proc, base):
        wait_scrape(base, lambda s: s.current_state("kafka_connect_connector_state", connector="a") == "RUNNING")
        sim.set_fault(0, Fault.http_status(503, path="/connectors"))
        sim.set_fault(1, Fault.http_status(503, path="/connectors"))
        wait_scrape(base, lambda s: s.value("kafka_connect_up", connect_cluster="prod") == 0.0)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 0
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    failures = [e for e in events if e["event"] == "poll_failed"]
    assert failures, stderr[-2000:]
    first = failures[0]
    assert first["cluster"] == "prod" and first["reason"] == "http_status" and first["status"] == 503
    assert first["url"].startswith(tuple(sim.urls)) and first["url"].endswith("/connectors")
    assert first["level"] == "warning" and "timestamp" in first
    assert events[-1]["event"] == "stopped"


def test_demo_starts_and_serves_metrics() -> None:
    with exporter_process("demo") as (proc, base):
        scrape = wait_scrape(
            base, lambda s: len(s.label_values("kafka_connect_connector_state", "connector")) >= 10, timeout=30
        )
        assert scrape.value("kafka_connect_up", connect_cluster="demo") == 1.0
        assert scrape.label_values("kafka_connect_connector_info", "connector_type") >= {"source", "sink"}
        page = httpx.get(base + "/", timeout=5)
        assert page.status_code == 200 and "demo" in page.text
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert f"{base}/metrics" in stdout
