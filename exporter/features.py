"""Where every feature's readers register: the groups /metrics serves and the sections of the status page.

Each list is in the order served. A group or section whose reading is not in the view renders nothing, so the
lists do not depend on the configuration (a reload that turns a feature on needs nothing registered).
The golden files (tests/metrics/golden/) are rendered from ``metric_groups()`` itself.
"""

from __future__ import annotations

from exporter.cloud.metrics import collect_cloud
from exporter.connect.metrics import ConnectRenderer
from exporter.connect.web import (
    clusters_section,
    problems_section,
    sources_down_section,
    versions_section,
    workers_section,
)
from exporter.failures.metrics import FailuresRenderer
from exporter.failures.web import failures_section
from exporter.healer.metrics import collect_autoheal
from exporter.healer.web import autoheal_section
from exporter.offsets.metrics import OffsetsRenderer
from exporter.offsets.web import offsets_section
from exporter.own_metrics import collect_exporter, collect_reload, collect_warnings
from exporter.page import PageSection
from exporter.render import Collected, MetricGroup
from exporter.sourcetopics.metrics import SourceTopicsRenderer


def metric_groups() -> list[MetricGroup]:
    """Every group /metrics serves, in exposition order; new instances (a fast group's cache belongs to one
    exposition)."""
    return [
        ConnectRenderer(),
        Collected(collect_exporter),
        Collected(collect_reload),
        Collected(collect_warnings),
        Collected(collect_cloud),
        Collected(collect_autoheal),
        FailuresRenderer(),
        OffsetsRenderer(),
        SourceTopicsRenderer(),
    ]


# The status page, top to bottom: the sources that are down lead, then the fleet view.
PAGE_SECTIONS: tuple[PageSection, ...] = (
    sources_down_section,
    failures_section,
    clusters_section,
    problems_section,
    workers_section,
    versions_section,
    offsets_section,
    autoheal_section,
)
