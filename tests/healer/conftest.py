"""Fixtures of the auto-heal tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory


@pytest.fixture
def clock() -> Iterator[FrozenDateTimeFactory]:
    with freeze_time("2025-03-01 12:00:00") as frozen:
        assert isinstance(frozen, FrozenDateTimeFactory)
        yield frozen
