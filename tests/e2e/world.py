"""The pieces of an end-to-end run: exporter processes, a driver thread for the simulators, log keeping.

The exporter runs as users run it (``python -m exporter --config.file ... --web.listen-address ...``), as a real
process on a free loopback port, stopped by PID. Simulators run in background threads of the test process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.prometheus import die_with_parent, prometheus_binary, wait_for
from tests.integration.kafka import fetch
from tests.integration.kafka.harness import HarnessError, KafkaEnvironment, install_signal_handlers, start_environment
from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
FAILED_LOGS_DIR = ROOT / ".cache" / "test-logs"
STOP_GRACE_SECONDS = 15.0


class ExporterProcess:
    """One ``python -m exporter`` process with a generated config file; stdout and stderr go to a log file."""

    def __init__(self, name: str, workdir: Path, config: dict[str, Any], env: dict[str, str] | None = None) -> None:
        self.name = name
        self.workdir = workdir
        self.config = config
        self.env = env or {}
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"exporter-{name}.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self, timeout: float = 30.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / f"exporter-{self.name}.yml"
        config_path.write_text(yaml.safe_dump(self.config, sort_keys=False), encoding="utf-8")
        self.port = free_port()
        argv = [
            sys.executable,
            "-m",
            "exporter",
            "--config.file",
            str(config_path),
            "--web.listen-address",
            self.address,
        ]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=True,
                preexec_fn=die_with_parent,  # noqa: PLW1509 (only sets the death signal)
            )

        def serving() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"exporter {self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            return httpx.get(self.url + "/metrics", timeout=2.0).status_code == 200

        wait_for(serving, timeout, f"exporter {self.name} to serve /metrics")

    def reload_with(self, text: str) -> None:
        """Replace the config file with ``text`` and send SIGHUP, as an operator reloading it would."""
        assert self.proc is not None
        (self.workdir / f"exporter-{self.name}.yml").write_text(text, encoding="utf-8")
        self.proc.send_signal(signal.SIGHUP)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after a bound; returns the exit code."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        return proc.returncode

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@contextlib.contextmanager
def exporter_process(
    name: str, workdir: Path, config: dict[str, Any], env: dict[str, str] | None = None
) -> Iterator[ExporterProcess]:
    exporter = ExporterProcess(name, workdir, config, env)
    try:
        exporter.start()
        yield exporter
    finally:
        exporter.stop()


@contextlib.contextmanager
def refused_address() -> Iterator[str]:
    """``127.0.0.1:port`` that refuses connections: bound (so nobody else takes it) but never listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{s.getsockname()[1]}"


class Driver:
    """A background thread that calls each registered action every ``period`` seconds until stopped.

    Moves the simulated clusters along (``tick``) and re-arms intermittent faults. An exception in an action
    stops nothing else; ``check()`` re-raises the first one in the test thread.
    """

    def __init__(self) -> None:
        self._actions: list[tuple[float, Callable[[], None]]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[BaseException] = []

    def every(self, period: float, action: Callable[[], None]) -> None:
        self._actions.append((period, action))

    def _run(self) -> None:
        due: dict[int, float] = {}  # actions may be added while the thread runs
        while not self._stop.is_set():
            now = time.monotonic()
            for i, (period, action) in enumerate(list(self._actions)):
                if now >= due.get(i, now):
                    due[i] = now + period
                    try:
                        action()
                    except Exception as exc:  # reported by check()
                        self.errors.append(exc)
            self._stop.wait(0.05)

    def __enter__(self) -> Driver:
        self._thread = threading.Thread(target=self._run, name="e2e-driver", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def check(self) -> None:
        if self.errors:
            raise AssertionError(f"simulation driver failed: {self.errors[0]!r}") from self.errors[0]


def keep_logs(workdir: Path, label: str) -> Path:
    """Copy the run's logs and generated configs (no TSDB) to .cache/test-logs/ for a failed run."""
    dest = FAILED_LOGS_DIR / f"e2e-{label}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    dest.mkdir(parents=True, exist_ok=True)
    for src in sorted(workdir.rglob("*")):
        if src.is_file() and src.suffix in (".log", ".yml") and "data" not in src.relative_to(workdir).parts:
            target = dest / src.relative_to(workdir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest


@contextlib.contextmanager
def real_kafka(request: pytest.FixtureRequest, workdir: Path, label: str) -> Iterator[KafkaEnvironment]:
    """A broker and 2 workers of the newest pinned Kafka version in the cache, for a module's end-to-end run.

    Fails without Prometheus, skips without Kafka jars. Stopped at the end; when a test of the module failed (or
    the set-up did), the run's logs are kept in .cache/test-logs/ and the harness keeps Kafka's.
    """
    if prometheus_binary() is None:
        pytest.fail("prometheus not found: install Debian's prometheus package (make tools)")
    complete = [v for v in fetch.pinned_versions() if fetch.is_complete(v)]
    if not complete:
        pytest.skip("no Apache Kafka jars in the cache; `make kafka` fetches them")
    install_signal_handlers()  # SIGTERM/SIGHUP stop the JVMs before the test process dies
    try:
        env = start_environment(complete[-1])
    except HarnessError as exc:
        pytest.fail(str(exc), pytrace=False)
    failed_before = request.session.testsfailed
    clean = False
    try:
        yield env
        clean = request.session.testsfailed == failed_before
    finally:
        failed = not clean
        _, saved = env.close(keep_logs=failed, reason="an end-to-end test failed" if failed else "")
        if failed:
            print(f"\ne2e logs kept in {keep_logs(workdir, label)}; Kafka logs in {saved}")
