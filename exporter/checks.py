"""What ``run``, ``check-config``, the demo and a reload check in a loaded configuration beyond its schema.

``review`` is the one place for it: mistakes the schema cannot see (nothing to watch, a missing extra, TLS material
that does not load, a web config file) are errors, and values that are legal but almost surely wrong are warnings.
Each finding is one line, ``<key path>: <what is wrong>``. No network: everything here reads local files only.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from exporter.config import ClusterConfig, Config
from exporter.offsets.reading import STALLED_AFTER_SECONDS
from exporter.settings import ConfigError, format_duration

NOTHING_TO_WATCH = "nothing to watch: give --connect.url URL or a --config.file with clusters or confluent_cloud"
KAFKA_EXTRA = "clusters[].kafka needs confluent-kafka: pip install 'kafka-connect-exporter[kafka]'"
# Polling faster than this asks every worker for every connector's status several times a second.
MIN_SENSIBLE_POLL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Review:
    errors: tuple[str, ...]
    warnings: tuple[str, ...]

    def raise_errors(self) -> None:
        if self.errors:
            raise ConfigError("\n".join(self.errors))


def has_sources(config: Config) -> bool:
    # A shard may own no cluster (more replicas than clusters): it runs, empty, ready for a reload.
    return bool(config.clusters) or config.confluent_cloud is not None or config.sharding.enabled


def kafka_client_available() -> bool:
    try:
        import confluent_kafka.admin  # noqa: F401
    except ImportError:
        return False
    return True


def review(config: Config, *, web_config: bool = True) -> Review:
    """Every check beyond the schema. ``web_config=False`` leaves ``--web.config.file`` to its own watcher (a
    reload does not re-read it)."""
    errors: list[str] = []
    warnings: list[str] = []
    if not has_sources(config):
        errors.append(NOTHING_TO_WATCH)
    if web_config and config.web.config_file is not None:
        from exporter.web_security import check_web_config

        try:
            check_web_config(config.web.config_file)
        except ConfigError as exc:
            errors.extend(str(exc).splitlines())
    if any(c.kafka is not None for c in config.clusters) and not kafka_client_available():
        errors.append(KAFKA_EXTRA)
    for i, cluster in enumerate(config.clusters):
        where = f"clusters[{i}]"
        errors.extend(_tls_errors(where, cluster))
        warnings.extend(_timing_warnings(where, cluster))
    return Review(tuple(errors), tuple(warnings))


def _tls_errors(where: str, cluster: ClusterConfig) -> list[str]:
    out = []
    try:
        cluster.tls.ssl_context()  # what the cluster's HTTP client loads at start
    except (ssl.SSLError, OSError, ValueError) as exc:
        out.append(f"{where}.tls: cannot load the CA file or client certificate: {_ssl_reason(exc)}")
    if cluster.kafka is not None:
        tls = cluster.kafka.tls
        for name in ("ca_file", "cert_file", "key_file"):
            path: Path | None = getattr(tls, name)
            if path is None:
                continue
            try:
                with path.open("rb") as f:  # librdkafka reads it later, by path
                    f.read(1)
            except OSError as exc:
                out.append(f"{where}.kafka.tls.{name}: cannot read {path}: {exc.strerror}")
    return out


def _ssl_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or exc.strerror or str(exc)
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc} ({exc.filename})" if exc.filename else str(exc.strerror or exc)
    return str(exc)


def _timing_warnings(where: str, cluster: ClusterConfig) -> list[str]:
    out = []
    poll = cluster.poll_interval
    if poll < MIN_SENSIBLE_POLL_SECONDS:
        out.append(
            f"{where}.poll_interval: {format_duration(poll)} is under 1s: every worker is asked for every "
            "connector's status several times a second; 10s to 1m is usual"
        )
    if cluster.request_timeout >= cluster.deadline:
        out.append(
            f"{where}.request_timeout: {format_duration(cluster.request_timeout)} is not shorter than the cycle "
            f"deadline ({format_duration(cluster.deadline)}, the poll_interval unless cycle_timeout is set): "
            "a slow request is cut by the deadline, not timed out, and takes the whole cycle with it"
        )
    if cluster.offsets_enabled and cluster.kafka is not None:
        every = cluster.offsets_interval
        if every > STALLED_AFTER_SECONDS:
            out.append(
                f"{where}.offsets_interval: {format_duration(every)} is longer than the "
                f"{format_duration(STALLED_AFTER_SECONDS)} a sink's offsets may stand still before it counts as "
                "stalled: a moving sink can look stalled"
            )
    return out
