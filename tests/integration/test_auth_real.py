"""The exporter against a real worker behind BasicAuthSecurityRestExtension (JAAS PropertyFileLoginModule).

One exporter process polls the same worker as three clusters: with the right credentials, with a wrong
password, and with none. Its JSON log runs at debug level, so anything it might leak would be written.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .cli_exporter import exporter, task_states, wait_scrape
from .kafka.harness import ConnectCluster, KafkaEnvironment
from .kafka.rest import FILE_SOURCE, ConnectRest, wait_until

pytestmark = pytest.mark.integration

UNAUTHORIZED = "HTTP 401: User cannot access the resource."


@pytest.fixture
def auth_rest(auth_connect: ConnectCluster) -> Iterator[ConnectRest]:
    """Client with the right credentials; connectors made in a test are deleted after it."""
    with auth_connect.rest(0) as rest:
        yield rest
        for name in rest.connectors():
            rest.delete(name)
        wait_until(lambda: rest.connectors() == [], timeout=60, what="auth cluster connectors deleted")


def _secret_forms(user: str, password: str) -> list[str]:
    pair = f"{user}:{password}".encode()
    return [password, base64.b64encode(pair).decode(), base64.b64encode(password.encode()).decode()]


def test_basic_auth_right_wrong_and_missing_credentials(
    kafka_env: KafkaEnvironment, auth_connect: ConnectCluster, auth_rest: ConnectRest, tmp_path: Path
) -> None:
    assert auth_connect.basic_auth is not None
    user, password = auth_connect.basic_auth.user, auth_connect.basic_auth.password
    wrong = "wrong-" + password[::-1]
    source = tmp_path / "in.txt"
    source.write_text("x\n", encoding="utf-8")
    auth_rest.create_connector(
        "e-source", {"connector.class": FILE_SOURCE, "file": str(source), "topic": "e-lines", "tasks.max": "1"}
    )
    st = auth_rest.wait_for_state("e-source", "RUNNING", task_state="RUNNING", tasks=1)

    right_file, wrong_file = tmp_path / "right.pw", tmp_path / "wrong.pw"
    right_file.write_text(password + "\n", encoding="utf-8")
    wrong_file.write_text(wrong + "\n", encoding="utf-8")
    url = auth_connect.url
    config = {
        "clusters": [
            {"name": "right", "urls": [url], "poll_interval": "1s",
             "auth": {"basic": {"username": user, "password_file": str(right_file)}}},
            {"name": "wrong", "urls": [url], "poll_interval": "1s",
             "auth": {"basic": {"username": user, "password_file": str(wrong_file)}}},
            {"name": "anonymous", "urls": [url], "poll_interval": "1s"},
        ]
    }  # fmt: skip
    cfg = tmp_path / "exporter.yml"
    cfg.write_text(yaml.safe_dump(config), encoding="utf-8")

    with exporter(tmp_path / "exporter.log", config=cfg, extra=["--log.level", "debug"]) as ex:
        s = wait_scrape(
            ex,
            lambda s: (
                s.value("kafka_connect_up", connect_cluster="right") == 1.0
                and s.current_state("kafka_connect_connector_state", connect_cluster="right", connector="e-source")
                == "RUNNING"
                and all(
                    (s.value("kafka_connect_exporter_polls_total", connect_cluster=c, result="failure") or 0) >= 2
                    for c in ("wrong", "anonymous")
                )
            ),
            "the right cluster up with its connector, two failed polls of the others",
        )
        page = ex.page()

    # Right credentials: everything is seen.
    assert s.value("kafka_connect_worker_up", connect_cluster="right", worker=url) == 1.0
    [(info, _)] = s.samples("kafka_connect_worker_info", connect_cluster="right")
    assert info["version"] == kafka_env.version
    [(cinfo, _)] = s.samples("kafka_connect_connector_info", connect_cluster="right", connector="e-source")
    assert (cinfo["connector_type"], cinfo["connector_class"]) == ("source", FILE_SOURCE)
    assert cinfo["worker_id"] == st["connector"]["worker_id"] == auth_connect.worker_ids[0]
    assert {lbl["connect_cluster"] for lbl, _ in s.samples("kafka_connect_task_state")} == {"right"}
    assert task_states(s, "e-source") == {"0": ("RUNNING", auth_connect.worker_ids[0])}
    assert any(lbl["plugin_class"] == FILE_SOURCE for lbl, _ in s.samples("kafka_connect_plugin_info"))

    # Wrong or missing credentials: up 0, the worker counted down, nothing else about the cluster.
    for cluster in ("wrong", "anonymous"):
        assert s.value("kafka_connect_up", connect_cluster=cluster) == 0.0
        assert s.value("kafka_connect_worker_up", connect_cluster=cluster, worker=url) == 0.0
        assert s.samples("kafka_connect_worker_info", connect_cluster=cluster) == []
        assert s.samples("kafka_connect_connector_state", connect_cluster=cluster) == []
        errors = s.value("kafka_connect_exporter_poll_errors_total", connect_cluster=cluster, reason="http_status")
        assert errors is not None and errors >= 2
    assert s.value("kafka_connect_exporter_polls_total", connect_cluster="right", result="failure") == 0.0

    # The reason is logged with the worker's own words, once per cluster and worker while it repeats (every
    # request to it fails alike: the rest is counted in kafka_connect_exporter_warnings_total).
    failed = [e for e in ex.events() if e.get("event") == "poll_failed"]
    assert sorted(e["cluster"] for e in failed) == ["anonymous", "wrong"]
    assert all(e["status"] == 401 and e["error"] == UNAUTHORIZED and e["reason"] == "http_status" for e in failed)
    assert {e["url"] for e in failed} <= {url + "/", url + "/connectors"}
    warned = s.value("kafka_connect_exporter_warnings_total", event="poll_failed")
    assert warned is not None and warned >= 2
    assert page.count(UNAUTHORIZED) >= 2

    # No form of either password anywhere: log (debug), exposition, status page.
    log = ex.log_text()
    for secret in _secret_forms(user, password) + _secret_forms(user, wrong):
        for where, text in (("log", log), ("metrics", s.text), ("page", page)):
            assert secret not in text, f"a password form appears in the {where}"
