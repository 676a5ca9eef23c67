"""The family catalogue is well formed and is what the exporter serves."""

from __future__ import annotations

import re

from exporter.cloud.config import CONNECTOR_METRICS
from exporter.families import ALL_FAMILIES, CLOUD_THROUGHPUT, CONNECT_FAMILIES, POLLED
from tests.metrics.golden_view import FILES

NAME = re.compile(r"^kafka_connect_[a-z0-9_]+$")
LABEL = re.compile(r"^[a-z][a-z0-9_]*$")


def test_names_and_labels_are_valid_and_unique() -> None:
    names = [f.name for f in ALL_FAMILIES]
    assert len(names) == len(set(names))
    assert {f.name for f in CONNECT_FAMILIES} <= set(names)  # the catalogue lists the families the renderers write
    for f in ALL_FAMILIES:
        assert NAME.match(f.name), f.name
        # A counter's family name never ends in _total; its samples do.
        assert not f.name.endswith("_total")
        assert f.sample_name == (f.name + "_total" if f.type == "counter" else f.name)
        assert f.help.endswith("."), f"{f.name}: HELP is a sentence"
        assert len(set(f.labels)) == len(f.labels), f.name
        assert all(LABEL.match(label) for label in f.labels), f.name


def test_every_configurable_cloud_metric_has_a_counter() -> None:
    assert tuple(CLOUD_THROUGHPUT) == CONNECTOR_METRICS


def test_served_help_says_polled_exactly_for_the_polled_families() -> None:
    """The HELP the golden view serves carries the poll cadence for the families declared ``POLLED``, and only for
    those (plugins are read on their own, slower schedule)."""
    help_lines = {
        line.split(" ")[2]: line
        for line in FILES[False].read_text(encoding="utf-8").splitlines()
        if line.startswith("# HELP ")
    }
    polled = {f.sample_name for f in CONNECT_FAMILIES if "not at scrape time" in help_lines[f.sample_name]}
    assert polled == {f.sample_name for f in POLLED}
    assert set(CONNECT_FAMILIES) >= POLLED


def test_golden_files_show_every_family_with_its_help() -> None:
    """The golden view renders every catalogue family, so the golden files pin each name, type and HELP."""
    text = FILES[False].read_text(encoding="utf-8")
    openmetrics = FILES[True].read_text(encoding="utf-8")
    for f in ALL_FAMILIES:
        assert f"# TYPE {f.sample_name} {f.type}\n" in text
        assert f"# HELP {f.sample_name} {f.help}" in text
        assert f"# TYPE {f.name} {f.type}\n" in openmetrics
