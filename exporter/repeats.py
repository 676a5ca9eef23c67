"""Warnings that repeat (a worker that never answers, every poll): logged once, then a summary every few minutes.

``RepeatLimiter.warn`` is the one way a source logs a warning that may come back every cycle. The first
occurrence of a key is logged as it is; while the same key keeps coming, one line per ``every`` seconds says how
many were held back (``repeated``); a key not seen for ``every`` seconds is forgotten, so its next occurrence is
logged at once again. Every occurrence is counted by event, logged or not, for
``kafka_connect_exporter_warnings_total``.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from exporter.settings import format_duration

SUMMARY_EVERY_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class WarningsReading:
    """Occurrences of each repeat-limited warning since start, logged or held back (a store reading)."""

    counts: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(slots=True)
class _Seen:
    logged_at: float
    last_seen: float
    held: int = 0


class RepeatLimiter:
    def __init__(self, every: float = SUMMARY_EVERY_SECONDS, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._seen: dict[tuple[str, Hashable], _Seen] = {}
        self._counts: Counter[str] = Counter()

    @property
    def counts(self) -> Mapping[str, int]:
        """Occurrences by event since start, logged or held back."""
        return self._counts

    def reading(self) -> WarningsReading:
        return WarningsReading(MappingProxyType(dict(self._counts)))

    def warn(self, logger: Any, event: str, key: Hashable, **fields: Any) -> bool:
        """Count the occurrence and log it unless the same ``(event, key)`` was logged less than ``every`` ago.
        Returns whether a line was written."""
        now = self.clock()
        self._counts[event] += 1
        self._forget_older_than(now - self.every)
        seen = self._seen.get((event, key))
        if seen is None:
            self._seen[(event, key)] = _Seen(logged_at=now, last_seen=now)
            logger.warning(event, **fields, repeats=f"logged once, then every {format_duration(self.every)}")
            return True
        seen.last_seen = now
        if now - seen.logged_at < self.every:
            seen.held += 1
            return False
        logger.warning(event, **fields, repeated=seen.held + 1, over=format_duration(now - seen.logged_at))
        seen.logged_at, seen.held = now, 0
        return True

    def _forget_older_than(self, cutoff: float) -> None:
        # A key that stopped repeating (the worker answers again) starts afresh; bounded by what repeats now.
        for k in [k for k, s in self._seen.items() if s.last_seen < cutoff]:
            del self._seen[k]
