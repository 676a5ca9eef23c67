"""docs/metrics.md and --help stay true to the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from exporter.simulator.server import SimThread
from tests.support import quick_config, running_daemon

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTED_FAMILY = re.compile(r"^\| `(kafka_connect_[a-z0-9_]+)` \|", re.MULTILINE)


def documented_families() -> set[str]:
    return set(DOCUMENTED_FAMILY.findall((ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")))


async def test_every_rendered_core_family_is_documented(sim: SimThread) -> None:
    sim.cluster.add_connector("a", "sink", tasks_max=2)
    async with running_daemon(quick_config({"c": sim.urls})) as ex:
        scrape = await ex.wait_for(lambda s: bool(s.samples("kafka_connect_task_state")), what="tasks")
    rendered = {name for name in scrape.families if name.startswith("kafka_connect_")}
    documented = documented_families()
    assert rendered - documented == set(), "rendered but not in docs/metrics.md"
    core = {n for n in documented if not n.startswith(("kafka_connect_autoheal_", "kafka_connect_cloud_"))}
    assert core - rendered == set(), "documented but never rendered"


def test_readme_and_help_name_the_same_flags() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "exporter", "--help"], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    flags_in_readme = set(re.findall(r"`(--[a-z]+\.[a-z-]+)", readme))
    for flag in flags_in_readme:
        assert flag in help_text, f"README mentions {flag}, --help does not"
    for flag in set(re.findall(r"(--(?:web|connect|config|log)\.[a-z-]+)", help_text)):
        assert flag in readme, f"--help has {flag}, README does not"
