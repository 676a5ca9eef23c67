"""No secret ever leaves the process: every secret the exporter can hold is configured, the exporter runs
as a real process at debug level against simulated Connect and Confluent Cloud (some requests refused),
and every log line, every HTTP response, the landing page, ``check-config`` output and configuration
error messages are searched for each secret (and for the base64 form that basic auth sends)."""

from __future__ import annotations

import base64
import gzip
import json
import signal
from pathlib import Path
from typing import Any

import httpx
import yaml

from simulator.cloud.server import cloud_in_thread
from simulator.cloud.state import CloudState
from simulator.connect.server import connect_in_thread
from simulator.connect.state import SimCluster
from tests.support.pki import CA, bcrypt_hash
from tests.support.processes import free_port, run_cli, start_exporter
from tests.support.scrape import parse_exposition
from tests.support.waiting import eventually

BASIC_PW = "Zq9-basic-pw-8841"
WRONG_PW = "Xw7-wrong-pw-5512"  # configured for a cluster whose workers refuse it (401s are logged)
BEARER = "tok-Bearer-77aa91c"
KEY_PASS = "kp-Passphrase-3391"
CLOUD_KEY = "CKEY4455667788AB"
CLOUD_SECRET = "cs-CloudSecret-6620"
WEB_PW = "wp-WebPassw0rd-1199"
WEB_WRONG = "wp-Wrong-0001x"  # sent by a client, must not be echoed either
SECRETS = [BASIC_PW, WRONG_PW, BEARER, KEY_PASS, CLOUD_KEY, CLOUD_SECRET, WEB_PW, WEB_WRONG]


def forms(secret: str) -> list[str]:
    out = [secret]
    for user in ("exporter", "prometheus", CLOUD_KEY):
        out.append(base64.b64encode(f"{user}:{secret}".encode()).decode())
    return out


def assert_clean(what: str, text: str) -> None:
    for secret in SECRETS:
        for form in forms(secret):
            assert form not in text, f"{what} contains secret {secret!r} (as {form!r})"


def test_no_secret_in_logs_responses_pages_or_errors(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    client = ca.issue("client", server=False, passphrase=KEY_PASS)
    token_file = tmp_path / "token"
    token_file.write_text(BEARER + "\n", encoding="utf-8")
    web = tmp_path / "web.yml"
    web.write_text(
        yaml.safe_dump({"basic_auth_users": {"prometheus": bcrypt_hash(WEB_PW, rounds=4)}}), encoding="utf-8"
    )
    env = {
        "SECRETS_TEST_BASIC_PW": BASIC_PW,
        "SECRETS_TEST_KEY_PASS": KEY_PASS,
        "SECRETS_TEST_CLOUD_SECRET": CLOUD_SECRET,
    }

    secured = SimCluster(worker_count=1)
    secured.add_connector("orders", "sink", tasks_max=2)
    secured.fail_task("orders", 1)
    open_cluster = SimCluster(worker_count=1)
    open_cluster.add_connector("events", "source")
    state = CloudState(api_key=CLOUD_KEY, api_secret=CLOUD_SECRET)
    state.add_cluster("env-abc123", "lkc-abc123")

    with (
        connect_in_thread(secured, credentials={"exporter": BASIC_PW}) as sec,
        connect_in_thread(open_cluster) as opn,
        cloud_in_thread(state) as cloud,
    ):
        config = {
            "clusters": [
                {
                    "name": "basic",
                    "urls": sec.urls,
                    "poll_interval": "0.3s",
                    "auth": {"basic": {"username": "exporter", "password_env": "SECRETS_TEST_BASIC_PW"}},
                    "autoheal": {"mode": "dry-run", "grace_period": "0.3s"},
                },
                {
                    "name": "refused",
                    "urls": sec.urls,
                    "poll_interval": "0.3s",
                    "auth": {"basic": {"username": "exporter", "password": WRONG_PW}},  # inline: warned about
                },
                {
                    "name": "bearer",
                    "urls": opn.urls,
                    "poll_interval": "0.3s",
                    "auth": {"bearer": {"token_file": str(token_file)}},
                    "tls": {
                        "cert_file": str(client.cert),
                        "key_file": str(client.key),
                        "key_password_env": "SECRETS_TEST_KEY_PASS",
                    },
                },
            ],
            "confluent_cloud": {
                "api_key": CLOUD_KEY,
                "api_secret_env": "SECRETS_TEST_CLOUD_SECRET",
                "api_url": cloud.url,
                "metrics_url": cloud.url,
                "status_interval": "1s",
                "metrics_interval": "1s",
                "environments": [{"id": "env-abc123", "clusters": [{"id": "lkc-abc123", "name": "managed"}]}],
            },
        }
        config_path = tmp_path / "config.yml"
        config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
        common = ["--config.file", str(config_path), "--web.config.file", str(web), "--log.level", "debug"]

        collected: list[tuple[str, str]] = []
        checked = run_cli("check-config", *common, env=env)
        assert checked.returncode == 0, checked.stderr
        assert "********" in checked.stdout and "inline" in checked.stderr
        collected += [("check-config stdout", checked.stdout), ("check-config stderr", checked.stderr)]

        port = free_port()
        log_path = tmp_path / "exporter.log"
        proc = start_exporter(*common, "--web.listen-address", f"127.0.0.1:{port}", env=env, log_path=log_path)
        base = f"http://127.0.0.1:{port}"
        try:
            collected += exercise(base)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
        log_text = log_path.read_text(encoding="utf-8")
        collected.append(("exporter log", log_text))

    # The run did what it should, so the absence of secrets means something.
    events = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]
    kinds = {e.get("event") for e in events}
    levels = {e.get("level") for e in events}
    assert "debug" in levels, "debug logging was not on"
    assert any(e.get("event") == "poll_failed" and e.get("status") == 401 for e in events), "no 401 was logged"
    assert "inline_secret" in kinds and "started" in kinds and "stopped" in kinds

    collected += config_error_messages(tmp_path, sec_url="http://127.0.0.1:1")
    for what, text in collected:
        assert_clean(what, text)


def exercise(base: str) -> list[tuple[str, str]]:
    """Every endpoint, with good, bad and no credentials; returns (what, text) of each response."""
    out: list[tuple[str, str]] = []
    auth = ("prometheus", WEB_PW)
    sources = ("basic", "refused", "bearer", "managed")

    def polls() -> dict[str, float] | None:
        s = parse_exposition(httpx.get(base + "/metrics", auth=auth, timeout=5).text)
        done = {
            n: sum(v for _, v in s.samples("kafka_connect_exporter_polls_total", connect_cluster=n)) for n in sources
        }
        return done if all(done.values()) and "kafka_connect_cloud" in s.text else None

    first = eventually(polls, what="a poll of every source", ignore=(httpx.TransportError,))
    # Two more cycles of every source: healer rounds, cloud metrics queries, retries.
    eventually(
        lambda: all(now >= first[n] + 2 for n, now in (polls() or {}).items()) or None,
        what="two more polls of every source",
    )
    with httpx.Client(timeout=5) as c:
        for method, path, kwargs in [
            ("GET", "/metrics", {"auth": auth}),
            ("GET", "/metrics", {"auth": auth, "headers": {"Accept": "application/openmetrics-text; version=1.0.0"}}),
            ("GET", "/", {"auth": auth}),
            ("GET", "/healthz", {"auth": auth}),
            ("GET", "/readyz", {"auth": auth}),
            ("GET", "/nope", {"auth": auth}),
            ("POST", "/metrics", {"auth": auth}),
            ("POST", "/-/autoheal/retry", {"auth": auth}),
            ("GET", "/metrics", {"auth": ("prometheus", WEB_WRONG)}),
            ("GET", "/", {}),
            ("GET", "/metrics", {"headers": {"Authorization": "Basic " + base64.b64encode(b"x").decode()}}),
        ]:
            r = c.request(method, base + path, **kwargs)
            out.append((f"{method} {path} {r.status_code}", _response_text(r)))
        gz = c.get(base + "/metrics", auth=auth, headers={"Accept-Encoding": "gzip"})
        out.append(("gzip /metrics", gz.text))
    return out


def _response_text(r: httpx.Response) -> str:
    headers = "\n".join(f"{k}: {v}" for k, v in r.headers.items())
    body = r.content
    if r.headers.get("content-encoding") == "gzip" and body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    return headers + "\n\n" + body.decode("utf-8", "replace")


def config_error_messages(tmp_path: Path, sec_url: str) -> list[tuple[str, str]]:
    """Configuration mistakes that put a secret where it does not belong: the error must not repeat it."""
    bad: list[dict[str, Any]] = [
        {"clusters": [{"name": "a", "urls": [f"http://exporter:{BASIC_PW}@127.0.0.1:8083"]}]},
        {"clusters": [{"name": "a", "urls": [sec_url], "headers": {"Authorization": f"Bearer {BEARER}"}}]},
        {"clusters": [{"name": "a", "urls": [sec_url], "headers": {"X-Token": f"{BEARER}\nInjected: 1"}}]},
        {"clusters": [{"name": "a", "urls": [sec_url], "auth": {"basic": {"username": "u", "pasword": BASIC_PW}}}]},
        {"clusters": [{"name": "a", "urls": [sec_url], "auth": {"bearer": {"token": BEARER, "token_env": "X"}}}]},
        {"clusters": [{"name": "a", "urls": [sec_url], "tls": {"key_password": KEY_PASS}}]},
        {"clusters": [{"name": "a", "urls": [f"exporter:{BASIC_PW}@127.0.0.1:8083"]}]},  # scheme forgotten
        {"confluent_cloud": {"api_key": CLOUD_KEY, "api_secret": CLOUD_SECRET, "api_url": f"k:{CLOUD_SECRET}@x"}},
        {"confluent_cloud": {"api_key": CLOUD_KEY, "api_secret": CLOUD_SECRET, "environments": [{"id": "bad"}]}},
        {
            "confluent_cloud": {
                "api_key": CLOUD_KEY,
                "api_secret": CLOUD_SECRET,
                "api_url": f"https://k:{CLOUD_SECRET}@x",
            }
        },
    ]
    out = []
    for i, data in enumerate(bad):
        path = tmp_path / f"bad{i}.yml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        result = run_cli("check-config", "--config.file", str(path))
        # A key_password without a key is useless but harmless: printed masked rather than refused.
        assert result.returncode == (0 if "tls" in str(data) else 2), (data, result.stdout, result.stderr)
        out.append((f"config error {i}", result.stdout + result.stderr))
    web = tmp_path / "badweb.yml"
    web.write_text(yaml.safe_dump({"basic_auth_users": {"prometheus": WEB_PW}}), encoding="utf-8")
    result = run_cli("check-config", "--connect.url", sec_url, "--web.config.file", str(web))
    assert result.returncode == 2
    out.append(("web config error", result.stdout + result.stderr))
    return out
