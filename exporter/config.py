"""Configuration: a YAML file, environment overrides and quick-start flags, validated into frozen models.

This module composes the sections each feature owns: a ``clusters[]`` entry is ``ClusterConfig``, Connect's part
(``exporter.connect.config``) with the offsets part (``exporter.offsets.config``) and the auto-heal part
(``exporter.healer.config``); ``confluent_cloud`` is ``ConfluentCloudConfig``, ``exporter.cloud.config`` with the
managed auto-heal part (``exporter.healer.config``); ``web`` and ``log`` are here. Features never import each
other's config; the value types they share live in ``exporter.settings``.

Precedence, lowest first: built-in defaults, the YAML file (``--config.file``), ``KCE_*`` environment
variables, command-line flags. Every mistake is reported as ``<key path>: <what is wrong>`` and the
process exits with code 2 (see ``exporter.cli``). Secrets are resolved once at load time into
``SecretStr`` values, which never print.

Environment overrides address any key with ``KCE_`` and ``__`` between path parts, list items by index:
``KCE_WEB__LISTEN_ADDRESS=:9900``, ``KCE_CLUSTERS__0__URLS=http://a:8083,http://b:8083``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from exporter.budget import SeriesBudget, StateSeries
from exporter.cloud.config import CloudConfig
from exporter.connect.config import ConnectClusterConfig
from exporter.healer.config import AutohealSettings, ManagedAutohealSettings
from exporter.offsets.config import OffsetsSettings
from exporter.settings import ConfigError, StrictModel, format_validation_error, read_yaml
from exporter.sourcetopics.config import SourceTopicsSettings

ENV_PREFIX = "KCE_"
DEFAULT_LISTEN_ADDRESS = ":9838"
QUICKSTART_CLUSTER = "default"


class ClusterConfig(AutohealSettings, SourceTopicsSettings, OffsetsSettings, ConnectClusterConfig):
    """One ``clusters[]`` entry: the Connect cluster's keys, then the offsets keys, then ``autoheal``."""


class ConfluentCloudConfig(ManagedAutohealSettings, CloudConfig):
    """The ``confluent_cloud`` section: the Cloud source's keys, then ``autoheal`` for its managed connectors."""


class WebConfig(StrictModel):
    listen_address: str = DEFAULT_LISTEN_ADDRESS
    telemetry_path: str = "/metrics"
    # exporter-toolkit web config (TLS, basic auth, headers); see exporter.web_security and docs/security.md.
    config_file: Path | None = None
    # Serve /healthz without basic auth, for probes that cannot send credentials.
    open_healthz: bool = False
    # Serve POST /-/reload (re-read the configuration), as Prometheus' --web.enable-lifecycle.
    enable_lifecycle: bool = False

    @field_validator("config_file")
    @classmethod
    def _config_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} does not exist or is not a file")
        return value

    @field_validator("listen_address")
    @classmethod
    def _addr(cls, value: str) -> str:
        split_host_port(value)
        return value

    @field_validator("telemetry_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or value in {"/", "/healthz", "/readyz"}:
            raise ValueError("must start with / and not be /, /healthz or /readyz")
        return value


class LogConfig(StrictModel):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"


class MetricsConfig(StrictModel):
    # all: every known state as a 0/1 series (the default). current: only the current state's series, and no
    # families a query derives from the task series (docs/metrics.md, "Series budget").
    state_series: StateSeries = "all"


class ShardingConfig(StrictModel):
    # This replica watches the clusters[] whose name hashes to ``shard`` of ``shards`` (docs/sharding.md), so
    # replicas sharing one file split the clusters and each cluster is polled and auto-healed exactly once.
    shards: int = Field(default=1, ge=1, le=1024)
    shard: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _in_range(self) -> Self:
        if self.shard >= self.shards:
            raise ValueError(f"shard must be below shards ({self.shards}); shards are numbered from 0")
        return self

    @property
    def enabled(self) -> bool:
        return self.shards > 1

    def owns(self, cluster: str) -> bool:
        return shard_of(cluster, self.shards) == self.shard


def shard_of(cluster: str, shards: int) -> int:
    """The shard a cluster name belongs to: stable across processes, versions and machines (not ``hash()``,
    which Python salts per process)."""
    return int.from_bytes(hashlib.sha256(cluster.encode()).digest()[:8], "big") % shards


class Config(StrictModel):
    web: WebConfig = WebConfig()
    log: LogConfig = LogConfig()
    metrics: MetricsConfig = MetricsConfig()
    sharding: ShardingConfig = ShardingConfig()
    clusters: list[ClusterConfig] = []
    confluent_cloud: ConfluentCloudConfig | None = None

    @model_validator(mode="after")
    def _distinct_cloud_names(self) -> Self:
        # Snapshots are keyed by cluster name: a managed cluster must not shadow a self-managed one.
        if self.confluent_cloud is not None:
            clash = sorted({c.name for c in self.clusters} & {c.label for c in self.confluent_cloud.clusters()})
            if clash:
                raise ValueError(f"confluent_cloud: cluster name(s) also used by clusters: {', '.join(clash)}")
        return self

    @model_validator(mode="after")
    def _own_shard(self) -> Self:
        # Names are checked for clashes across all shards first (above); then this replica keeps its own.
        # Confluent Cloud is one organisation-wide source: shard 0 watches it.
        if self.sharding.enabled:
            object.__setattr__(self, "clusters", [c for c in self.clusters if self.sharding.owns(c.name)])
            if self.sharding.shard != 0:
                object.__setattr__(self, "confluent_cloud", None)
        return self

    @field_validator("clusters")
    @classmethod
    def _unique(cls, clusters: list[ClusterConfig]) -> list[ClusterConfig]:
        names = [c.name for c in clusters]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"cluster names must be unique; repeated: {', '.join(dupes)}")
        return clusters

    def series_budget(self) -> SeriesBudget:
        return SeriesBudget(self.metrics.state_series, frozenset(c.name for c in self.clusters if not c.task_metrics))

    def inline_secret_paths(self) -> list[str]:
        """Keys whose secret is written in the file itself (works, but earns a warning)."""
        paths = []
        for i, c in enumerate(self.clusters):
            if c.auth.basic is not None and c.auth.basic.inline_secret:
                paths.append(f"clusters[{i}].auth.basic.password")
            if c.auth.bearer is not None and c.auth.bearer.inline_secret:
                paths.append(f"clusters[{i}].auth.bearer.token")
        if self.confluent_cloud is not None:
            paths.extend(self.confluent_cloud.inline_secret_paths())
        return paths


def split_host_port(address: str) -> tuple[str, int]:
    """``":9838"``, ``"0.0.0.0:9838"``, ``"[::1]:9838"`` → (host, port); an empty host means all interfaces."""
    m = re.match(r"^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]*)):(\d{1,5})$", address)
    if not m or not 0 <= int(m.group(3)) <= 65535:
        raise ValueError(f"{address!r} is not host:port (e.g. :9838 or 127.0.0.1:9838)")
    return (m.group(1) or m.group(2) or ""), int(m.group(3))


# --- loading ------------------------------------------------------------------------------------------


def apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Overlay ``KCE_A__B__0__C=value`` onto the raw config; values are read as YAML scalars."""
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        if any(not p for p in parts):
            raise ConfigError(f"{name}: empty path part (use __ between keys)")
        try:
            value = yaml.safe_load(environ[name]) if environ[name] else ""
        except yaml.YAMLError:
            value = environ[name]
        # A scalar stays as written ("0123" must not become 123 in a secret or a name): the models turn "30",
        # "true" or "5s" into the number, switch or duration a key takes. Lists and mappings are read as YAML.
        if isinstance(value, int | float | bool):
            value = environ[name]
        _set_path(data, parts, value, name)
    return data


def _set_path(node: Any, parts: list[str], value: Any, env_name: str) -> None:
    head, rest = parts[0], parts[1:]
    if isinstance(node, list):
        if not head.isdigit():
            raise ConfigError(f"{env_name}: {head!r} must be a list index")
        index = int(head)
        while len(node) <= index:
            node.append({})
        if rest:
            if not isinstance(node[index], dict | list):
                node[index] = {}
            _set_path(node[index], rest, value, env_name)
        else:
            node[index] = value
        return
    if not isinstance(node, dict):
        raise ConfigError(f"{env_name}: cannot set a key inside a scalar value")
    if rest:
        child = node.get(head)
        if not isinstance(child, dict | list):
            child = [] if rest[0].isdigit() else {}
            node[head] = child
        _set_path(child, rest, value, env_name)
    else:
        node[head] = value


def build_config(raw: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, Config)) from None


def load_config(
    path: Path | None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    quickstart_urls: list[str] | None = None,
    quickstart_interval: float | None = None,
    *,
    quickstart_autoheal: Mapping[str, Any] | None = None,
) -> Config:
    """File, then environment, then flags (``overrides`` as dotted keys, ``quickstart_urls`` as clusters)."""
    raw: dict[str, Any] = read_yaml(path) if path is not None else {}
    env = os.environ if environ is None else environ
    raw = apply_env(raw, env)
    for dotted, value in (overrides or {}).items():
        _set_path(raw, dotted.split("."), value, "--" + dotted.replace("_", "-"))
    if quickstart_urls:
        clusters = raw.setdefault("clusters", [])
        if not isinstance(clusters, list):
            raise ConfigError("clusters: must be a list")
        by_name: dict[str, dict[str, Any]] = {}
        for spec in quickstart_urls:
            name, url = parse_quickstart_url(spec)
            if any(isinstance(c, dict) and c.get("name") == name for c in clusters) and name not in by_name:
                raise ConfigError(f"--connect.url: cluster {name!r} is already defined in the config file")
            entry = by_name.get(name)
            if entry is None:
                entry = {"name": name, "urls": []}
                if quickstart_interval is not None:
                    entry["poll_interval"] = quickstart_interval
                if quickstart_autoheal:
                    entry["autoheal"] = dict(quickstart_autoheal)
                by_name[name] = entry
                clusters.append(entry)
            entry["urls"].append(url)
    try:
        return build_config(raw)
    except ConfigError as exc:
        raise ConfigError(_name_env_sources(str(exc), env)) from None


def _env_path(name: str) -> str:
    """``KCE_CLUSTERS__0__POLL_INTERVAL`` → ``clusters[0].poll_interval``, the form errors use."""
    out = ""
    for part in name[len(ENV_PREFIX) :].lower().split("__"):
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def _name_env_sources(message: str, environ: Mapping[str, str]) -> str:
    """Say which environment variable set a rejected key: a stray KCE_* variable is otherwise hard to find."""
    paths = {_env_path(n): n for n in environ if n.startswith(ENV_PREFIX) and n != ENV_PREFIX}
    lines = []
    for line in message.splitlines():
        key = line.split(": ", 1)[0]
        source = paths.get(key) or next((n for p, n in paths.items() if key.startswith(p + ".")), None)
        lines.append(f"{line} (set by environment variable {source})" if source else line)
    return "\n".join(lines)


def parse_quickstart_url(spec: str) -> tuple[str, str]:
    """``http://w1:8083`` (cluster "default") or ``prod=http://w1:8083``."""
    m = re.match(r"^([A-Za-z0-9_.-]+)=(.+)$", spec)
    if m and "://" in m.group(2) and "://" not in m.group(1):
        return m.group(1), m.group(2)
    return QUICKSTART_CLUSTER, spec


def masked_dump(config: Config) -> str:
    """The effective configuration as YAML, every secret shown as ********."""
    data = config.model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(_mask(data), sort_keys=False, allow_unicode=True)


_SECRET_KEYS = {"password", "token", "key_password", "api_secret", "secret"}


def _mask(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: ("********" if k in _SECRET_KEYS and v is not None else _mask(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_mask(v) for v in node]
    return node
