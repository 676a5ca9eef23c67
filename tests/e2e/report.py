"""What the end-to-end runs found, printed at the end of the pytest session (tests/e2e/conftest.py)."""

from __future__ import annotations

LINES: list[str] = []


def add(line: str) -> None:
    LINES.append(line)
