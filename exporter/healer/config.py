"""Auto-heal settings of one Connect cluster (``clusters[].autoheal``).

Off by default. Every number has a default chosen for production clusters; docs/autoheal.md explains each
one and why it has the value it has.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Protocol, Self
from urllib.parse import urlsplit

from pydantic import BeforeValidator, ConfigDict, Field, field_validator, model_validator

from exporter.settings import CommaList, Duration, StrictModel, compile_regex

Mode = Literal["off", "dry-run", "enforce"]
Scope = Literal["cluster", "local-worker"]


def _mode(value: Any) -> Any:
    # YAML 1.1 reads a bare `off` as false; accept it (and dry_run spelt with an underscore).
    if value is False:
        return "off"
    if isinstance(value, str):
        return value.strip().lower().replace("_", "-")
    return value


def _scope(value: Any) -> Any:
    return value.strip().lower().replace("_", "-") if isinstance(value, str) else value


class BackoffConfig(StrictModel):
    """Delay before attempt n+1 after n restarts: min(initial * multiplier**(n-1), max), plus jitter."""

    initial: Duration = 120.0
    multiplier: float = Field(default=2.0, ge=1.0, le=10.0)
    max: Duration = 3600.0
    # Up to this share is added to each delay, fixed per target, so targets that failed together
    # (a shared outage) do not come back in lock-step waves.
    jitter: float = Field(default=0.1, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.max < self.initial:
            raise ValueError("max must not be shorter than initial")
        return self


class BreakerConfig(StrictModel):
    """Mass-failure breaker: hold restarts while a large share of the cluster's tasks failed at once."""

    # Open when more than this share of all tasks failed within `window` (e.g. a broker outage) ...
    max_failed_share: float = Field(default=0.5, gt=0.0, le=1.0)
    # ... and at least this many tasks did (two failed tasks of a four-task cluster are not an outage).
    min_failed_tasks: int = Field(default=4, ge=1)
    window: Duration = 300.0
    # While open, restart one connector this often to learn whether the cause is gone; the probe must
    # stay healthy this long to close the breaker.
    probe_interval: Duration = 300.0


def _check_regex(pattern: str | None) -> str | None:
    if pattern is not None:
        compile_regex(pattern)
    return pattern


class SkipRule(StrictModel):
    """Failures a restart cannot fix: a FAILED target whose fingerprint matches is never restarted.

    ``exception``, ``root_cause`` and ``cause`` (any class of the trace's main chain) are matched against whole
    Java class names; ``first_line`` is searched for in the trace's first line. Every field given must match.
    """

    model_config = ConfigDict(str_strip_whitespace=False)

    name: str = Field(min_length=1, max_length=100)
    exception: str | None = None
    root_cause: str | None = None
    cause: str | None = None
    first_line: str | None = None

    @field_validator("exception", "root_cause", "cause", "first_line")
    @classmethod
    def _regex(cls, pattern: str | None) -> str | None:
        return _check_regex(pattern)

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.exception is None and self.root_cause is None and self.cause is None and self.first_line is None:
            raise ValueError(f"skip rule {self.name!r} needs exception, root_cause, cause or first_line")
        return self


# Defaults: failures that come back after every restart (docs/autoheal.md, "Failures a restart cannot fix").
DEFAULT_SKIP: tuple[SkipRule, ...] = (
    SkipRule(name="tolerance-exceeded", first_line=r"Tolerance exceeded in error handler"),
    SkipRule(name="data-exception", cause=r"org\.apache\.kafka\.connect\.errors\.DataException"),
    SkipRule(name="serialization", cause=r"org\.apache\.kafka\.common\.errors\.SerializationException"),
    SkipRule(name="config-exception", cause=r"org\.apache\.kafka\.common\.config\.ConfigException"),
)


class AutohealConfig(StrictModel):
    # allow/deny patterns are kept as written: a space can be part of a regular expression.
    model_config = ConfigDict(str_strip_whitespace=False)

    mode: Annotated[Mode, BeforeValidator(_mode)] = "off"
    scope: Annotated[Scope, BeforeValidator(_scope)] = "cluster"
    # local-worker scope only: the worker_id ("host:port", as Connect reports it) of the worker this
    # exporter runs beside. Default: host:port of the cluster's first URL.
    worker_id: str | None = Field(default=None, min_length=1, max_length=300)
    grace_period: Duration = 60.0
    backoff: BackoffConfig = BackoffConfig()
    max_attempts: int = Field(default=6, ge=1, le=1000)
    stable_period: Duration = 1800.0
    restarts_per_minute: int = Field(default=10, ge=1, le=10_000)
    breaker: BreakerConfig = BreakerConfig()
    # Regular expressions matched against the whole connector name; deny wins over allow, and an
    # empty allow list allows every name.
    # One pattern, or a comma list (from an environment override).
    allow: CommaList = []
    deny: CommaList = []
    request_timeout: Duration = 30.0
    # Failures no restart can fix; giving the list replaces the defaults (an empty list restarts everything).
    skip: list[SkipRule] = Field(default_factory=lambda: list(DEFAULT_SKIP))

    @field_validator("allow", "deny")
    @classmethod
    def _compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            _check_regex(pattern)
        return patterns

    @field_validator("worker_id")
    @classmethod
    def _worker_id(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^\S+:\d{1,5}$", value.strip()):
            raise ValueError(f"{value!r} is not host:port, the form Connect reports worker ids in")
        return value.strip() if value is not None else None

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    @property
    def dry_run(self) -> bool:
        return self.mode == "dry-run"


class AutohealSettings(StrictModel):
    """The ``autoheal`` key of a ``clusters[]`` entry (``exporter.config.ClusterConfig`` composes it)."""

    autoheal: AutohealConfig = AutohealConfig()  # off unless enabled; see docs/autoheal.md


# Managed connectors (Confluent Cloud) report a failure a restart cannot fix as the task state
# USER_ACTIONABLE_ERROR (a bad credential, a missing bucket); the healer sees a managed target's first line as
# "<STATE>: <message>" (exporter.cloud.heal).
MANAGED_DEFAULT_SKIP: tuple[SkipRule, ...] = (
    SkipRule(name="user-actionable", first_line=r"^USER_ACTIONABLE_ERROR\b"),
    *DEFAULT_SKIP,
)


class ManagedAutohealConfig(AutohealConfig):
    """``confluent_cloud.autoheal``: the keys and semantics of ``clusters[].autoheal`` for every watched Kafka
    cluster's managed connectors. The default skip rules add ``user-actionable``; ``scope`` can only be
    ``cluster`` (there is no worker to stand beside)."""

    skip: list[SkipRule] = Field(default_factory=lambda: list(MANAGED_DEFAULT_SKIP))

    @model_validator(mode="after")
    def _cluster_scope(self) -> Self:
        if self.scope != "cluster" or self.worker_id is not None:
            raise ValueError("managed connectors have no workers of ours: scope must be cluster, without worker_id")
        return self


class ManagedAutohealSettings(StrictModel):
    """The ``autoheal`` key of ``confluent_cloud`` (``exporter.config.ConfluentCloudConfig`` composes it)."""

    autoheal: ManagedAutohealConfig = ManagedAutohealConfig()  # off unless enabled; see docs/autoheal.md


class AutohealCluster(Protocol):
    """What the healer reads of a cluster's configuration (``exporter.config.ClusterConfig`` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def urls(self) -> list[str]: ...
    @property
    def autoheal(self) -> AutohealConfig: ...


def default_worker_id(url: str) -> str:
    """``host:port`` of a worker URL (port 80/443 by scheme when absent), the form of Connect's worker_id."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal; Java's URL.getHost() keeps the brackets
        host = f"[{host}]"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{host}:{port}"
