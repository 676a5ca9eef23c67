"""What the poller sends: requests per cycle, plugin cadence, auth and headers, as the simulator saw them."""

from __future__ import annotations

import base64

import pytest

from exporter.config import build_config
from simulator.connect.server import connect_in_thread
from simulator.connect.state import SimCluster
from tests.support.daemon_harness import quick_config, running_daemon


def config_for(urls: list[str], **opts: object) -> object:
    return build_config(
        {
            "web": {"listen_address": "127.0.0.1:0"},
            "clusters": [{"name": "c", "urls": urls, "poll_interval": 0.2, **opts}],
        }
    )


async def test_one_status_request_per_cycle_and_plugins_on_their_cadence() -> None:
    cluster = SimCluster(worker_count=3)
    for i in range(50):
        cluster.add_connector(f"conn-{i}", "sink" if i % 2 else "source", tasks_max=4)
    with connect_in_thread(cluster) as sim:
        async with running_daemon(quick_config({"c": sim.urls})) as ex:
            await ex.next_polls("c", 1)
            sim.clear_requests()
            before = ex.daemon.store.view.clusters["c"].stats.polls_ok
            await ex.next_polls("c", 5)
            polls = ex.daemon.store.view.clusters["c"].stats.polls_ok - before
            requests = sim.requests()
    status = [r for r in requests if r.path == "/connectors"]
    roots = [r for r in requests if r.path == "/"]
    health = [r for r in requests if r.path == "/health"]
    other = [r for r in requests if r.path not in ("/connectors", "/", "/health")]
    # Polls still in flight when the requests were read may add one of each.
    assert polls <= len(status) <= polls + 1
    assert polls * 3 <= len(roots) <= (polls + 1) * 3  # GET / on each of the 3 workers
    # The statuses name the same 3 workers: their probe reuses that GET / and adds one GET /health (3.9).
    assert polls * 3 <= len(health) <= (polls + 1) * 3
    assert sorted({r.worker for r in health}) == [0, 1, 2]
    assert other == []  # no per-connector requests, and plugins (10 min cadence) not again
    assert all(r.query == (("expand", "status"), ("expand", "info")) for r in status)
    # the status request sticks to the worker that answered last time
    assert len({r.worker for r in status}) == 1


async def test_plugins_are_refreshed_on_their_own_interval() -> None:
    cluster = SimCluster(worker_count=1)
    with connect_in_thread(cluster) as sim:
        async with running_daemon(config_for(sim.urls, plugins_interval=0.5)) as ex:
            await ex.next_polls("c", 12)
            plugin_requests = [r for r in sim.requests() if r.path == "/connector-plugins"]
    # 12+ polls of 0.2 s ≈ 2.4 s: about every third poll, never every poll
    assert 3 <= len(plugin_requests) <= 7


async def test_basic_auth_right_and_wrong_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECT_PW", "correct-horse-battery")
    cluster = SimCluster(worker_count=1)
    cluster.add_connector("a", "source")
    with connect_in_thread(cluster, credentials={"monitor": "correct-horse-battery"}) as sim:
        auth = {"basic": {"username": "monitor", "password_env": "CONNECT_PW"}}
        async with running_daemon(config_for(sim.urls, auth=auth)) as ex:
            s = await ex.wait_for(lambda s: s.value("kafka_connect_up", connect_cluster="c") == 1.0, what="up")
            assert s.current_state("kafka_connect_connector_state", connector="a") == "RUNNING"
        header = sim.requests()[-1].headers["Authorization"]
        assert base64.b64decode(header.split()[1]).decode() == "monitor:correct-horse-battery"

        monkeypatch.setenv("CONNECT_PW", "wrong-password-here")
        async with running_daemon(config_for(sim.urls, auth=auth)) as ex:
            s = await ex.next_polls("c", 2)
            assert s.value("kafka_connect_up", connect_cluster="c") == 0.0
            assert s.value("kafka_connect_worker_up", connect_cluster="c", worker=sim.urls[0]) == 0.0
            assert (
                s.value("kafka_connect_exporter_poll_errors_total", connect_cluster="c", reason="http_status") or 0
            ) > 0
            snap = ex.daemon.store.view.clusters["c"]
            assert any(e.status == 401 and "User cannot access the resource." in e.message for e in snap.errors)
            assert "wrong-password-here" not in s.text


async def test_bearer_token_and_extra_headers_are_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECT_TOKEN", "tok-abcdef-123456")
    cluster = SimCluster(worker_count=1)
    with connect_in_thread(cluster) as sim:
        cfg = config_for(sim.urls, auth={"bearer": {"token_env": "CONNECT_TOKEN"}}, headers={"X-Team": "platform"})
        async with running_daemon(cfg) as ex:
            await ex.next_polls("c", 1)
        headers = sim.requests()[0].headers
    assert headers["Authorization"] == "Bearer tok-abcdef-123456"
    assert headers["X-Team"] == "platform"
    assert headers["User-Agent"].startswith("kafka-connect-exporter/")
