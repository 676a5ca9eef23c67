"""The outcome of configuration reloads, as a store reading (``kafka_connect_exporter_config_*``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConfigReading:
    last_reload_successful: bool
    last_success: float  # Unix time the configuration in use was loaded (at start, or by the last good reload)
