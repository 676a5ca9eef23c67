#!/usr/bin/env python3
"""Fetch Apache Kafka (broker + Connect) jars from Maven Central with Maven, into a reusable cache.

Usage:
    python tests/integration/kafka/fetch.py                 # every version pinned in versions.txt
    python tests/integration/kafka/fetch.py 3.9.1           # only the given versions
    python tests/integration/kafka/fetch.py --check-latest  # report newest complete 3.9.x / 4.x on Maven Central

Layout: ``${KCE_CACHE_DIR:-~/.cache/kafka-connect-exporter}/kafka/<version>/libs/*.jar`` plus ``complete.json``.
A version whose ``complete.json`` matches the jars on disk is not fetched again (no network at all).
Maven resolves through ``~/.m2`` and only ever talks to Maven Central (a generated settings.xml mirrors
every repository to it). Standard library only, so it runs before any venv exists.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

MAVEN_CENTRAL = "https://repo.maven.apache.org/maven2"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
VERSIONS_FILE = Path(__file__).with_name("versions.txt")
KAFKA_GROUP = "org.apache.kafka"
# Broker, Connect runtime, the FileStream connectors, the JSON converter and the basic-auth REST extension.
KAFKA_ARTIFACTS = (
    "kafka_2.13",
    "connect-runtime",
    "connect-file",
    "connect-json",
    "connect-basic-auth-extension",
)
# The Kafka poms leave the logging backend to the distribution; without one nothing is logged.
# 3.x logs through log4j 1 (reload4j), 4.x through log4j 2 (same versions the 4.x distribution ships).
LOGGING_3X = (("ch.qos.reload4j", "reload4j", "1.2.25"), ("org.slf4j", "slf4j-reload4j", "1.7.36"))
LOGGING_4X = (
    ("org.apache.logging.log4j", "log4j-api", "2.25.4"),
    ("org.apache.logging.log4j", "log4j-core", "2.25.4"),
    ("org.apache.logging.log4j", "log4j-slf4j-impl", "2.25.4"),
)
MANIFEST = "complete.json"


def pinned_versions(path: Path = VERSIONS_FILE) -> list[str]:
    """The Kafka versions in versions.txt, in file order."""
    versions = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            if not re.fullmatch(r"\d+\.\d+\.\d+", line):
                raise ValueError(f"{path}: not a Kafka version: {line!r}")
            versions.append(line)
    if not versions:
        raise ValueError(f"{path}: no versions pinned")
    return versions


def cache_root() -> Path:
    base = os.environ.get("KCE_CACHE_DIR") or str(Path.home() / ".cache" / "kafka-connect-exporter")
    return Path(base).expanduser() / "kafka"


def version_dir(version: str) -> Path:
    return cache_root() / version


def libs_dir(version: str) -> Path:
    return version_dir(version) / "libs"


def is_complete(version: str) -> bool:
    """True when the manifest exists and every jar it lists is on disk with the recorded size."""
    manifest = version_dir(version) / MANIFEST
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        jars: dict[str, int] = data["jars"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    libs = libs_dir(version)
    for name, size in jars.items():
        try:
            if (libs / name).stat().st_size != size:
                return False
        except OSError:
            return False
    return bool(jars)


def _logging_deps(version: str) -> tuple[tuple[str, str, str], ...]:
    return LOGGING_3X if int(version.split(".", 1)[0]) < 4 else LOGGING_4X


def render_pom(version: str) -> str:
    deps = [(KAFKA_GROUP, a, version) for a in KAFKA_ARTIFACTS] + list(_logging_deps(version))
    dep_xml = "\n".join(
        "    <dependency><groupId>{}</groupId><artifactId>{}</artifactId><version>{}</version></dependency>".format(
            *(escape(x) for x in d)
        )
        for d in deps
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>kafka-connect-exporter.tests</groupId>
  <artifactId>kafka-runtime-{escape(version)}</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{dep_xml}
  </dependencies>
</project>
"""


# Every repository (including plugin repositories) is mirrored to Maven Central: nothing else is contacted.
SETTINGS_XML = f"""<?xml version="1.0" encoding="UTF-8"?>
<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0">
  <mirrors>
    <mirror><id>central-only</id><mirrorOf>*</mirrorOf><url>{MAVEN_CENTRAL}</url></mirror>
  </mirrors>
</settings>
"""


@contextlib.contextmanager
def _locked(version: str) -> Iterator[None]:
    """Serialise fetches of one version across processes (several engineers share the cache)."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with (root / f".{version}.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def fetch(version: str, *, quiet: bool = False) -> dict[str, float]:
    """Make sure ``libs_dir(version)`` holds the complete runtime classpath. Returns timing/size facts."""
    start = time.monotonic()
    if is_complete(version):
        return {"seconds": time.monotonic() - start, "bytes": _size(libs_dir(version)), "downloaded": 0.0}
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("Maven ('mvn') is not on PATH; it is needed to fetch Kafka from Maven Central")
    with _locked(version):
        if is_complete(version):  # another process finished it while we waited
            return {"seconds": time.monotonic() - start, "bytes": _size(libs_dir(version)), "downloaded": 0.0}
        m2_before = _size(_m2_repo())
        target = version_dir(version)
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"fetch-{version}-", dir=target) as tmp:
            tmp_path = Path(tmp)
            (tmp_path / "pom.xml").write_text(render_pom(version), encoding="utf-8")
            (tmp_path / "settings.xml").write_text(SETTINGS_XML, encoding="utf-8")
            out = tmp_path / "libs"
            cmd = [
                mvn,
                "-B",
                "-q",
                "-s",
                str(tmp_path / "settings.xml"),
                "-f",
                str(tmp_path / "pom.xml"),
                f"{DEPENDENCY_PLUGIN}:copy-dependencies",
                f"-DoutputDirectory={out}",
                "-DincludeScope=runtime",
            ]
            if not quiet:
                print(f"[fetch] Kafka {version}: {' '.join(cmd[1:])}", flush=True)
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(
                    f"mvn failed for Kafka {version} (exit {proc.returncode}):\n"
                    f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
                )
            jars = {p.name: p.stat().st_size for p in sorted(out.glob("*.jar"))}
            missing = [a for a in KAFKA_ARTIFACTS if f"{a}-{version}.jar" not in jars]
            if missing:
                raise RuntimeError(f"Kafka {version}: Maven did not deliver {missing}")
            final = libs_dir(version)
            if final.exists():
                shutil.rmtree(final)
            out.rename(final)
        manifest = {"version": version, "jars": jars, "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        # The manifest is written last: its presence means the libs dir is complete.
        tmp_manifest = target / f"{MANIFEST}.tmp"
        tmp_manifest.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
        tmp_manifest.replace(target / MANIFEST)
        downloaded = max(0, _size(_m2_repo()) - m2_before)
    return {"seconds": time.monotonic() - start, "bytes": float(sum(jars.values())), "downloaded": float(downloaded)}


def _m2_repo() -> Path:
    return Path.home() / ".m2" / "repository"


def _size(path: Path) -> float:
    if not path.exists():
        return 0.0
    return float(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()))


def _http_ok(url: str) -> bool:
    req = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return bool(resp.status == 200)
    except urllib.error.HTTPError:
        return False


def _published_versions(artifact: str) -> list[str]:
    url = f"{MAVEN_CENTRAL}/org/apache/kafka/{artifact}/maven-metadata.xml"
    with urllib.request.urlopen(url, timeout=30) as resp:
        text = resp.read().decode("utf-8")
    found = re.findall(r"<version>(\d+\.\d+\.\d+)</version>", text)
    return sorted(set(found), key=lambda v: tuple(int(x) for x in v.split(".")))


def check_latest() -> dict[str, str | None]:
    """Newest 3.9.x and newest 4.x for which every artifact we need is on Maven Central."""
    versions = _published_versions("kafka_2.13")
    result: dict[str, str | None] = {}
    for label, prefix in (("3.9", "3.9."), ("4.x", "4.")):
        result[label] = None
        for v in reversed([v for v in versions if v.startswith(prefix)]):
            absent = [
                a for a in KAFKA_ARTIFACTS if not _http_ok(f"{MAVEN_CENTRAL}/org/apache/kafka/{a}/{v}/{a}-{v}.pom")
            ]
            if not absent:
                result[label] = v
                break
            print(f"[check] {v}: not usable, missing on Maven Central: {', '.join(absent)}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("versions", nargs="*", help="versions to fetch (default: all in versions.txt)")
    parser.add_argument("--check-latest", action="store_true", help="print newest complete 3.9.x / 4.x and exit")
    args = parser.parse_args(argv)
    if args.check_latest:
        latest = check_latest()
        pinned = pinned_versions()
        for label, v in latest.items():
            state = "pinned" if v in pinned else "NOT pinned"
            print(f"[check] newest complete {label}: {v} ({state})")
        return 0
    versions = args.versions or pinned_versions()
    for v in versions:
        try:
            facts = fetch(v)
        except RuntimeError as exc:
            print(f"[fetch] Kafka {v}: FAILED: {exc}", file=sys.stderr)
            return 1
        print(
            f"[fetch] Kafka {v}: {libs_dir(v)} ready, {facts['bytes'] / 1e6:.1f} MB of jars, "
            f"{facts['downloaded'] / 1e6:.1f} MB newly downloaded into ~/.m2, {facts['seconds']:.1f}s",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
