"""Connect's part of a ``clusters[]`` entry: one self-managed Kafka Connect cluster, how to reach it (URLs, auth,
TLS, headers), how often to poll it and which connectors to watch. ``exporter.config.ClusterConfig`` composes it
with the features that act on the cluster (offsets, auto-heal), whose parts build on this one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Self

from pydantic import ByteSize, Field, SecretStr, field_validator, model_validator

from exporter.settings import (
    CommaList,
    Duration,
    Regex,
    StrictModel,
    TLSConfig,
    UsernamePassword,
    ZeroOrDuration,
    check_http_url,
    resolve_secret,
)


class BasicAuth(UsernamePassword):
    """HTTP basic auth against the Connect REST API."""

    @property
    def inline_secret(self) -> bool:
        return self.password_env is None and self.password_file is None


class BearerAuth(StrictModel):
    token: SecretStr | None = None
    token_env: str | None = None
    token_file: Path | None = None

    @model_validator(mode="after")
    def _resolve(self) -> Self:
        secret = resolve_secret(self.token, self.token_env, self.token_file, "token")
        if secret is None:
            raise ValueError("one of token, token_env or token_file is required")
        object.__setattr__(self, "token", secret)
        return self

    @property
    def inline_secret(self) -> bool:
        return self.token_env is None and self.token_file is None


class AuthConfig(StrictModel):
    basic: BasicAuth | None = None
    bearer: BearerAuth | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        if self.basic is not None and self.bearer is not None:
            raise ValueError("configure either basic or bearer auth, not both")
        return self


class WorkerProbeConfig(StrictModel):
    """Probing the workers that the statuses name (docs/configuration.md, "Worker probes")."""

    enabled: bool = True
    # Short: a worker that does not answer GET / within this is lost for the cycle.
    timeout: Duration = Field(default=2.0, gt=0)
    # Probes in flight at once; they share the cluster's connection pool with the status read.
    concurrency: int = Field(default=8, ge=1, le=64)


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class ConnectClusterConfig(StrictModel):
    name: str = Field(min_length=1, max_length=200)
    urls: CommaList = Field(min_length=1)
    poll_interval: Duration = 30.0
    plugins_interval: Duration = 600.0
    # After a failed poll, the last successful poll's connector, task, worker, failure, health and offsets
    # series stay (with kafka_connect_up 0) while they are at most this old; 0 drops them at once.
    stale_after: ZeroOrDuration = 600.0
    request_timeout: Duration = 10.0
    # Whole-cycle deadline; defaults to the poll interval so cycles never pile up.
    cycle_timeout: Duration | None = None
    # Parallel per-connector requests when a pre-2.3 worker forces the 1 + 2N fallback.
    fallback_concurrency: int = Field(default=8, ge=1, le=64)
    auth: AuthConfig = AuthConfig()
    tls: TLSConfig = TLSConfig()
    headers: dict[str, str] = {}
    # Bodies larger than this are cut off and counted as bad_response, so a broken or hostile endpoint
    # cannot exhaust memory. 10,000 connectors with status and info are about 25 MB.
    max_response_size: ByteSize = Field(default=ByteSize(256 * 1024 * 1024), gt=0)
    # The Kafka cluster id the workers must report (GET /). Unset: the majority of the workers decides.
    # A worker that reports another id (a load balancer or DNS entry pointing at another cluster) is down.
    kafka_cluster_id: str | None = Field(default=None, min_length=1, max_length=200)
    worker_probes: WorkerProbeConfig = WorkerProbeConfig()
    # Connector-name regexes (Python syntax, matched against the whole name): a connector is watched when it
    # matches some include (default: all) and no exclude. Filtered connectors are neither exported, shown nor
    # healed. See docs/metrics.md, "Series budget".
    include: list[Regex] = []
    exclude: list[Regex] = []
    # false: no per-task series (kafka_connect_task_state); the per-connector task counts stay.
    task_metrics: bool = True

    def watches(self, connector: str) -> bool:
        """Whether the connector passes the include/exclude filters."""
        if self.include and not any(p.fullmatch(connector) for p in self.include):
            return False
        return not any(p.fullmatch(connector) for p in self.exclude)

    @field_validator("urls")
    @classmethod
    def _urls(cls, urls: list[str]) -> list[str]:
        checked = [check_http_url(u, credentials_from="auth.basic") for u in urls]
        if len(set(checked)) != len(checked):
            raise ValueError("the same worker URL is listed twice")
        return checked

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for key, value in headers.items():
            if not _HEADER_NAME.match(key):
                raise ValueError(f"{key!r} is not a valid HTTP header name")
            if "\n" in value or "\r" in value:
                raise ValueError(f"header {key!r} has a line break in its value")
            if key.lower() == "authorization":
                raise ValueError("set Authorization through auth.basic or auth.bearer, not headers")
        return headers

    @property
    def deadline(self) -> float:
        return self.cycle_timeout if self.cycle_timeout is not None else self.poll_interval
