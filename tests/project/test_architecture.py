"""The shape of the packages: which module may import which, and who may publish.

Read from the source with ``ast`` (nothing is imported), counting imports inside functions too, since a
late import is still a dependency. Covers every module of the ``exporter`` and ``simulator`` packages, and the
test modules' imports of each other. A submodule's implicit load of its package's ``__init__`` is not an edge:
those files import only their own submodules (``simulator/__init__.py`` re-exports), which Python resolves in
either order.
"""

from __future__ import annotations

import ast
import graphlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("exporter", "simulator")
SETTINGS_LEAF = "exporter.settings"
# The demo runs the simulator in-process; nothing else in the exporter may depend on it.
MAY_IMPORT_SIMULATOR = {"exporter.demo", "exporter.cli"}
# Readers see only snapshots and typed readings; the modules that talk to the network are the sources'.
READERS = (
    "exporter.connect.metrics",
    "exporter.connect.web",
    "exporter.own_metrics",
    "exporter.render",
    "exporter.page",
    "exporter.exposition",
    "exporter.web",
    "exporter.cloud.metrics",
    "exporter.healer.metrics",
    "exporter.healer.web",
    "exporter.failures.metrics",
    "exporter.failures.web",
    "exporter.offsets.metrics",
    "exporter.offsets.web",
)
SOURCES = (
    "exporter.connect.client",
    "exporter.connect.poller",
    "exporter.cloud.source",
    "exporter.cloud.http",
    "exporter.cloud.status",
    "exporter.cloud.query",
    "exporter.healer.runner",
    "exporter.healer.client",
    "exporter.offsets.reader",
    "exporter.offsets.brokers",
    "exporter.connect.workers",
    "exporter.failures.tracker",
)


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    imports: set[str] = field(default_factory=set)  # modules of ours this one imports
    private: list[str] = field(default_factory=list)  # "line N: what" for each private name it reaches


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _ours(name: str) -> bool:
    return name.split(".", maxsplit=1)[0] in PACKAGES


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _scan(known: dict[str, Module]) -> None:
    for module in known.values():
        tree = ast.parse(module.path.read_text(encoding="utf-8"), filename=str(module.path))
        bound: dict[str, str] = {}  # local name -> module of ours it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if not _ours(alias.name):
                        continue
                    module.imports.add(_nearest_module(alias.name, known))
                    if alias.asname:
                        bound[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        bound[top] = top
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(module, node)
                if not _ours(base):
                    continue
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    if target in known:  # `from package import module`
                        module.imports.add(target)
                        bound[alias.asname or alias.name] = target
                    else:
                        module.imports.add(_nearest_module(base, known))
                    if _private(alias.name):
                        module.private.append(f"line {node.lineno}: from {base} import {alias.name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                owner = _dotted(node.value, bound)
                if owner is not None and owner in known and owner != module.name:
                    module.private.append(f"line {node.lineno}: {owner}.{node.attr}")
        module.imports.discard(module.name)


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.name.split(".")
    if not module.is_package:
        parts.pop()
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, node.module] if node.module else parts)


def _nearest_module(name: str, known: dict[str, Module]) -> str:
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _dotted(node: ast.expr, bound: dict[str, str]) -> str | None:
    """``exporter.cpu_worker`` for ``exporter.cpu_worker`` or ``cw`` when those names are imported modules."""
    if isinstance(node, ast.Name):
        return bound.get(node.id)
    if isinstance(node, ast.Attribute):
        owner = _dotted(node.value, bound)
        return f"{owner}.{node.attr}" if owner is not None else None
    return None


def _modules() -> dict[str, Module]:
    known = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = _module_name(path)
            known[name] = Module(name, path, path.name == "__init__.py")
    _scan(known)
    return known


MODULES = _modules()


def _cycles(graph: dict[str, set[str]]) -> Iterator[list[str]]:
    """Every cycle graphlib finds, breaking each one found so the next can be reported too."""
    graph = {name: set(deps) for name, deps in graph.items()}
    while True:
        try:
            graphlib.TopologicalSorter(graph).prepare()
            return
        except graphlib.CycleError as exc:
            cycle: list[str] = exc.args[1]  # [a, b, ..., a], each importing the one before it
            yield cycle
            graph[cycle[1]].discard(cycle[0])


def test_modules_are_found() -> None:
    # The checks below prove nothing if the scan saw nothing.
    assert {"exporter.config", "exporter.settings", "exporter.cli", "simulator"} <= set(MODULES)
    assert "exporter.settings" in MODULES["exporter.config"].imports
    assert "exporter.config" in MODULES["exporter.cli"].imports


def test_no_import_cycles() -> None:
    graph = {m.name: m.imports & set(MODULES) for m in MODULES.values()}
    found = [" -> ".join(reversed(cycle)) for cycle in _cycles(graph)]
    assert not found, (
        "import cycle(s) among the package's modules:\n  "
        + "\n  ".join(found)
        + "\nMove what both sides need into a module that neither imports (shared settings types belong in "
        f"{SETTINGS_LEAF}), or pass it in as an argument; do not hide the cycle with a late import."
    )


def test_no_private_names_across_modules() -> None:
    found = [f"{m.name} ({m.path.relative_to(ROOT)}) {where}" for m in MODULES.values() for where in m.private]
    assert not found, (
        "private names used from another module:\n  "
        + "\n  ".join(found)
        + "\nA leading underscore means 'only this module uses it'. Make the name public (and name it for what "
        "it is) if other modules need it, or move the code that needs it into its module."
    )


def test_exporter_does_not_depend_on_the_simulator() -> None:
    found = sorted(
        f"{m.name} imports {', '.join(sorted(i for i in m.imports if i.split('.')[0] == 'simulator'))}"
        for m in MODULES.values()
        if m.name.split(".")[0] == "exporter"
        and m.name not in MAY_IMPORT_SIMULATOR
        and any(i.split(".")[0] == "simulator" for i in m.imports)
    )
    assert not found, (
        "the exporter imports the simulator:\n  "
        + "\n  ".join(found)
        + f"\nOnly the demo ({', '.join(sorted(MAY_IMPORT_SIMULATOR))}) runs the simulator; production code must "
        "work without it. Move shared code into the exporter package (the simulator may import the exporter)."
    )


def test_settings_leaf_imports_nothing_of_ours() -> None:
    ours = sorted(MODULES[SETTINGS_LEAF].imports)
    assert not ours, (
        f"{SETTINGS_LEAF} imports {', '.join(ours)}. It is the leaf every config section builds on, so it may "
        "import only the standard library and third-party packages; move the feature-specific part into that "
        "feature's config module instead."
    )


def _reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for dep in MODULES[todo.pop()].imports:
            if dep in MODULES and dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_readers_import_no_source_module() -> None:
    assert set(READERS) <= set(MODULES), "a reader module was renamed: update READERS"
    found = sorted(
        f"{reader} reaches {', '.join(sorted(_reachable(reader) & set(SOURCES)))}"
        for reader in READERS
        if _reachable(reader) & set(SOURCES)
    )
    assert not found, (
        "readers import source modules (directly or through others):\n  "
        + "\n  ".join(found)
        + "\nReaders get what they show from the store (snapshots and typed readings). Put the shared type or "
        "constant in the feature's reading module (or exporter.model) and import it from there."
    )


# -- packages ---------------------------------------------------------------------------------------------------


def unit_of(module: str) -> str:
    """The package a module belongs to for the package-level checks: ``exporter.healer.runner`` ->
    ``exporter.healer``; a top-level module (``exporter.daemon``, ``exporter.model``) is a unit of its own."""
    parts = module.split(".")
    if len(parts) > 1 and MODULES.get(".".join(parts[:2])) is not None and MODULES[".".join(parts[:2])].is_package:
        return ".".join(parts[:2])
    return module


def package_graph(modules: dict[str, Module]) -> dict[str, dict[str, list[str]]]:
    """unit -> unit it imports -> the module-level imports that make that edge (``a -> b``)."""
    graph: dict[str, dict[str, list[str]]] = {}
    for m in modules.values():
        graph.setdefault(unit_of(m.name), {})
        for dep in m.imports & set(modules):
            if unit_of(dep) != unit_of(m.name):
                graph[unit_of(m.name)].setdefault(unit_of(dep), []).append(f"{m.name} -> {dep}")
    return graph


def package_cycles(modules: dict[str, Module]) -> list[str]:
    graph = package_graph(modules)
    found = []
    for cycle in _cycles({unit: set(deps) for unit, deps in graph.items()}):
        steps = list(reversed(cycle))  # each unit imports the next
        why = "; ".join(sorted(graph[a][b])[0] for a, b in itertools.pairwise(steps))
        found.append(" -> ".join(steps) + f"  ({why})")
    return found


def test_package_edges_run_one_way() -> None:
    found = package_cycles(MODULES)
    assert not found, (
        "packages import each other (a cycle of package-level edges):\n  "
        + "\n  ".join(found)
        + "\nA feature package may use the core modules and the packages it acts on (healer and offsets use "
        "connect; failures reads the readings of healer and offsets), never the other way. Move the shared fact "
        "into a core module (exporter.model, exporter.fingerprint), or have the composition (exporter.config, "
        "exporter.daemon, exporter.features) bring the two together."
    )


def config_imports_across_features(modules: dict[str, Module]) -> list[str]:
    """``m imports exporter.<other>.config`` for every module of a feature package that imports another
    feature's config section (only the composition, outside the feature packages, may)."""
    found = []
    for m in modules.values():
        unit = unit_of(m.name)
        if unit == m.name or not unit.startswith("exporter."):
            continue
        found.extend(
            f"{m.name} imports {dep}"
            for dep in sorted(m.imports)
            if dep.endswith(".config") and unit_of(dep) != unit and unit_of(dep).startswith("exporter.")
        )
    return found


def test_features_do_not_import_each_other_s_config() -> None:
    found = config_imports_across_features(MODULES)
    assert not found, (
        "feature packages import another feature's config section:\n  "
        + "\n  ".join(found)
        + "\nexporter.config composes the sections (ClusterConfig); a feature describes what it needs of the "
        "rest as a Protocol in its own config module (e.g. exporter.healer.config.AutohealCluster)."
    )


# -- one publishing path ---------------------------------------------------------------------------------------

# The store's methods that change what readers see. Only the daemon calls them: sources and derived steps return
# snapshots and readings, and the daemon publishes them (exporter/daemon.py, docs/architecture.md).
STORE_WRITES = ("publish", "publish_cluster", "remove_cluster", "discard", "expect", "derive")
PUBLISHER = "exporter.daemon"
# Modules that hold the store itself (to read its view); everything else gets a View or what the daemon hands it.
MAY_HOLD_STORE = {"exporter.daemon", "exporter.exposition", "exporter.web", "exporter.store"}


def publishing_paths(modules: dict[str, Module]) -> list[str]:
    found = []
    for m in modules.values():
        if not m.name.startswith("exporter.") or m.name in (PUBLISHER, "exporter.store"):
            continue
        tree = ast.parse(m.path.read_text(encoding="utf-8"), filename=str(m.path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and _absolute(m, node) == "exporter.store":
                names = {a.name for a in node.names}
                if "Store" in names and m.name not in MAY_HOLD_STORE:
                    found.append(f"{m.name} line {node.lineno}: imports exporter.store.Store")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in STORE_WRITES
                and "store" in ast.unparse(node.func.value).lower()
            ):
                found.append(f"{m.name} line {node.lineno}: {ast.unparse(node.func)}(...)")
    return found


def test_only_the_daemon_publishes() -> None:
    found = publishing_paths(MODULES)
    assert not found, (
        "a second publishing path (only exporter.daemon writes to the store):\n  "
        + "\n  ".join(found)
        + "\nReturn the snapshot or reading from the job (JobFunc) or the derived step (Store.derive) and let "
        "the daemon publish it."
    )


# -- one place a feature registers -----------------------------------------------------------------------------

# The daemon runs what exporter.features lists (plugs, metric groups, page sections) and names no feature itself.
FEATURE_REGISTRY = "exporter.features"
GENERIC = ("exporter.daemon",)


def features_wired_by_name(modules: dict[str, Module]) -> list[str]:
    """``m imports exporter.<feature>.<module>`` wherever a generic module (the daemon) imports a feature package
    (``exporter.<feature>``: a package under ``exporter/``) rather than taking it from the registry."""
    return sorted(
        f"{name} imports {dep}"
        for name in GENERIC
        for dep in modules[name].imports
        if dep.startswith("exporter.") and unit_of(dep) != "exporter" and modules[unit_of(dep)].is_package
    )


def test_features_register_in_one_place() -> None:
    assert FEATURE_REGISTRY in MODULES["exporter.daemon"].imports, "the daemon no longer reads the registry"
    assert any(unit_of(dep) != dep for dep in MODULES[FEATURE_REGISTRY].imports), "the registry lists no feature"
    found = features_wired_by_name(MODULES)
    assert not found, (
        "a feature is wired into the daemon by name:\n  "
        + "\n  ".join(found)
        + "\nRegister it in exporter/features.py instead: a Plug in plugs() (the jobs it adds for a cluster or the "
        "configuration, its derived step, what a reload drops) and its readers in metric_groups() and "
        "PAGE_SECTIONS; the daemon runs them all in order."
    )


# -- tests -------------------------------------------------------------------------------------------------------

TESTS = ROOT / "tests"


def _is_test_module(name: str) -> bool:
    last = name.rsplit(".", 1)[-1]
    return last.startswith("test_") or last == "conftest"


def imports_of_test_modules(paths: list[Path]) -> list[str]:
    """``importer imports imported`` wherever a file under tests/ imports a test module or a conftest."""
    found = []
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's own package up
                    base = ".".join([*package[: len(package) - (node.level - 1)], *([base] if base else [])])
                if not base.startswith("tests"):
                    continue
                targets = [base, *(f"{base}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("tests")]
            else:
                continue
            found.extend(
                f"{path.relative_to(ROOT)} line {node.lineno} imports {t}" for t in targets if _is_test_module(t)
            )
    return found


def test_no_test_module_imports_another() -> None:
    paths = sorted(TESTS.rglob("*.py"))
    assert len(paths) > 50, "the scan saw no tests"
    found = imports_of_test_modules(paths)
    assert not found, (
        "test modules imported by other files (each test module stands alone):\n  "
        + "\n  ".join(found)
        + "\nMove what they share into tests/support/ or a helper module of the folder (not named test_*), and "
        "shared fixtures into the folder's conftest.py."
    )
