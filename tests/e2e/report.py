"""What the end-to-end runs found, printed at the end of the pytest session (tests/session_report.py)."""

from __future__ import annotations

from tests import session_report

SECTION = "End to end: Prometheus, dashboards and alerts"


def add(line: str) -> None:
    session_report.add(SECTION, line)
