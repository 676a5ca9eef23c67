"""scripts/install-tools.sh's background Helm build, which `make test` starts first so it overlaps the run.

A stand-in `go` on PATH plays the compiler (the real first build takes minutes): it holds until the test creates
its release file, then writes a helm binary, or fails, so no test depends on how fast the machine is. The cache
directory is a temporary one, so the real cached Helm is never touched.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.integration.kafka.rest import wait_until

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "install-tools.sh"

FAKE_GO = """#!/bin/sh
# install: hold until $FAKE_GO_HOLD exists (if set; 10 minutes at most), then write helm into $GOBIN (or fail).
# version -m: the module line the script reads.
case "$1" in
install)
    i=0
    while [ -n "${FAKE_GO_HOLD:-}" ] && [ ! -e "$FAKE_GO_HOLD" ] && [ "$i" -lt 6000 ]; do sleep 0.1; i=$((i + 1)); done
    [ -z "${FAKE_GO_FAIL:-}" ] || { echo "fake compile error" >&2; exit 1; }
    printf '#!/bin/sh\\necho v3.22.0\\n' > "$GOBIN/helm" && chmod +x "$GOBIN/helm" ;;
version) printf '%s: go1.26\\n\\tmod\\thelm.sh/helm/v3\\tv3.22.0\\n' "$3" ;;
esac
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    for tool in ("promtool", "amtool", "chromium"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True, check=False).returncode:
            pytest.skip(f"{tool} is not installed (make tools); the script would try to install it")
    if not list(Path("/usr/lib/postgresql").glob("*/bin/postgres")):
        pytest.skip("PostgreSQL is not installed (make tools); the script would try to install it")
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    (fake_bin / "go").write_text(FAKE_GO)
    (fake_bin / "go").chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{fake_bin}:{os.environ['PATH']}",
        "KAFKA_CONNECT_EXPORTER_CACHE": str(tmp_path / "cache"),
    }


def run(env: dict[str, str], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        cwd=ROOT,
        env={**env, **extra},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_helm_builds_in_the_background_and_wait_helm_reports_it(env: dict[str, str]) -> None:
    bin_dir = Path(env["KAFKA_CONNECT_EXPORTER_CACHE"]) / "bin"
    release = Path(env["KAFKA_CONNECT_EXPORTER_CACHE"]).parent / "release"
    started = run(env, "--helm-background", FAKE_GO_HOLD=str(release))
    assert started.returncode == 0, started.stderr
    assert "building helm v3.22.0 in the background" in started.stdout
    pid = int((bin_dir / "helm-build.pid").read_text())
    # The script returned while the build still runs: no helm yet, no status, the build alive.
    assert alive(pid) and not (bin_dir / "helm").exists() and not (bin_dir / "helm-build.status").exists()
    summary = run(env, "--summary").stdout
    assert "being built in the background" in summary
    assert re.search(r"postgresql +postgres \(PostgreSQL\) \d+", summary), summary

    # --wait-helm waits while the build is held, and returns once it ends.
    waiter = subprocess.Popen(
        ["bash", str(SCRIPT), "--wait-helm"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert waiter.stdout is not None
        assert "waiting for the background helm build" in waiter.stdout.readline()
        assert waiter.poll() is None
        release.touch()
        out, err = waiter.communicate(timeout=120)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert waiter.returncode == 0, out + err
    assert "helm: " in out and "(v3.22.0)" in out
    assert (bin_dir / "helm-build.status").read_text().strip() == "0"
    assert subprocess.run([bin_dir / "helm"], capture_output=True, text=True, check=True).stdout.strip() == "v3.22.0"
    # Installed now: a second start builds nothing.
    again = run(env, "--helm-background")
    assert "already installed" in again.stdout and not list(bin_dir.glob(".helm-build.*"))


def test_a_failed_background_build_fails_wait_helm_with_its_log(env: dict[str, str]) -> None:
    assert run(env, "--helm-background", FAKE_GO_FAIL="1").returncode == 0
    waited = run(env, "--wait-helm")
    assert waited.returncode == 1
    assert "the background helm build failed" in waited.stderr and "fake compile error" in waited.stderr


def test_stop_helm_stops_the_build_and_its_children(env: dict[str, str]) -> None:
    bin_dir = Path(env["KAFKA_CONNECT_EXPORTER_CACHE"]) / "bin"
    never = Path(env["KAFKA_CONNECT_EXPORTER_CACHE"]).parent / "never-created"
    assert run(env, "--helm-background", FAKE_GO_HOLD=str(never)).returncode == 0
    pid = int((bin_dir / "helm-build.pid").read_text())
    try:
        assert run(env, "--stop-helm").returncode == 0
        # The whole process group: the build's shell and the stand-in compiler's sleep.
        wait_until(lambda: not alive(pid), timeout=30, what="the background build to stop")
        group = subprocess.run(["pgrep", "-g", str(pid)], capture_output=True, text=True, check=False)
        wait_until(
            lambda: subprocess.run(["pgrep", "-g", str(pid)], capture_output=True, check=False).returncode == 1,
            timeout=30,
            what=f"the build's process group to be empty ({group.stdout.split()})",
        )
    finally:
        if alive(pid):
            os.killpg(pid, signal.SIGKILL)
