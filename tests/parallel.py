"""How `make test` splits the suite across pytest-xdist workers (``-n 2 --dist loadscope``).

A scope is what must run in one worker process, because its tests share something costly to start:

- every test on one Kafka version (node ids ``…[kafka-<version>…]``, the ids ``kafka_env`` gives its params in
  tests/integration/conftest.py) shares that version's session-scoped cluster, whichever module it is in;
- every other test goes with its module, whose module-scoped fixtures (a Prometheus, a real Kafka for the e2e
  runs) would otherwise start once in each worker.

xdist's own ``loadgroup`` would say this with marks, but it renames node ids to carry the group, which pytest 9.2
no longer allows (the marks are silently ignored and every test becomes its own scope).
"""

from __future__ import annotations

import re

from xdist.scheduler import LoadScopeScheduling

_KAFKA_VERSION = re.compile(r"\[(?:[^\]]*-)?kafka-(\d+(?:\.\d+)+)(?=[-\]])")


def scope_of(nodeid: str) -> str:
    """``…::test_basic[kafka-3.9.2]`` -> ``kafka-3.9.2``; ``tests/a/test_b.py::test_c`` -> its module."""
    found = _KAFKA_VERSION.search(nodeid)
    return f"kafka-{found.group(1)}" if found else nodeid.split("::", 1)[0]


class SharedFixtureScheduling(LoadScopeScheduling):
    """xdist's loadscope, with the scopes above instead of one per module or class."""

    def _split_scope(self, nodeid: str) -> str:
        return scope_of(nodeid)
