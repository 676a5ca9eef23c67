"""Configuration: every kind of mistake gets its own test, a key path and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.config import load_config, masked_dump
from exporter.settings import ConfigError, parse_duration
from tests.support.processes import run_cli

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), environ=environ or {})
    return str(info.value)


def test_valid_file_with_defaults(tmp_path: Path) -> None:
    cfg = load_config(
        write(tmp_path, "clusters:\n  - name: prod\n    urls: [http://w1:8083, 'http://w2:8083/']\n"),
        environ={},
    )
    (c,) = cfg.clusters
    assert c.urls == ["http://w1:8083", "http://w2:8083"]
    assert (c.poll_interval, c.request_timeout, c.deadline) == (30.0, 10.0, 30.0)
    assert c.tls.insecure_skip_verify is False  # verification is on by default
    assert cfg.web.listen_address == ":9838"


def test_unknown_key_is_rejected_with_suggestion(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "clusters:\n  - name: a\n    urls: [http://a:1]\n    pol_interval: 5s\n")
    assert msg == "clusters[0].pol_interval: unknown key (did you mean 'poll_interval'?)"


def test_unknown_top_level_key(tmp_path: Path) -> None:
    assert error_of(tmp_path, "webb: {}\n").startswith("webb: unknown key")


def test_bad_duration(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "clusters:\n  - name: a\n    urls: [http://a:1]\n    poll_interval: 3x\n")
    assert msg.startswith("clusters[0].poll_interval: invalid duration '3x'")


def test_negative_duration(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "clusters:\n  - name: a\n    urls: [http://a:1]\n    request_timeout: -1\n")
    assert msg.startswith("clusters[0].request_timeout: duration must be positive")


def test_bad_url_scheme(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "clusters:\n  - name: a\n    urls: [ftp://a:1]\n")
    assert msg == "clusters[0].urls: 'ftp://a:1' is not an http:// or https:// URL"


def test_credentials_in_url_rejected(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "clusters:\n  - name: a\n    urls: ['http://user:hunter22@a:1']\n")
    assert "credentials in URLs are not allowed" in msg
    assert "hunter22" not in msg


def test_missing_urls(tmp_path: Path) -> None:
    assert error_of(tmp_path, "clusters:\n  - name: a\n") == "clusters[0].urls: Field required"


def test_duplicate_cluster_names(tmp_path: Path) -> None:
    text = "clusters:\n  - {name: a, urls: [http://a:1]}\n  - {name: a, urls: [http://b:1]}\n"
    assert error_of(tmp_path, text) == "clusters: cluster names must be unique; repeated: a"


def test_duplicate_yaml_key(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "web:\n  listen_address: ':1'\n  listen_address: ':2'\n")
    assert "config.yml:3:3: invalid YAML: duplicate key 'listen_address'" in msg


def test_invalid_yaml_points_at_line(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "clusters:\n  - name: a\n   urls: [\n")
    assert "config.yml:" in msg and "invalid YAML" in msg


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    assert "top level must be a mapping" in error_of(tmp_path, "- a\n- b\n")


def test_wrong_type(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "clusters:\n  - name: a\n    urls: [http://a:1]\n    fallback_concurrency: many\n")
    assert msg.startswith("clusters[0].fallback_concurrency: Input should be a valid integer")


def test_bad_listen_address(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "web: {listen_address: 'localhost'}\n")
    assert msg.startswith("web.listen_address: 'localhost' is not host:port")


def test_missing_password_env(tmp_path: Path) -> None:
    text = "clusters:\n  - name: a\n    urls: [http://a:1]\n    auth: {basic: {username: u, password_env: NOPE}}\n"
    assert error_of(tmp_path, text) == "clusters[0].auth.basic: password_env: environment variable NOPE is not set"


def test_two_auth_methods(tmp_path: Path) -> None:
    text = (
        "clusters:\n  - name: a\n    urls: [http://a:1]\n    auth:\n"
        "      basic: {username: u, password: p}\n      bearer: {token: t}\n"
    )
    assert error_of(tmp_path, text) == "clusters[0].auth: configure either basic or bearer auth, not both"


def test_missing_tls_file(tmp_path: Path) -> None:
    text = "clusters:\n  - name: a\n    urls: [https://a:1]\n    tls: {ca_file: /nonexistent/ca.pem}\n"
    assert "clusters[0].tls: ca_file: /nonexistent/ca.pem does not exist" in error_of(tmp_path, text)


def test_authorization_header_refused(tmp_path: Path) -> None:
    text = "clusters:\n  - name: a\n    urls: [http://a:1]\n    headers: {Authorization: 'Bearer x'}\n"
    assert "set Authorization through auth.basic or auth.bearer" in error_of(tmp_path, text)


def test_secret_from_file_env_and_masked_dump(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pw").write_text("s3cret-from-file\n")
    monkeypatch.setenv("TOK", "tok-value-123")
    text = (
        "clusters:\n  - name: a\n    urls: [http://a:1]\n"
        f"    auth: {{basic: {{username: u, password_file: {tmp_path / 'pw'}}}}}\n"
        "  - name: b\n    urls: [http://b:1]\n    auth: {bearer: {token_env: TOK}}\n"
    )
    cfg = load_config(write(tmp_path, text), environ={})
    basic, bearer = cfg.clusters[0].auth.basic, cfg.clusters[1].auth.bearer
    assert basic is not None and basic.password is not None
    assert basic.password.get_secret_value() == "s3cret-from-file"  # trailing newline of the file dropped
    assert bearer is not None and bearer.token is not None
    assert bearer.token.get_secret_value() == "tok-value-123"
    dump = masked_dump(cfg)
    assert "s3cret-from-file" not in dump and "tok-value-123" not in dump
    assert dump.count("********") == 2


def test_env_overrides_file_and_flags_override_env(tmp_path: Path) -> None:
    path = write(tmp_path, "web: {listen_address: ':1111'}\nclusters:\n  - {name: a, urls: [http://a:1]}\n")
    env = {"KCE_WEB__LISTEN_ADDRESS": ":2222", "KCE_CLUSTERS__0__URLS": "http://x:1,http://y:2"}
    cfg = load_config(path, environ=env)
    assert cfg.web.listen_address == ":2222"
    assert cfg.clusters[0].urls == ["http://x:1", "http://y:2"]
    cfg = load_config(path, environ=env, overrides={"web.listen_address": ":3333"})
    assert cfg.web.listen_address == ":3333"


def test_env_override_error_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"KCE_CLUSTERS__X__NAME: 'x' must be a list index"):
        load_config(None, environ={"KCE_CLUSTERS": "[]", "KCE_CLUSTERS__X__NAME": "a"})


def test_quickstart_urls_group_into_clusters() -> None:
    cfg = load_config(
        None,
        environ={},
        quickstart_urls=["http://a:1", "prod=http://b:2", "prod=http://c:3"],
        quickstart_interval=5.0,
    )
    assert [(c.name, c.urls, c.poll_interval) for c in cfg.clusters] == [
        ("default", ["http://a:1"], 5.0),
        ("prod", ["http://b:2", "http://c:3"], 5.0),
    ]


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30.0), ("1m30s", 90.0), ("500ms", 0.5), ("2h", 7200.0), (15, 15.0), ("1.5", 1.5)]
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_cli_config_error_exits_2_with_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "clusters:\n  - name: a\n    urls: [http://a:1]\n    pol_interval: 5s\n")
    result = run_cli("check-config", "--config.file", str(path))
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == "clusters[0].pol_interval: unknown key (did you mean 'poll_interval'?)"


def test_cli_check_config_masks_secrets(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "clusters:\n  - name: a\n    urls: [http://a:1]\n    auth: {basic: {username: u, password: inline-pw-42}}\n",
    )
    result = run_cli("check-config", "--config.file", str(path))
    assert result.returncode == 0
    assert "inline-pw-42" not in result.stdout + result.stderr
    assert "password: '********'" in result.stdout
    assert "clusters[0].auth.basic.password is written inline" in result.stderr


def test_cli_nothing_to_watch_exits_2() -> None:
    result = run_cli()
    assert result.returncode == 2
    assert "nothing to watch" in result.stderr


def test_cli_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = run_cli("--config.file", str(tmp_path / "nope.yml"))
    assert result.returncode == 2
    assert "nope.yml: cannot read" in result.stderr


def test_a_stray_environment_variable_is_named_in_the_error() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, environ={"KCE_CACHE_DIR": "/tmp/x"}, quickstart_urls=["http://a:1"])
    assert str(info.value) == "cache_dir: unknown key (set by environment variable KCE_CACHE_DIR)"


def test_the_repository_tooling_exports_no_kce_variables() -> None:
    # The Makefile's exported variables reach every exporter the tests start; a KCE_* one would be read as
    # a config override and stop the exporter (exit 2).
    for name in ("Makefile", "Dockerfile", "scripts/install-tools.sh"):
        text = (ROOT / name).read_text(encoding="utf-8")
        assert "KCE_" not in text.replace("KCE_WEB__", ""), name
