"""The exporter's own health: build info, each polled source's cycles and errors, configuration reloads, and the
repeat-limited warnings counted by event."""

from __future__ import annotations

import platform
from collections.abc import Iterator

from prometheus_client.core import Metric

from exporter import __version__
from exporter.config_reading import ConfigReading
from exporter.families import (
    BUILD_INFO,
    CONFIG_RELOAD_SUCCESS_TIMESTAMP,
    CONFIG_RELOAD_SUCCESSFUL,
    LAST_POLL,
    LAST_SUCCESS,
    POLL_DURATION,
    POLL_ERRORS,
    POLL_INTERVAL,
    POLLS,
    WARNINGS,
)
from exporter.model import ERROR_REASONS
from exporter.render import metric_family
from exporter.repeats import WarningsReading
from exporter.store import View


def collect_exporter(view: View) -> Iterator[Metric]:
    """The exporter's own health, per polled source.

    Sample::

        kafka_connect_exporter_poll_duration_seconds{connect_cluster="prod"} 0.042
        kafka_connect_exporter_poll_errors_total{connect_cluster="prod",reason="timeout"} 3.0
    """
    build = metric_family(BUILD_INFO)
    build.add_metric([__version__, platform.python_version()], 1.0)
    duration = metric_family(POLL_DURATION)
    interval = metric_family(POLL_INTERVAL)
    last_poll = metric_family(LAST_POLL)
    last_ok = metric_family(LAST_SUCCESS)
    polls = metric_family(POLLS)
    poll_errors = metric_family(POLL_ERRORS)
    for name in sorted(view.clusters):
        snap = view.clusters[name]
        duration.add_metric([name], snap.duration)
        interval.add_metric([name], snap.poll_interval)
        last_poll.add_metric([name], snap.taken_at)
        if snap.last_success is not None:
            last_ok.add_metric([name], snap.last_success)
        polls.add_metric([name, "success"], float(snap.stats.polls_ok))
        polls.add_metric([name, "failure"], float(snap.stats.polls_failed))
        for reason in ERROR_REASONS:
            poll_errors.add_metric([name, reason], float(snap.stats.errors.get(reason, 0)))
    yield from (build, duration, interval, last_poll, last_ok, polls, poll_errors)


def collect_reload(view: View) -> Iterator[Metric]:
    """Configuration reloads, named as Prometheus names its own (absent before the daemon publishes them).

    Sample::

        kafka_connect_exporter_config_last_reload_successful 1.0
    """
    reading = view.reading(ConfigReading)
    if reading is None:
        return
    ok = metric_family(CONFIG_RELOAD_SUCCESSFUL)
    ok.add_metric([], 1.0 if reading.last_reload_successful else 0.0)
    at = metric_family(CONFIG_RELOAD_SUCCESS_TIMESTAMP)
    at.add_metric([], reading.last_success)
    yield from (ok, at)


def collect_warnings(view: View) -> Iterator[Metric]:
    """Repeat-limited warnings by event, every occurrence counted (absent until the first one).

    Sample::

        kafka_connect_exporter_warnings_total{event="poll_failed"} 42.0
    """
    reading = view.reading(WarningsReading)
    if reading is None or not reading.counts:
        return
    family = metric_family(WARNINGS)
    for event in sorted(reading.counts):
        family.add_metric([event], float(reading.counts[event]))
    yield family
