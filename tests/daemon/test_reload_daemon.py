"""Daemon.reload in process: what a reload swaps besides clusters (encoding, auto-heal switched on, a failing
loader), read through the real HTTP output."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from exporter.config import Config, MetricsConfig, build_config
from exporter.features import ConnectPlug
from exporter.settings import ConfigError
from simulator.cloud.server import cloud_in_thread
from simulator.cloud.state import CloudState
from simulator.connect.server import SimThread
from tests.support.daemon_harness import running_daemon

OK = "kafka_connect_exporter_config_last_reload_successful"


def config(sim: SimThread, **extra: object) -> Config:
    cluster = {"name": "prod", "urls": sim.urls, "poll_interval": 0.2, "cycle_timeout": 2.0, **extra}
    return build_config({"web": {"listen_address": "127.0.0.1:0"}, "clusters": [cluster]})


async def test_a_reload_switches_the_encoding_and_turns_auto_heal_on(sim: SimThread) -> None:
    sim.cluster.add_connector("orders-sink", "sink", tasks_max=2)
    sim.cluster.fail_connector("orders-sink", persistent=True)
    first = config(sim)
    nxt = config(sim, autoheal={"mode": "dry-run", "grace_period": "0.1s"})
    nxt = nxt.model_copy(update={"metrics": MetricsConfig(state_series="current")})
    async with running_daemon(first) as r:
        before = await r.wait_for(lambda s: bool(s.samples("kafka_connect_task_state")), what="task series")
        assert len(before.samples("kafka_connect_connector_state")) == 6  # every known state, 0 or 1
        assert not before.samples("kafka_connect_autoheal_mode")
        polls = before.value("kafka_connect_exporter_polls_total", connect_cluster="prod", result="success") or 0
        r.daemon.loader = lambda: nxt
        assert await r.daemon.reload()
        after = await r.wait_for(
            lambda s: (s.value("kafka_connect_autoheal_restarts_total", connector="orders-sink", kind="connector",
                               outcome="dry_run") or 0) >= 1,
            what="auto-heal switched on by the reload to decide",
        )  # fmt: skip
        assert [v for _, v in after.samples("kafka_connect_connector_state")] == [1.0]
        assert after.samples("kafka_connect_autoheal_mode") == [({"connect_cluster": "prod", "mode": "dry-run"}, 1.0)]
        assert not after.samples("kafka_connect_connector_tasks_by_state")
        # Only auto-heal changed for the cluster: its poller, and so its counters, stayed.
        assert (
            after.value("kafka_connect_exporter_polls_total", connect_cluster="prod", result="success") or 0
        ) > polls
        assert "Auto-heal" in (await r.client.get(r.base + "/")).text


async def test_a_failing_reload_keeps_the_old_configuration(sim: SimThread) -> None:
    def broken() -> Config:
        raise ConfigError("clusters[0].urls: not a URL")

    async with running_daemon(config(sim)) as r:
        await r.wait_for(lambda s: s.value("kafka_connect_up", connect_cluster="prod") == 1.0, what="a poll")
        r.daemon.loader = broken
        assert not await r.daemon.reload()
        scrape = await r.scrape()
        assert scrape.value(OK) == 0.0
        polls = scrape.value("kafka_connect_exporter_polls_total", connect_cluster="prod", result="success") or 0
        await r.wait_for(
            lambda s: (
                (s.value("kafka_connect_exporter_polls_total", connect_cluster="prod", result="success") or 0) > polls
            ),
            what="the old configuration to keep polling",
        )
        r.daemon.loader = lambda: config(sim)
        assert await r.daemon.reload()
        assert (await r.scrape()).value(OK) == 1.0


async def test_a_reload_removes_and_restores_confluent_cloud(sim: SimThread) -> None:
    state = CloudState(api_key="K0000000000000001", api_secret="reload-secret", latency=0.0)
    state.add_connector("env-r1", "lkc-r1", "orders-datagen", type="source", class_name="DatagenSource")
    with cloud_in_thread(state) as cloud:
        section = {
            "api_key": "K0000000000000001",
            "api_secret": "reload-secret",
            "api_url": cloud.url,
            "metrics_url": cloud.url,
            "environments": [{"id": "env-r1", "clusters": [{"id": "lkc-r1", "name": "managed"}]}],
            "status_interval": "1s",
            "metrics_interval": "1s",
            "max_retries": 0,
        }
        with_cloud = build_config(
            {**config(sim).model_dump(mode="json", exclude_none=True), "confluent_cloud": section}
        )
        async with running_daemon(with_cloud) as r:
            await r.wait_for(lambda s: s.value("kafka_connect_up", connect_cluster="managed") == 1.0, what="Cloud")
            r.daemon.loader = lambda: config(sim)
            assert await r.daemon.reload()
            gone = await r.scrape()
            assert gone.value("kafka_connect_up", connect_cluster="managed") is None
            assert not gone.samples("kafka_connect_cloud_api_up")
            assert gone.value("kafka_connect_up", connect_cluster="prod") == 1.0
            r.daemon.loader = lambda: with_cloud
            assert await r.daemon.reload()
            await r.wait_for(lambda s: s.value("kafka_connect_up", connect_cluster="managed") == 1.0, what="Cloud back")


async def test_a_reload_runs_the_checks_start_up_runs(sim: SimThread, tmp_path: Path) -> None:
    """Nothing to watch, or TLS material that does not load, fails the reload as it would fail a start."""
    bad_ca = tmp_path / "ca.pem"
    bad_ca.write_text("not a certificate\n")
    empty = build_config({"web": {"listen_address": "127.0.0.1:0"}})
    broken_tls = config(sim, tls={"ca_file": str(bad_ca)})
    async with running_daemon(config(sim)) as r:
        await r.wait_for(lambda s: s.value("kafka_connect_up", connect_cluster="prod") == 1.0, what="a poll")
        with capture_logs() as logs:
            for loaded in (empty, broken_tls):
                r.daemon.loader = lambda loaded=loaded: loaded  # type: ignore[misc]
                assert not await r.daemon.reload()
        assert (await r.scrape()).value(OK) == 0.0
        assert set(r.daemon.plug(ConnectPlug).pollers) == {"prod"}
    errors = [e["error"] for e in logs if e["event"] == "config_reload_failed"]
    assert errors[0].startswith("nothing to watch")
    assert errors[1].startswith("clusters[0].tls: cannot load the CA file or client certificate")
