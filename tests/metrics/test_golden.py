"""The exposition of a small hand-built view, byte for byte, in both formats served.

Family names, label names and HELP texts are what dashboards, alerts and docs depend on: any change to the
served text shows up here as a diff of ``tests/metrics/golden/``. When a change is intended, regenerate the
files deliberately and review the diff before committing::

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/metrics/test_golden.py -p no:cacheprovider

(with ``UPDATE_GOLDEN`` set the test rewrites the files and then fails, so it never passes by accident).
"""

from __future__ import annotations

import os
import platform

import pytest

from exporter import __version__
from exporter.budget import SeriesBudget
from exporter.exposition import Rendered
from exporter.features import metric_groups
from exporter.render import render_blocks
from tests.metrics.golden_view import CURRENT_FILES, FILES, golden_view

# metrics.state_series: current, with task_metrics: false on the Cloud cluster (which then keeps its task counts).
CURRENT = SeriesBudget("current", frozenset({"cloud"}))
# build_info carries the running Python's version: the golden files hold a placeholder.
BUILD = f'python_version="{platform.python_version()}",version="{__version__}"'
BUILD_PLACEHOLDER = 'python_version="PYTHON",version="VERSION"'


def render(openmetrics: bool, budget: SeriesBudget | None = None) -> bytes:
    """The snapshot part of /metrics for the golden view (the process metrics change all the time), rendered
    by the groups the daemon serves, in its order."""
    rendered = Rendered(7, render_blocks(golden_view(budget), metric_groups()))
    text = rendered.openmetrics + b"# EOF\n" if openmetrics else rendered.text
    assert text.count(BUILD.encode()) == 1
    return text.replace(BUILD.encode(), BUILD_PLACEHOLDER.encode())


@pytest.mark.parametrize("mode", ["all", "current"])
@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_exposition_matches_golden_file(openmetrics: bool, mode: str) -> None:
    path = (FILES if mode == "all" else CURRENT_FILES)[openmetrics]
    text = render(openmetrics, None if mode == "all" else CURRENT)
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_bytes(text)
        pytest.fail(f"rewrote {path.name}: review `git diff tests/metrics/golden/`, then run without UPDATE_GOLDEN")
    assert text == path.read_bytes(), f"exposition differs from {path.name}"
