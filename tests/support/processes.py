"""Exporter processes as users run them (server and one-shot CLI), free loopback ports, and what /proc says of a
process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.scrape import Scrape, parse_exposition
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1, never handed out twice by this process."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("could not find a free port on 127.0.0.1")


def port_is_free(port: int) -> bool:
    """Nothing listens on the port and a new listener can take it, as a restarted exporter would (with
    SO_REUSEADDR, like aiohttp: connections the exporter closed may linger in TIME_WAIT)."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
        return True


def start_exporter(*args: str, env: dict[str, str] | None = None, log_path: Path) -> subprocess.Popen[bytes]:
    """The exporter as users run it; stdout and stderr go to ``log_path`` (read it after the process ends)."""
    out = log_path.open("wb")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "exporter", *args],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    finally:
        out.close()  # the child has its own copy


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """One run of the exporter's command line to its end (``check-config``, ``--help``, a bad flag)."""
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )


@contextmanager
def exporter_process(*args: str, env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The exporter on a free loopback port, its output piped; killed on the way out. Yields it and its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", *args, "--web.listen-address", f"127.0.0.1:{port}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def wait_scrape(base: str, predicate: Callable[[Scrape], bool], timeout: float = 20.0) -> Scrape:
    """The first scrape of ``base`` for which ``predicate`` holds (a server still starting is "not yet")."""
    latest: list[str] = []

    def check() -> Scrape | None:
        latest[:] = [httpx.get(base + "/metrics", timeout=2).text]
        scrape = parse_exposition(latest[0])
        return scrape if predicate(scrape) else None

    return eventually(
        check,
        what="the condition in a scrape",
        timeout=timeout,
        ignore=(httpx.TransportError,),
        describe=lambda: latest[0][-2000:] if latest else "no scrape",
    )
