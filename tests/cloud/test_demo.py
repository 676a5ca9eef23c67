"""The Confluent Cloud half of ``demo`` tells its story: a SYSTEM_ERROR connector healed, a USER_ACTIONABLE_ERROR one
left alone, a RUNNING sink with lag that receives nothing shown as stalled, late data counted. The real daemon
against the demo's own simulated Cloud, with shorter intervals and grace period than the demo's."""

from __future__ import annotations

from exporter.config import build_config
from exporter.features import HealerPlug
from simulator.cloud.demo import DEMO_NAME, demo_config, start_demo_cloud
from tests.support.daemon_harness import running_daemon
from tests.support.scrape import Scrape


def _health(s: Scrape, connector: str) -> str | None:
    samples = s.samples("kafka_connect_connector_health", connect_cluster=DEMO_NAME, connector=connector)
    return next((labels["health"] for labels, v in samples if v == 1), None)


async def test_the_demo_heals_a_managed_connector_and_shows_a_stalled_sink() -> None:
    sim, _scenario, url = await start_demo_cloud()
    sim.state.restart_delay = 0.5
    try:
        cloud = {**demo_config(url, interval=0.3), "metrics_interval": 0.5}
        cloud["autoheal"] = {**cloud["autoheal"], "grace_period": "1s"}
        config = build_config({"web": {"listen_address": "127.0.0.1:0"}, "confluent_cloud": cloud})
        async with running_daemon(config) as ex:
            s = await ex.wait_for(
                lambda s: (
                    s.value(
                        "kafka_connect_autoheal_restarts_total",
                        connect_cluster=DEMO_NAME,
                        connector="snowflake-sink",
                        kind="connector",
                        outcome="accepted",
                    )
                    == 1.0
                    and _health(s, "snowflake-sink") == "healthy"
                    and _health(s, "bigquery-sink") == "degraded"
                ),  # RUNNING, lag, nothing received: stalled
                timeout=60,
                what="snowflake-sink restarted and RUNNING again, bigquery-sink stalled",
            )
            assert s.value(
                "kafka_connect_sink_lag_records", connect_cluster=DEMO_NAME, connector="bigquery-sink", topic="clicks"
            )
            assert s.label_values("kafka_connect_autoheal_restarts_total", "connector") == {"snowflake-sink"}
            reading = ex.daemon.plug(HealerPlug).healer.reading().clusters[DEMO_NAME]  # type: ignore[union-attr]
            assert {(k.connector, rule) for k, rule in reading.skipped.items()} >= {("s3-archive", "user-actionable")}
    finally:
        await sim.stop()
