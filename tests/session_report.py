"""Lines for the end-of-session summary, by section.

Fixtures and tests add lines wherever they run; under pytest-xdist each worker hands its sections to the
controller, which prints them all (tests/conftest.py), so a parallel run reports what a serial one does.
"""

from __future__ import annotations

SECTIONS: dict[str, list[str]] = {}


def add(section: str, line: str) -> None:
    SECTIONS.setdefault(section, []).append(line)


def merge(sections: dict[str, list[str]]) -> None:
    """Take in a worker's sections (xdist sends them as plain dicts and lists)."""
    for section, lines in sections.items():
        SECTIONS.setdefault(section, []).extend(lines)
