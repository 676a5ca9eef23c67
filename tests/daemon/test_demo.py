"""``kafka-connect-exporter demo`` shows every capability: auto-heal (dry-run unless asked), a worker that stops
answering, sink lag and a sink that stops committing (its stall: tests/offsets/test_reader.py), Confluent Cloud
connectors."""

from __future__ import annotations

import signal

from exporter.demo import LOST_WORKER, WORKER_LOSS, WorkerLoss
from simulator.connect.server import SimConnectServer
from simulator.connect.state import SimCluster
from simulator.faults import FaultKind
from tests.support.processes import exporter_process, wait_scrape
from tests.support.scrape import Scrape


def _mode(scrape: Scrape, cluster: str) -> str | None:
    on = [
        labels["mode"] for labels, v in scrape.samples("kafka_connect_autoheal_mode", connect_cluster=cluster) if v == 1
    ]
    return on[0] if len(on) == 1 else None


def test_demo_heals_in_dry_run_by_default_and_shows_cloud_connectors() -> None:
    with exporter_process("demo", "--log.format", "json") as (proc, base):
        scrape = wait_scrape(
            base,
            lambda s: (
                _mode(s, "demo") == "dry-run"
                and len(s.label_values("kafka_connect_connector_state", "connector")) >= 10
                and s.value("kafka_connect_up", connect_cluster="ccloud-demo") == 1.0
                and (s.value("kafka_connect_sink_lag_records", connector="search-es-sink", topic="products") or 0) > 0
            ),
            timeout=60,
        )
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 0, stderr[-2000:]
    assert "auto-heal: dry-run" in stdout and "--autoheal.mode enforce" in stdout
    assert "stops answering for a minute every 4 minutes" in stdout
    assert "sink search-es-sink stops committing" in stdout
    assert scrape.value("kafka_connect_kafka_up", connect_cluster="demo") == 1.0
    cloud = {c for c in scrape.label_values("kafka_connect_connector_state", "connector")} & {
        "snowflake-sink",
        "s3-archive",
    }
    assert cloud == {"snowflake-sink", "s3-archive"}
    assert "Traceback" not in stdout + stderr


def test_demo_enforces_when_asked() -> None:
    with exporter_process("demo", "--autoheal.mode", "enforce", "--no-worker-loss") as (proc, base):
        wait_scrape(base, lambda s: _mode(s, "demo") == "enforce", timeout=60)
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert "auto-heal: enforce" in stdout and "stops answering" not in stdout


async def test_worker_loss_hangs_one_worker_for_a_stretch_of_every_cycle() -> None:
    first, back, cycle = WORKER_LOSS
    cluster = SimCluster(version="3.9.0", worker_count=3)
    async with SimConnectServer(cluster) as server:
        loss = WorkerLoss(server)
        hanging = []
        for _ in range(cycle + back):
            await loss.step()
            fault = server.fault(LOST_WORKER)
            hanging.append(fault is not None and fault.kind is FaultKind.HANG)
        assert [server.fault(w) for w in range(3) if w != LOST_WORKER] == [None, None]
    steps = [i + 1 for i, h in enumerate(hanging) if h]
    assert steps == [*range(first, back), *range(cycle + first, cycle + back)]
