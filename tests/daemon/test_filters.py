"""Per-cluster include/exclude filters and task_metrics, through the real daemon: a filtered connector is neither
exported, shown on the status page nor healed; ``task_metrics: false`` drops the task series only."""

from __future__ import annotations

from exporter.config import MetricsConfig
from simulator.connect.server import SimThread
from tests.support.daemon_harness import quick_config, running_daemon


async def test_filtered_connectors_are_not_exported_shown_or_healed(sim: SimThread) -> None:
    c = sim.cluster
    for name in ("orders-sink", "orders-test", "billing-sink"):
        c.add_connector(name, "sink", tasks_max=2)
        c.fail_connector(name, persistent=True)
    config = quick_config(
        {"prod": sim.urls},
        include=["orders-.*"],
        exclude=[".*-test"],
        task_metrics=False,
        autoheal={"mode": "dry-run", "grace_period": "0.1s"},
    )
    async with running_daemon(config) as r:
        scrape = await r.wait_for(
            lambda s: (
                (
                    s.value(
                        "kafka_connect_autoheal_restarts_total",
                        connector="orders-sink",
                        kind="connector",
                        outcome="dry_run",
                    )
                    or 0
                )
                >= 1
            ),
            what="the healer to decide on the watched connector",
        )
        assert scrape.label_values("kafka_connect_connector_state", "connector") == {"orders-sink"}
        assert {lbl["connector"] for lbl, _ in scrape.samples("kafka_connect_autoheal_restarts_total")} == {
            "orders-sink"
        }
        assert not scrape.samples("kafka_connect_task_state")  # task_metrics: false
        assert scrape.value("kafka_connect_connector_tasks", connector="orders-sink") == 2.0
        assert scrape.value("kafka_connect_connector_tasks_by_state", connector="orders-sink", state="RUNNING") == 2.0
        page = (await r.client.get(r.base + "/")).text
        assert "orders-sink" in page and "orders-test" not in page and "billing-sink" not in page


async def test_current_mode_through_the_daemon(sim: SimThread) -> None:
    sim.cluster.add_connector("orders-sink", "sink", tasks_max=2)
    config = quick_config({"prod": sim.urls})
    config = config.model_copy(update={"metrics": MetricsConfig(state_series="current")})
    async with running_daemon(config) as r:
        scrape = await r.wait_for(lambda s: bool(s.samples("kafka_connect_task_state")), what="task series")
        assert [v for _, v in scrape.samples("kafka_connect_connector_state")] == [1.0]
        assert [v for _, v in scrape.samples("kafka_connect_task_state")] == [1.0, 1.0]
        assert not scrape.samples("kafka_connect_connector_tasks")
        assert not scrape.samples("kafka_connect_connector_tasks_by_state")
