"""The ``confluent_cloud`` config section, its secrets and the ``--ccloud.*`` quick-start flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.cli import build_parser, config_from_args
from exporter.cloud.config import CloudConfig, quickstart_overrides
from exporter.config import build_config, masked_dump
from exporter.settings import ConfigError

SECRET = "Zx9-cloud-secret-value"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONFLUENT_CLOUD_API_KEY", raising=False)
    monkeypatch.delenv("CONFLUENT_CLOUD_API_SECRET", raising=False)


def section(**extra: object) -> dict[str, object]:
    return {"environments": [{"id": "env-a1", "clusters": [{"id": "lkc-1"}]}], **extra}


def test_credentials_default_to_confluents_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFLUENT_CLOUD_API_KEY", "KEY123")
    monkeypatch.setenv("CONFLUENT_CLOUD_API_SECRET", SECRET)
    config = build_config({"confluent_cloud": section()})
    cc = config.confluent_cloud
    assert cc is not None
    assert cc.key().get_secret_value() == "KEY123" and cc.secret().get_secret_value() == SECRET
    assert config.inline_secret_paths() == []
    assert cc.clusters()[0].label == "lkc-1"  # connect_cluster defaults to the lkc id
    assert cc.metrics_delay == 240.0 and cc.max_requests_per_minute == 240
    dumped = masked_dump(config)
    assert SECRET not in dumped and "KEY123" not in dumped


def test_missing_credentials_is_a_clear_error() -> None:
    with pytest.raises(ConfigError) as err:
        build_config({"confluent_cloud": section()})
    assert "confluent_cloud: api_key_env: environment variable CONFLUENT_CLOUD_API_KEY is not set" in str(err.value)


def test_secret_from_a_file_and_inline_secret_warning(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    config = build_config({"confluent_cloud": section(api_key="K1", api_secret_file=str(secret_file))})
    assert config.confluent_cloud is not None and config.confluent_cloud.secret().get_secret_value() == SECRET
    assert config.inline_secret_paths() == []
    inline = build_config({"confluent_cloud": section(api_key="K1", api_secret=SECRET)})
    assert inline.inline_secret_paths() == ["confluent_cloud.api_secret"]
    assert SECRET not in repr(inline)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"environments": [{"id": "prod", "clusters": [{"id": "lkc-1"}]}]}, "'prod' is not an environment id"),
        ({"environments": [{"id": "env-1", "clusters": [{"id": "pkc-1"}]}]}, "is not a Kafka cluster id"),
        (
            {"environments": [{"id": "env-1", "clusters": [{"id": "lkc-1", "connector_ids": ["abc"]}]}]},
            "not connector ids (lcc-…): 'abc'",
        ),
        ({"metrics": ["sent_records", "bogus"]}, "unknown metric(s) bogus"),
        ({"max_requests_per_minute": 400}, "less than or equal to 300"),
        ({"api_url": "ftp://x"}, "is not an http:// or https:// URL"),
        ({"metrics_url": "https://k:s@api.telemetry.confluent.cloud"}, "credentials in URLs are not allowed"),
        ({"max_backfill": "8d"}, "at most 7d"),
        ({"status_interval": "0s"}, "duration must be positive"),
        ({"enviroments": []}, "unknown key (did you mean 'environments'?)"),
    ],
)
def test_mistakes_name_the_key(patch: dict[str, object], message: str) -> None:
    raw = {**section(api_key="K", api_secret_file="/dev/null"), **patch}
    raw["api_secret"] = "x"
    raw.pop("api_secret_file")
    with pytest.raises(ConfigError) as err:
        build_config({"confluent_cloud": raw})
    assert message in str(err.value)
    assert str(err.value).startswith("confluent_cloud")


def test_cluster_names_must_not_clash_with_self_managed_clusters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFLUENT_CLOUD_API_KEY", "K")
    monkeypatch.setenv("CONFLUENT_CLOUD_API_SECRET", SECRET)
    raw = {
        "clusters": [{"name": "prod", "urls": ["http://w1:8083"]}],
        "confluent_cloud": {"environments": [{"id": "env-1", "clusters": [{"id": "lkc-1", "name": "prod"}]}]},
    }
    with pytest.raises(ConfigError) as err:
        build_config(raw)
    assert "cluster name(s) also used by clusters: prod" in str(err.value)


def test_metric_names_accept_the_full_api_name() -> None:
    cc = CloudConfig.model_validate(
        section(api_key="K", api_secret="S", metrics=["io.confluent.kafka.connect/sent_records", "sent_bytes"])
    )
    assert cc.metrics == ["sent_records", "sent_bytes"]


def test_quickstart_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFLUENT_CLOUD_API_KEY", "K")
    monkeypatch.setenv("CONFLUENT_CLOUD_API_SECRET", SECRET)
    args = build_parser().parse_args(
        [
            "--ccloud.environment",
            "env-q1",
            "--ccloud.cluster",
            "prod=lkc-p1",
            "--ccloud.cluster",
            "lkc-p2",
            "--ccloud.api-url",
            "http://127.0.0.1:1",
            "--ccloud.metrics-url",
            "http://127.0.0.1:2",
        ]
    )
    config = config_from_args(args, environ={})
    cc = config.confluent_cloud
    assert cc is not None
    assert [(e, c.id, c.label) for e, c in cc.cluster_envs()] == [
        ("env-q1", "lkc-p1", "prod"),
        ("env-q1", "lkc-p2", "lkc-p2"),
    ]
    assert (cc.api_url, cc.metrics_url) == ("http://127.0.0.1:1", "http://127.0.0.1:2")
    with pytest.raises(ConfigError, match=r"--ccloud\.cluster needs --ccloud\.environment"):
        config_from_args(build_parser().parse_args(["--ccloud.cluster", "lkc-1"]), environ={})
    with pytest.raises(ValueError, match=r"needs at least one --ccloud\.cluster"):
        quickstart_overrides("env-1", [])


def test_environment_overrides_reach_the_section(monkeypatch: pytest.MonkeyPatch) -> None:
    from exporter.config import load_config

    monkeypatch.setenv("CONFLUENT_CLOUD_API_KEY", "K")
    monkeypatch.setenv("CONFLUENT_CLOUD_API_SECRET", SECRET)
    config = load_config(
        None,
        environ={
            "KCE_CONFLUENT_CLOUD__ENVIRONMENTS__0__ID": "env-e1",
            "KCE_CONFLUENT_CLOUD__ENVIRONMENTS__0__CLUSTERS__0__ID": "lkc-e1",
            "KCE_CONFLUENT_CLOUD__METRICS_INTERVAL": "2m",
            "KCE_CONFLUENT_CLOUD__DISCOVER_METRICS": "true",
        },
    )
    assert config.confluent_cloud is not None
    assert config.confluent_cloud.metrics_interval == 120.0 and config.confluent_cloud.discover_metrics is True


def test_autoheal_has_the_self_managed_keys_and_a_user_actionable_skip_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFLUENT_CLOUD_API_KEY", "KEY123")
    monkeypatch.setenv("CONFLUENT_CLOUD_API_SECRET", SECRET)
    off = build_config({"confluent_cloud": section()}).confluent_cloud
    assert off is not None and off.autoheal.mode == "off"
    heal = {"mode": "enforce", "grace_period": "2m", "backoff": {"initial": "1m"}, "deny": ["tmp-.*"]}
    cc = build_config({"confluent_cloud": section(autoheal=heal)}).confluent_cloud
    assert cc is not None
    assert (cc.autoheal.mode, cc.autoheal.grace_period, cc.autoheal.backoff.initial) == ("enforce", 120.0, 60.0)
    assert cc.autoheal.skip[0].name == "user-actionable"
    assert cc.autoheal.max_attempts == 6  # the self-managed default
    replaced = build_config({"confluent_cloud": section(autoheal={"mode": "dry-run", "skip": []})}).confluent_cloud
    assert replaced is not None and replaced.autoheal.skip == []
    with pytest.raises(ConfigError, match="scope must be cluster"):
        build_config({"confluent_cloud": section(autoheal={"mode": "enforce", "scope": "local-worker"})})


def test_ccloud_autoheal_mode_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFLUENT_CLOUD_API_KEY", "KEY123")
    monkeypatch.setenv("CONFLUENT_CLOUD_API_SECRET", SECRET)
    args = build_parser().parse_args(
        ["--ccloud.environment", "env-a1", "--ccloud.cluster", "lkc-1", "--ccloud.autoheal.mode", "dry-run"]
    )
    cc = config_from_args(args, environ={}).confluent_cloud
    assert cc is not None and cc.autoheal.mode == "dry-run"
    with pytest.raises(ValueError, match=r"needs --ccloud\.environment"):
        quickstart_overrides(None, None, autoheal_mode="enforce")
