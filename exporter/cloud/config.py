"""The ``confluent_cloud`` config section: credentials, what to watch, where the APIs are, how often to ask.

The Cloud API key and secret are resolved once at load time (environment, file, or inline with a
warning) into ``SecretStr`` values. With nothing configured they come from ``CONFLUENT_CLOUD_API_KEY``
and ``CONFLUENT_CLOUD_API_SECRET``, the names Confluent's own tools use.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from exporter.settings import (
    CommaList,
    Duration,
    StrictModel,
    ZeroOrDuration,
    check_http_url,
    resolve_secret,
)

DEFAULT_API_URL = "https://api.confluent.cloud"
DEFAULT_METRICS_URL = "https://api.telemetry.confluent.cloud"
API_KEY_ENV = "CONFLUENT_CLOUD_API_KEY"
API_SECRET_ENV = "CONFLUENT_CLOUD_API_SECRET"  # noqa: S105 (a variable name)

# Short names of the Metrics API connector counters (``io.confluent.kafka.connect/<name>``) we turn into
# Prometheus counters; the order is the order of queries in a cycle.
CONNECTOR_METRICS: tuple[str, ...] = (
    "received_records",
    "sent_records",
    "received_bytes",
    "sent_bytes",
    "dead_letter_queue_records",
)
METRIC_PREFIX = "io.confluent.kafka.connect/"

# PT1M queries may span at most 6 hours (ccloud-api.md A.1); retention is about 7 days.
MAX_PT1M_WINDOW = 6 * 3600.0
RETENTION = 7 * 86400.0
MAX_REVISION_WINDOW = 3600.0
# The Metrics API allows 300 requests per minute per IP (ccloud-api.md A.0); we never plan for more.
API_REQUESTS_PER_MINUTE = 300

_ENV_ID = re.compile(r"^env-[A-Za-z0-9]+$")
_LKC_ID = re.compile(r"^lkc-[A-Za-z0-9]+$")
_LCC_ID = re.compile(r"^lcc-[A-Za-z0-9]+$")


class CloudClusterConfig(StrictModel):
    """One Kafka cluster whose managed connectors are watched."""

    id: str = Field(description="Kafka cluster id, lkc-…")
    # The connect_cluster label of every series of this cluster; defaults to the lkc id.
    name: str | None = Field(default=None, min_length=1, max_length=200)
    # Watch only these connectors (lcc-…). Without a Connect API grant they are still counted from the
    # Metrics API, labelled with the id as the connector name.
    connector_ids: CommaList = []

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _LKC_ID.match(value):
            raise ValueError(f"{value!r} is not a Kafka cluster id (lkc-…)")
        return value

    @field_validator("connector_ids")
    @classmethod
    def _ids(cls, ids: list[str]) -> list[str]:
        bad = [i for i in ids if not _LCC_ID.match(i)]
        if bad:
            raise ValueError(f"not connector ids (lcc-…): {', '.join(map(repr, bad))}")
        if len(set(ids)) != len(ids):
            raise ValueError("a connector id is listed twice")
        return ids

    @property
    def label(self) -> str:
        return self.name or self.id


class CloudEnvironmentConfig(StrictModel):
    id: str = Field(description="Environment id, env-…")
    clusters: list[CloudClusterConfig] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ENV_ID.match(value):
            raise ValueError(f"{value!r} is not an environment id (env-…)")
        return value


class CloudConfig(StrictModel):
    api_key: SecretStr | None = None
    api_key_env: str | None = None
    api_key_file: Path | None = None
    api_secret: SecretStr | None = None
    api_secret_env: str | None = None
    api_secret_file: Path | None = None

    environments: list[CloudEnvironmentConfig] = Field(min_length=1)

    api_url: str = DEFAULT_API_URL  # Connect API v1
    metrics_url: str = DEFAULT_METRICS_URL  # Metrics API v2
    proxy: str | None = None  # HTTP(S) proxy for both APIs; the environment's proxy settings are ignored

    status_interval: Duration = 60.0
    metrics_interval: Duration = 60.0
    request_timeout: Duration = 30.0
    # After a failed status poll, a cluster's last successful connector, task, failure and health series stay
    # (with kafka_connect_up 0) while they are at most this old; 0 drops them at once.
    stale_after: ZeroOrDuration = 600.0
    # A minute bucket is counted once it is this old (start of the minute to now). The API publishes
    # data about 3 minutes late; one more minute of margin keeps late points from being missed.
    metrics_delay: Duration = 240.0
    # Minutes already counted are read again this far back, and what they gained since is added: the API
    # may still add to a minute after publishing it. Whole minutes; under one minute turns it off.
    revision_window: Duration = 600.0
    # After an outage, missed minutes are backfilled up to this far back (older ones are skipped with a
    # warning). Queries span at most 6 hours, so a longer backfill catches up over several cycles.
    max_backfill: Duration = MAX_PT1M_WINDOW
    metrics: CommaList = list(CONNECTOR_METRICS)
    # Ask /descriptors/metrics which of ``metrics`` exist and skip (with a warning) any that do not.
    discover_metrics: bool = False
    # Connector ids per query filter; more connectors mean more queries per metric.
    connectors_per_query: int = Field(default=200, ge=1, le=1000)
    # Client-side budget for all requests of this exporter to Confluent Cloud, both APIs together.
    max_requests_per_minute: int = Field(default=240, ge=1, le=API_REQUESTS_PER_MINUTE)
    max_retries: int = Field(default=3, ge=0, le=10)
    # One consumer_lag_offsets query per Kafka cluster per metrics_interval for its sink connectors' groups.
    sink_lag: bool = True

    @model_validator(mode="before")
    @classmethod
    def _default_env(cls, data: Any) -> Any:
        # Confluent's usual variables apply when no source is given for a credential.
        if isinstance(data, dict):
            data = dict(data)
            for what, env in (("api_key", API_KEY_ENV), ("api_secret", API_SECRET_ENV)):
                if all(data.get(k) is None for k in (what, f"{what}_env", f"{what}_file")):
                    data[f"{what}_env"] = env
        return data

    @model_validator(mode="after")
    def _resolve(self) -> Self:
        for what in ("api_key", "api_secret"):
            secret = resolve_secret(
                getattr(self, what), getattr(self, f"{what}_env"), getattr(self, f"{what}_file"), what
            )
            if secret is None or not secret.get_secret_value():
                raise ValueError(f"{what} is empty")
            object.__setattr__(self, what, secret)
        names = [c.label for c in self.clusters()]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"Kafka cluster names must be unique; repeated: {', '.join(dupes)}")
        if self.revision_window > MAX_REVISION_WINDOW:
            raise ValueError("revision_window: at most 1h (each query spans it besides the new minutes)")
        if self.max_backfill > RETENTION:
            raise ValueError("max_backfill: the Metrics API keeps about 7 days; use at most 7d")
        return self

    @field_validator("api_url", "metrics_url")
    @classmethod
    def _urls(cls, value: str) -> str:
        return check_http_url(value, credentials_from="api_key/api_secret")

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, names: list[str]) -> list[str]:
        short = [n.removeprefix(METRIC_PREFIX) for n in names]
        unknown = [n for n in short if n not in CONNECTOR_METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(CONNECTOR_METRICS)}")
        if not short:
            raise ValueError("list at least one metric")
        return list(dict.fromkeys(short))

    def clusters(self) -> list[CloudClusterConfig]:
        return [c for e in self.environments for c in e.clusters]

    def cluster_envs(self) -> list[tuple[str, CloudClusterConfig]]:
        return [(e.id, c) for e in self.environments for c in e.clusters]

    def secret(self) -> SecretStr:
        assert self.api_secret is not None  # resolved by the validator
        return self.api_secret

    def key(self) -> SecretStr:
        assert self.api_key is not None
        return self.api_key

    def inline_secret_paths(self, prefix: str = "confluent_cloud") -> list[str]:
        if self.api_secret_env is None and self.api_secret_file is None:
            return [f"{prefix}.api_secret"]
        return []


def parse_cluster_flag(spec: str) -> dict[str, str]:
    """``--ccloud.cluster lkc-abc`` or ``--ccloud.cluster prod=lkc-abc`` (name = lkc id)."""
    name, sep, cluster_id = spec.partition("=")
    if sep:
        return {"name": name.strip(), "id": cluster_id.strip()}
    return {"id": spec.strip()}


def quickstart_overrides(
    environment: str | None,
    clusters: list[str] | None,
    api_url: str | None = None,
    metrics_url: str | None = None,
    autoheal_mode: str | None = None,
) -> dict[str, Any]:
    """Dotted-key overrides for ``load_config(overrides=…)`` from the ``--ccloud.*`` flags."""
    out: dict[str, Any] = {}
    if clusters and not environment:
        raise ValueError("--ccloud.cluster needs --ccloud.environment")
    if environment and not clusters:
        raise ValueError("--ccloud.environment needs at least one --ccloud.cluster")
    if environment and clusters:
        out["confluent_cloud.environments"] = [
            {"id": environment, "clusters": [parse_cluster_flag(c) for c in clusters]}
        ]
    if api_url:
        out["confluent_cloud.api_url"] = api_url
    if metrics_url:
        out["confluent_cloud.metrics_url"] = metrics_url
    if autoheal_mode is not None:
        if not environment:
            raise ValueError("--ccloud.autoheal.mode needs --ccloud.environment and --ccloud.cluster")
        out["confluent_cloud.autoheal.mode"] = autoheal_mode
    return out
