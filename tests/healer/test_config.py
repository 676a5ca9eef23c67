"""Auto-heal configuration: YAML, environment overrides and the quick-start flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.cli import build_parser, config_from_args
from exporter.config import load_config
from exporter.healer.config import default_worker_id
from exporter.settings import ConfigError


def test_yaml_off_is_off_and_every_default_is_documented(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("clusters:\n  - name: prod\n    urls: [http://w:8083]\n    autoheal:\n      mode: off\n")
    heal = load_config(path, environ={}).clusters[0].autoheal
    assert heal.mode == "off" and not heal.enabled
    doc = (Path(__file__).resolve().parents[2] / "docs" / "autoheal.md").read_text(encoding="utf-8")
    for key in ("grace_period", "max_attempts", "stable_period", "restarts_per_minute", "request_timeout"):
        assert f"  {key}:" in doc, key
    for key in type(heal.backoff).model_fields:
        assert f"    {key}:" in doc, key
    for key in type(heal.breaker).model_fields:
        assert f"    {key}:" in doc, key


def test_full_settings_and_environment_override(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "clusters:\n  - name: prod\n    urls: [http://w:8083]\n    autoheal:\n"
        "      mode: dry-run\n      scope: local-worker\n      grace_period: 90s\n"
        "      backoff: {initial: 1m, multiplier: 3, max: 2h}\n      breaker: {max_failed_share: 0.3}\n"
        "      deny: ['tmp-.*']\n"
    )
    heal = load_config(path, environ={"KCE_CLUSTERS__0__AUTOHEAL__MODE": "enforce"}).clusters[0].autoheal
    assert (heal.mode, heal.scope, heal.grace_period) == ("enforce", "local-worker", 90.0)
    assert (heal.backoff.initial, heal.backoff.multiplier, heal.backoff.max) == (60.0, 3.0, 7200.0)
    assert heal.breaker.max_failed_share == 0.3 and heal.deny == ["tmp-.*"]


def test_mistakes_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "clusters:\n  - name: prod\n    urls: [http://w:8083]\n    autoheal:\n"
        "      mode: on\n      grace_period: soon\n      max_attempts: 0\n      allow: ['(']\n      grace: 1m\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    text = str(err.value)
    for key in ("mode", "grace_period", "max_attempts", "allow", "grace"):
        assert f"clusters[0].autoheal.{key}:" in text, key


def test_quickstart_flags_apply_the_default_policy_to_connect_url_clusters() -> None:
    args = build_parser().parse_args(
        [
            "--connect.url",
            "http://a:8083",
            "--connect.url",
            "b=http://b:8083",
            "--autoheal.mode=dry-run",
            "--autoheal.grace-period=2m",
        ]
    )
    config = config_from_args(args, environ={})
    for cluster in config.clusters:
        assert cluster.autoheal.mode == "dry-run" and cluster.autoheal.grace_period == 120.0
        assert cluster.autoheal.max_attempts == 6  # everything else: the defaults


def test_quickstart_flags_without_connect_url_are_an_error() -> None:
    with pytest.raises(ConfigError, match=r"--connect\.url"):
        config_from_args(build_parser().parse_args(["--autoheal.mode=enforce"]), environ={})
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--autoheal.mode=on"])


@pytest.mark.parametrize(
    ("url", "worker_id"),
    [
        ("http://10.0.0.12:8083", "10.0.0.12:8083"),
        ("https://connect.example.com", "connect.example.com:443"),
        ("http://connect", "connect:80"),
        ("http://[::1]:8083", "[::1]:8083"),
    ],
)
def test_default_local_worker_id(url: str, worker_id: str) -> None:
    assert default_worker_id(url) == worker_id
