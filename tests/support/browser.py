"""A real headless browser (Debian's ``chromium``) loading a page: its DOM after scripts ran, and a screenshot.

Chromium gets a fresh profile per call and no network besides the page's own loopback URL (background
networking, updates and sync off), so it reaches nothing but the exporter under test.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

# Chromium's start-up on a busy 2-core machine takes seconds; this only bounds a hung browser.
BROWSER_TIMEOUT_SECONDS = 120.0

_FLAGS = (
    "--headless",
    "--no-sandbox",  # the tests may run as root, where the sandbox refuses to start
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--window-size=1400,1600",
)


@dataclass(frozen=True)
class Loaded:
    dom: str
    screenshot: Path


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium not found: install Debian's chromium package (make tools)")
    return path


def load(url: str, screenshot: Path) -> Loaded:
    """Load ``url`` twice in headless chromium: once dumping the DOM, once writing a PNG to ``screenshot``."""
    binary = chromium()
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        base = [binary, *_FLAGS, f"--user-data-dir={profile}"]
        dom = subprocess.run(
            [*base, "--dump-dom", url], capture_output=True, text=True, timeout=BROWSER_TIMEOUT_SECONDS, check=False
        )
        assert dom.returncode == 0, f"chromium --dump-dom exited {dom.returncode}: {dom.stderr[-2000:]}"
        shot = subprocess.run(
            [*base, f"--screenshot={screenshot}", url],
            capture_output=True,
            text=True,
            timeout=BROWSER_TIMEOUT_SECONDS,
            check=False,
        )
        assert shot.returncode == 0, f"chromium --screenshot exited {shot.returncode}: {shot.stderr[-2000:]}"
    assert screenshot.is_file() and screenshot.stat().st_size > 1000, f"no screenshot written to {screenshot}"
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return Loaded(dom.stdout, screenshot)
