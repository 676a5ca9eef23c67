"""The one way every status-page section writes a duration, an age and a time (exporter/page.py)."""

from __future__ import annotations

import pytest

from exporter.page import ago, duration, utc


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(-3.0, "0s"), (0.4, "0s"), (119.0, "119s"), (120.0, "2m"), (10_799.0, "3.0h"), (7199.0, "120m"),
     (7200.0, "2.0h"), (172_799.0, "48.0h"), (172_800.0, "2.0d")],
)  # fmt: skip
def test_duration(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown


def test_ago_and_utc() -> None:
    assert ago(None, 100.0) == "never"
    assert ago(100.0 - 180 * 60, 100.0) == "3.0h ago"  # one unit for a long age, not "180m ago"
    assert utc(None) == ""
    assert utc(0.0) == "1970-01-01 00:00:00"
