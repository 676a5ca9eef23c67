from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import freezegun
import pytest

from exporter.connect import workers
from simulator.connect.server import SimThread, connect_in_thread
from simulator.connect.state import SimCluster
from tests import session_report
from tests.support.net import is_loopback

# pytest times tests through _pytest.timing; under a frozen clock --durations reported 1.7e9 s set-ups.
freezegun.configure(extend_ignore_list=["_pytest.timing"])


@pytest.fixture(autouse=True)
def loopback_probes_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail any test whose exporter would probe a worker id off loopback (and never send that probe).

    Probing sends traffic to whatever address a status names; tests may only reach 127.0.0.0/8. Every probe goes
    through ``exporter.connect.workers.probe_one``, which this wraps for the test.
    """
    offending: list[str] = []
    real = workers.probe_one

    async def loopback_only(client: Any, base: str, *args: Any, **kwargs: Any) -> workers.ProbeResult:
        if not is_loopback(base):
            offending.append(base)
            raise AssertionError(f"a test exporter tried to probe {base}, which is not loopback")
        return await real(client, base, *args, **kwargs)

    monkeypatch.setattr(workers, "probe_one", loopback_only)
    yield offending
    if offending:
        pytest.fail(
            f"the exporter would have probed non-loopback workers {sorted(set(offending))}: "
            "turn worker_probes off in this test or use 127.0.0.0/8 worker ids"
        )


@pytest.fixture
def sim() -> Iterator[SimThread]:
    """A two-worker Kafka 3.9 cluster served over loopback from a background thread."""
    cluster = SimCluster(version="3.9.0", worker_count=2)
    with connect_in_thread(cluster) as handle:
        yield handle


# Serial runs put integration (real Kafka) and e2e (real Prometheus) tests last: the fast tests report first,
# and the last Kafka version's JVMs, which pytest keeps until the session ends, do not idle beside every unit
# test on a 2-core machine. Parallel runs (pytest-xdist, as `make test` runs) put them first instead: each
# Kafka version is one long group, and handing out the longest work first keeps the workers busy to the end.
# Stable, and after pytest's own grouping by session fixture parameters.
_LAST = {"e2e": 1, "integration": 2}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).parent
    parallel = hasattr(config, "workerinput")

    def rank(item: pytest.Item) -> int:
        rel = item.path.relative_to(tests_dir) if tests_dir in item.path.parents else None
        last = _LAST.get(rel.parts[0], 0) if rel is not None and len(rel.parts) > 1 else 0
        return -last if parallel else last

    items.sort(key=rank)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    # Scopes that keep a Kafka version's cluster, or a module's fixtures, in one worker (tests/parallel.py).
    if config.getvalue("dist") != "loadscope":
        return None
    from tests.parallel import SharedFixtureScheduling

    return SharedFixtureScheduling(config, log)


# The end-of-session summary (tests/session_report.py). A pytest-xdist worker hands its sections to the
# controller in workeroutput; the controller, or a serial run, prints them.
@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["session_report"] = dict(session_report.SECTIONS)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    session_report.merge(getattr(node, "workeroutput", {}).get("session_report", {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for section, lines in session_report.SECTIONS.items():
        terminalreporter.section(section)
        for line in lines:
            terminalreporter.write_line(line)
