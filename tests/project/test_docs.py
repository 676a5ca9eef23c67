"""docs/metrics.md and --help stay true to the code (the metric families: to ``exporter.families``)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from exporter.families import ALL_FAMILIES, CONNECT_FAMILIES, EXPORTER_FAMILIES
from simulator.connect.server import SimThread
from tests.support.daemon_harness import quick_config, running_daemon
from tests.support.scrape import Scrape

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED_FAMILY = re.compile(r"^\| `(kafka_connect_[a-z0-9_]+)` \|", re.MULTILINE)
# | `name` | type | `label`, `label` | meaning |
FAMILY_ROW = re.compile(r"^\| `(kafka_connect_[a-z0-9_]+)` \| (\w+) \| ([^|]*) \|", re.MULTILINE)


def documented_families() -> set[str]:
    return set(DOCUMENTED_FAMILY.findall((ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")))


def test_docs_table_matches_the_family_catalogue() -> None:
    """Every family in the catalogue has a row with its type and labels (in order), and no row is extra."""
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    rows = {name: (kind, re.findall(r"`([a-z_]+)`", labels)) for name, kind, labels in FAMILY_ROW.findall(text)}
    catalogue = {f.sample_name: (f.type, list(f.labels)) for f in ALL_FAMILIES}
    assert len(rows) >= 30 and rows["kafka_connect_task_state"][1][-1] == "state"  # the table parse found rows
    assert rows == catalogue
    assert len(ALL_FAMILIES) == len(catalogue), "a family is declared twice"


async def test_every_rendered_core_family_is_documented(sim: SimThread) -> None:
    sim.cluster.add_connector("a", "sink", tasks_max=2)
    documented = documented_families()
    core = {f.sample_name for f in (*CONNECT_FAMILIES, *EXPORTER_FAMILIES)}  # what every exporter serves

    def rendered(s: Scrape) -> set[str]:
        return {name for name in s.families if name.startswith("kafka_connect_")}

    async with running_daemon(quick_config({"c": sim.urls}, poll_interval=1)) as ex:
        # Plugins come after the statuses in a cycle; wait for the whole set rather than one family.
        try:
            scrape = await ex.wait_for(lambda s: core <= rendered(s), timeout=15, what="every core family")
        except AssertionError:
            scrape = await ex.scrape()
    assert rendered(scrape) - documented == set(), "rendered but not in docs/metrics.md"
    assert core - rendered(scrape) == set(), "documented but never rendered"


def test_readme_and_help_name_the_same_flags() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "exporter", "--help"], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    flags_in_readme = set(re.findall(r"`(--[a-z]+\.[a-z-]+)", readme))
    flags_in_help = set(re.findall(r"(--(?:web|connect|config|log)\.[a-z-]+)", help_text))
    # Both parses found flags (a changed layout must fail here, not make the comparison empty).
    assert "--web.listen-address" in flags_in_readme and "--web.listen-address" in flags_in_help
    for flag in flags_in_readme:
        assert flag in help_text, f"README mentions {flag}, --help does not"
    for flag in flags_in_help:
        assert flag in readme, f"--help has {flag}, README does not"


def _config_paths() -> list[str]:
    """Every key of the configuration models, as ``clusters[].auth.basic.username``-style paths."""
    from pydantic import BaseModel

    from exporter.config import Config

    paths: list[str] = []

    def models_in(annotation: object) -> list[type[BaseModel]]:
        found = []
        for a in [annotation, *getattr(annotation, "__args__", ())]:
            for b in [a, *getattr(a, "__args__", ())]:
                if isinstance(b, type) and issubclass(b, BaseModel):
                    found.append(b)
        return found

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            path = prefix + name
            subs = models_in(field.annotation)
            if not subs:
                paths.append(path)
            for sub in subs:
                walk(sub, path + ("[]." if "list" in str(field.annotation) else "."))

    walk(Config, "")
    return paths


def test_every_config_key_is_in_docs_configuration() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    paths = _config_paths()
    assert rows and "clusters[].autoheal.mode" in paths  # both sides were read
    missing = []
    for path in paths:
        parent, _, leaf = path.rpartition(".")
        # A row may name siblings by their leaf after the first full path: "`a.password` / `password_env`".
        if not any(f"`{path}`" in row or (f"`{parent}." in row and f"`{leaf}`" in row) for row in rows):
            missing.append(path)
    assert missing == []
