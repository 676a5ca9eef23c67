"""End-to-end tests: a real Prometheus (Debian's /usr/bin/prometheus) scrapes the real exporter process."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import report

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.e2e)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if report.LINES:
        terminalreporter.section("End to end: Prometheus, dashboards and alerts")
        for line in report.LINES:
            terminalreporter.write_line(line)
