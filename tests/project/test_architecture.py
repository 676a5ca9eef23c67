"""The shape of the packages: which module may import which.

Read from the source with ``ast`` (nothing is imported), counting imports inside functions too, since a
late import is still a dependency. Covers every module of the ``exporter`` and ``simulator`` packages.
A submodule's implicit load of its package's ``__init__`` is not an edge: those files import only their
own submodules (``simulator/__init__.py`` re-exports), which Python resolves in either order.
"""

from __future__ import annotations

import ast
import graphlib
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
    "exporter.features",
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
