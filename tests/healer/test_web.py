"""The auto-heal retry endpoint and status-page section, through the real daemon and HTTP."""

from __future__ import annotations

import threading

from simulator.connect.server import SimThread
from tests.support.daemon_harness import quick_config, running_daemon


async def test_retry_endpoint_releases_a_persistent_failure(sim: SimThread) -> None:
    sim.cluster.add_connector("orders", "sink", tasks_max=1)
    sim.cluster.fail_task("orders", 0, persistent=True)
    stop = threading.Event()

    def tick() -> None:  # restarts complete on the simulator's clock
        while not stop.wait(0.1):
            sim.cluster.tick()

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    autoheal = {"mode": "enforce", "grace_period": "200ms", "max_attempts": 1, "backoff": {"initial": "200ms"}}
    try:
        async with running_daemon(quick_config({"c": sim.urls}, autoheal=autoheal)) as ex:
            s = await ex.wait_for(
                lambda s: s.value("kafka_connect_autoheal_persistent_failures", connect_cluster="c") == 1.0,
                timeout=15,
                what="persistent failure",
            )
            assert s.value("kafka_connect_autoheal_persistent_failure", connector="orders", task="0") == 1.0
            page = (await ex.client.get(ex.base + "/")).text
            assert "<h2>Auto-heal</h2>" in page and "orders/0" in page

            bad = await ex.client.post(ex.base + "/-/autoheal/retry")
            assert bad.status_code == 400
            unknown = await ex.client.post(ex.base + "/-/autoheal/retry", params={"connect_cluster": "nope"})
            assert unknown.status_code == 404
            assert (await ex.client.get(ex.base + "/-/autoheal/retry")).status_code == 405
            cross_site = await ex.client.post(
                ex.base + "/-/autoheal/retry",
                params={"connect_cluster": "c"},
                headers={"Origin": "https://evil.example"},
            )
            assert cross_site.status_code == 403
            form = await ex.client.post(ex.base + "/-/autoheal/retry", params={"connect_cluster": "c"}, data={"x": "1"})
            assert form.status_code == 403
            after = await ex.scrape()  # every refused request above left the failure as it was
            assert after.value("kafka_connect_autoheal_persistent_failures", connect_cluster="c") == 1.0
            assert after.value("kafka_connect_autoheal_persistent_failure", connector="orders", task="0") == 1.0

            sim.cluster.set_persistent_fault("orders", 0, None)  # the operator fixed the cause
            r = await ex.client.post(
                ex.base + "/-/autoheal/retry", params={"connect_cluster": "c", "connector": "orders", "task": "0"}
            )
            assert r.status_code == 200 and r.json()["reset"] == 1
            s = await ex.wait_for(
                lambda s: s.current_state("kafka_connect_task_state", connector="orders", task="0") == "RUNNING",
                timeout=15,
                what="healed after retry",
            )
            assert s.value("kafka_connect_autoheal_persistent_failures", connect_cluster="c") == 0.0
    finally:
        stop.set()
        ticker.join(5)


async def test_a_name_connect_cannot_address_gets_one_request_a_count_and_a_page_note(sim: SimThread) -> None:
    name = "50% sample"
    sim.cluster.add_connector(name, "sink", tasks_max=1)
    sim.cluster.fail_task(name, 0, persistent=True)
    autoheal = {"mode": "enforce", "grace_period": "200ms", "backoff": {"initial": "200ms"}}
    async with running_daemon(quick_config({"c": sim.urls}, autoheal=autoheal)) as ex:
        outcome = {"connect_cluster": "c", "connector": name, "kind": "task", "outcome": "not_addressable"}
        await ex.wait_for(
            lambda s: s.value("kafka_connect_autoheal_restarts_total", **outcome) == 1.0,
            timeout=15,
            what="not_addressable outcome",
        )
        s = await ex.next_polls("c", 5)  # several more rounds: never sent again
        assert s.value("kafka_connect_autoheal_restarts_total", **outcome) == 1.0
        assert (
            s.value("kafka_connect_autoheal_suppressed_total", connect_cluster="c", reason="not_addressable") or 0
        ) >= 1
        page = (await ex.client.get(ex.base + "/")).text
        assert "not addressable over REST" in page and "50% sample/0" in page
    restarts = [r for r in sim.requests() if r.method == "POST" and r.path.endswith("/restart")]
    assert len(restarts) == 1 and "%25" in restarts[0].path
