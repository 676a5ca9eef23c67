#!/usr/bin/env python3
"""Fetch Apache Kafka (broker + Connect) jars from Maven Central with Maven, into a reusable cache.

Usage:
    python tests/integration/kafka/fetch.py                 # every version pinned in versions.txt + PLUGINS
    python tests/integration/kafka/fetch.py 3.9.1           # only the given versions
    python tests/integration/kafka/fetch.py --check-latest  # report newest complete 3.9.x / 4.x on Maven Central

Layout: ``${KAFKA_CONNECT_EXPORTER_CACHE:-~/.cache/kafka-connect-exporter}/kafka/<version>/libs/*.jar``
plus ``complete.json``; third-party connector plugins (``PLUGINS``: Debezium PostgreSQL) each in
``.../plugins/<artifact>-<version>/`` (a Connect ``plugin.path`` entry).
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
_VERSION_RE = re.compile(r"\d+\.\d+\.\d+")
# Plugins whose release may lag the runtime's (the worker and broker are never mixed): the FileStream connectors
# and the basic-auth REST extension load into a newer worker through the stable Connect API.
OVERRIDABLE = ("connect-file", "connect-basic-auth-extension")


def _parse_versions(path: Path) -> dict[str, dict[str, str]]:
    """versions.txt lines: ``<version> [<artifact>=<version> ...]`` (overrides for artifacts missing upstream)."""
    pins: dict[str, dict[str, str]] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        fields = raw.split("#", 1)[0].split()
        if not fields:
            continue
        version, overrides = fields[0], dict(f.split("=", 1) for f in fields[1:] if "=" in f)
        if not _VERSION_RE.fullmatch(version) or len(overrides) != len(fields) - 1:
            raise ValueError(f"{path}: bad line {raw!r}")
        unknown = set(overrides) - set(OVERRIDABLE)
        if unknown or not all(_VERSION_RE.fullmatch(v) for v in overrides.values()):
            raise ValueError(f"{path}: only {OVERRIDABLE} may be overridden, with a version: {raw!r}")
        pins[version] = overrides
    if not pins:
        raise ValueError(f"{path}: no versions pinned")
    return pins


def pinned_versions(path: Path = VERSIONS_FILE) -> list[str]:
    """The Kafka versions in versions.txt, in file order."""
    return list(_parse_versions(path))


def artifact_versions(version: str, path: Path = VERSIONS_FILE) -> dict[str, str]:
    """artifactId -> version to fetch for Kafka ``version`` (the version itself unless overridden)."""
    overrides = _parse_versions(path).get(version, {})
    return {a: overrides.get(a, version) for a in KAFKA_ARTIFACTS}


def cache_root() -> Path:
    base = os.environ.get("KAFKA_CONNECT_EXPORTER_CACHE") or str(Path.home() / ".cache" / "kafka-connect-exporter")
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
        if data["artifacts"] != artifact_versions(version):  # versions.txt changed the pins
            return False
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
    # connect-api and kafka-clients are declared directly so that an overridden (older) plugin can never
    # pull an older copy of them into the classpath: direct dependencies win Maven's mediation.
    deps = [(KAFKA_GROUP, a, v) for a, v in artifact_versions(version).items()]
    deps += [(KAFKA_GROUP, "connect-api", version), (KAFKA_GROUP, "kafka-clients", version)]
    deps += list(_logging_deps(version))
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
            _add_compat_jar(version, out, tmp_path, quiet=quiet)
            jars = {p.name: p.stat().st_size for p in sorted(out.glob("*.jar"))}
            missing = [f"{a}-{v}.jar" for a, v in artifact_versions(version).items() if f"{a}-{v}.jar" not in jars]
            if missing:
                raise RuntimeError(f"Kafka {version}: Maven did not deliver {missing}")
            final = libs_dir(version)
            # Swap with two renames (running JVMs may be reading the old jars), then drop the old copy.
            stale = target / f"libs.stale-{os.getpid()}"
            if final.exists():
                final.rename(stale)
            out.rename(final)
            shutil.rmtree(stale, ignore_errors=True)
        manifest = {
            "version": version,
            "artifacts": artifact_versions(version),
            "jars": jars,
            "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        # The manifest is written last: its presence means the libs dir is complete.
        tmp_manifest = target / f"{MANIFEST}.tmp"
        tmp_manifest.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
        tmp_manifest.replace(target / MANIFEST)
        downloaded = max(0, _size(_m2_repo()) - m2_before)
    return {"seconds": time.monotonic() - start, "bytes": float(sum(jars.values())), "downloaded": float(downloaded)}


# Kafka 4.4 moved two classes that were never public API but that plugins built for 4.3 and older call:
# AppInfoParser (the FileStream connectors' and the basic-auth extension's version()) and Sanitizer (Debezium
# 3.6.1.Final's JMX metric names, io.debezium.metrics.Metrics) are now in org.apache.kafka.common.utils.internals.
# A 4.4 worker cannot scan those plugins, will not start with such a REST extension, and fails a Debezium task
# with NoClassDefFoundError: org/apache/kafka/common/utils/Sanitizer. So when the runtime lacks the old classes,
# bridges delegating to the new ones (compiled here with the JDK's javac) go into COMPAT_JAR on the classpath.
COMPAT_JAR = "kce-utils-bridge.jar"
_BRIDGES = {
    "AppInfoParser": ("getVersion", "getCommitId"),
    "Sanitizer": ("sanitize(String s)", "desanitize(String s)", "jmxSanitize(String s)"),
}


def _bridge_source(name: str, methods: tuple[str, ...]) -> str:
    lines = []
    for m in methods:
        call, _, arg = m.partition("(")
        params = arg.rstrip(")")
        passed = params.split()[-1] if params else ""
        lines.append(
            f"    public static String {call}({params}) {{ "
            f"return org.apache.kafka.common.utils.internals.{name}.{call}({passed}); }}"
        )
    body = "\n".join(lines)
    return (
        "package org.apache.kafka.common.utils;\n\n"
        "/** Bridge for Connect plugins built against Kafka 4.3 or older, run by a newer worker (tests only). */\n"
        f"public final class {name} {{\n    private {name}() {{}}\n{body}\n}}\n"
    )


def _add_compat_jar(version: str, libs: Path, work: Path, *, quiet: bool) -> None:
    """Put ``COMPAT_JAR`` into ``libs`` when the runtime lacks the classes older plugins call (see above)."""
    import zipfile

    with zipfile.ZipFile(libs / f"kafka-clients-{version}.jar") as jar:
        names = set(jar.namelist())
    missing = {n: m for n, m in _BRIDGES.items() if f"org/apache/kafka/common/utils/{n}.class" not in names}
    if not missing:
        return
    javac, jar_tool = shutil.which("javac"), shutil.which("jar")
    if javac is None or jar_tool is None:
        raise RuntimeError("javac and jar (a JDK 17) are needed to bridge older plugins into Kafka " + version)
    src = work / "bridge" / "org" / "apache" / "kafka" / "common" / "utils"
    src.mkdir(parents=True)
    sources = []
    for name, methods in sorted(missing.items()):
        (src / f"{name}.java").write_text(_bridge_source(name, methods), encoding="utf-8")
        sources.append(str(src / f"{name}.java"))
    classes = work / "bridge-classes"
    cp = str(libs / f"kafka-clients-{version}.jar")
    cmds = [
        [javac, "--release", "11", "-nowarn", "-cp", cp, "-d", str(classes), *sources],
        [jar_tool, "--create", "--file", str(libs / COMPAT_JAR), "-C", str(classes), "."],
    ]
    for cmd in cmds:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"building {COMPAT_JAR} failed: {proc.stdout}{proc.stderr}")
    if not quiet:
        print(f"[fetch] Kafka {version}: {', '.join(sorted(missing))} bridged for older plugins in {COMPAT_JAR}")


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
    """Newest 3.9.x and newest 4.x whose broker and Connect runtime are on Maven Central.

    Missing plugins (see OVERRIDABLE) are reported with the newest older release to pin in versions.txt.
    """
    versions = _published_versions("kafka_2.13")
    result: dict[str, str | None] = {}
    for label, prefix in (("3.9", "3.9."), ("4.x", "4.")):
        result[label] = None
        for v in reversed([v for v in versions if v.startswith(prefix)]):
            absent = [
                a for a in KAFKA_ARTIFACTS if not _http_ok(f"{MAVEN_CENTRAL}/org/apache/kafka/{a}/{v}/{a}-{v}.pom")
            ]
            if set(absent) - set(OVERRIDABLE):
                print(f"[check] {v}: not usable, missing on Maven Central: {', '.join(absent)}")
                continue
            for a in absent:
                key = tuple(int(x) for x in v.split("."))
                older = [x for x in _published_versions(a) if tuple(int(y) for y in x.split(".")) < key]
                print(f"[check] {v}: {a} {v} missing; newest older release: {older[-1] if older else None}")
            result[label] = v
            break
    return result


# -- connector plugins from outside Apache Kafka ------------------------------------------------------------

# Third-party connector plugins the integration tests run, as Maven coordinates (group, artifact, version).
# Each goes into its own plugin directory (Connect's plugin.path isolation), without what the worker provides.
DEBEZIUM_POSTGRES = ("io.debezium", "debezium-connector-postgres", "3.6.1.Final")
PLUGINS = (DEBEZIUM_POSTGRES,)
# The Connect API, the Kafka clients and slf4j come from the worker (Debezium declares them `provided`; the
# exclusion also keeps a transitive copy out of the plugin's class loader).
PLUGIN_EXCLUDED_GROUPS = "org.apache.kafka,org.slf4j"


def plugins_root() -> Path:
    return cache_root().parent / "plugins"


def plugin_dir(coords: tuple[str, str, str] = DEBEZIUM_POSTGRES) -> Path:
    """One plugin's directory, ``<cache>/plugins/<artifact>-<version>/`` (jars directly inside), in the
    directory the workers' ``plugin.path`` names (``plugins_root()``)."""
    _, artifact, version = coords
    return plugins_root() / f"{artifact}-{version}"


def _render_plugin_pom(coords: tuple[str, str, str]) -> str:
    group, artifact, version = (escape(x) for x in coords)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>kafka-connect-exporter.tests</groupId>
  <artifactId>plugin-{artifact}</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId><version>{version}</version></dependency>
  </dependencies>
</project>
"""


def plugin_complete(coords: tuple[str, str, str] = DEBEZIUM_POSTGRES) -> bool:
    target = plugin_dir(coords)
    try:
        data = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
        jars: dict[str, int] = data["jars"]
        if data["coordinates"] != list(coords):
            return False
        return bool(jars) and all((target / n).stat().st_size == size for n, size in jars.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def fetch_plugin(coords: tuple[str, str, str] = DEBEZIUM_POSTGRES, *, quiet: bool = False) -> dict[str, float]:
    """Make sure ``plugin_dir(coords)`` holds the plugin and its runtime dependencies (Maven Central only)."""
    start = time.monotonic()
    target = plugin_dir(coords)
    if plugin_complete(coords):
        return {"seconds": time.monotonic() - start, "bytes": _size(target), "downloaded": 0.0}
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError("Maven ('mvn') is not on PATH; it is needed to fetch connector plugins from Maven Central")
    with _locked(target.name):
        if plugin_complete(coords):
            return {"seconds": time.monotonic() - start, "bytes": _size(target), "downloaded": 0.0}
        m2_before = _size(_m2_repo())
        plugins_root().mkdir(parents=True, exist_ok=True)
        # Work outside plugins_root(): a worker scans every directory there.
        with tempfile.TemporaryDirectory(prefix=f"fetch-{target.name}-", dir=cache_root()) as tmp:
            tmp_path = Path(tmp)
            (tmp_path / "pom.xml").write_text(_render_plugin_pom(coords), encoding="utf-8")
            (tmp_path / "settings.xml").write_text(SETTINGS_XML, encoding="utf-8")
            out = tmp_path / "jars"
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
                f"-DexcludeGroupIds={PLUGIN_EXCLUDED_GROUPS}",
            ]
            if not quiet:
                print(f"[fetch] plugin {':'.join(coords)}: {' '.join(cmd[1:])}", flush=True)
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(
                    f"mvn failed for {':'.join(coords)} (exit {proc.returncode}):\n"
                    f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
                )
            jars = {p.name: p.stat().st_size for p in sorted(out.glob("*.jar"))}
            if f"{coords[1]}-{coords[2]}.jar" not in jars:
                raise RuntimeError(f"Maven did not deliver {coords[1]}-{coords[2]}.jar")
            (out / MANIFEST).write_text(
                json.dumps({"coordinates": list(coords), "jars": jars}, indent=1, sort_keys=True), encoding="utf-8"
            )
            stale = cache_root() / f"{target.name}.stale-{os.getpid()}"
            if target.exists():
                target.rename(stale)
            out.rename(target)
            shutil.rmtree(stale, ignore_errors=True)
        downloaded = max(0, _size(_m2_repo()) - m2_before)
    return {"seconds": time.monotonic() - start, "bytes": float(sum(jars.values())), "downloaded": float(downloaded)}


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
    if not args.versions:  # the default run (make kafka) also fetches the third-party plugins
        for coords in PLUGINS:
            try:
                facts = fetch_plugin(coords)
            except RuntimeError as exc:
                print(f"[fetch] plugin {':'.join(coords)}: FAILED: {exc}", file=sys.stderr)
                return 1
            print(
                f"[fetch] plugin {':'.join(coords)}: {plugin_dir(coords)} ready, "
                f"{facts['bytes'] / 1e6:.1f} MB of jars, {facts['seconds']:.1f}s",
                flush=True,
            )
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
