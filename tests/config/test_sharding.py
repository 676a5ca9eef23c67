"""``sharding``: replicas sharing one file split clusters[] by a stable hash of the name, each exactly once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.config import build_config, shard_of
from exporter.settings import ConfigError
from tests.support.processes import ROOT

NAMES = [f"connect-{i}" for i in range(40)]


def raw(shard: int, shards: int, **extra: Any) -> dict[str, Any]:
    return {
        "sharding": {"shard": shard, "shards": shards},
        "clusters": [
            {"name": n, "urls": [f"http://w{i}:8083"], "autoheal": {"mode": "enforce"}} for i, n in enumerate(NAMES)
        ],
        **extra,
    }


def test_shard_of_is_stable_across_processes_and_versions() -> None:
    # Pinned: a change of hash would move clusters between running replicas (and heal some twice meanwhile).
    assert [shard_of(n, 3) for n in ("prod", "staging", "analytics", "payments")] == [1, 1, 1, 0]
    code = "from exporter.config import shard_of; print(shard_of('prod', 3))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert other.stdout.strip() == "1"


@pytest.mark.parametrize("shards", [2, 3, 5])
def test_every_cluster_is_watched_and_healed_by_exactly_one_replica(shards: int) -> None:
    owned = [[c.name for c in build_config(raw(i, shards)).clusters] for i in range(shards)]
    flat = [n for names in owned for n in names]
    assert sorted(flat) == sorted(NAMES)  # each once: never polled or auto-healed twice, never forgotten
    assert all(owned), "a shard got nothing out of 40 clusters: the hash does not spread"


def test_confluent_cloud_is_watched_by_shard_zero_only() -> None:
    cloud = {
        "confluent_cloud": {
            "api_key": "K",
            "api_secret": "S",
            "environments": [{"id": "env-1", "clusters": [{"id": "lkc-1"}]}],
        }
    }
    assert build_config(raw(0, 2, **cloud)).confluent_cloud is not None
    assert build_config(raw(1, 2, **cloud)).confluent_cloud is None


def test_shard_out_of_range_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="shard must be below shards"):
        build_config(raw(3, 3))


def test_flags_pick_the_shard_and_check_config_shows_its_clusters(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text(yaml.safe_dump(raw(0, 1)), encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "exporter", "check-config", "--config.file", str(path),
         "--sharding.shards", "4", "--sharding.shard", "2"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout  # fmt: skip
    shown = [c["name"] for c in yaml.safe_load(out)["clusters"]]
    assert shown == [n for n in NAMES if shard_of(n, 4) == 2] and shown
