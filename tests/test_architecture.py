"""The import structure of ``src/rowferry``, ``harness/`` and ``bench/``, read with ``ast``.

Nothing here imports the modules it checks. Five rules:

- No import cycle among the modules checked. Only imports that run when a module is imported
  count: those at module level (also inside a module-level ``if``, ``try`` or class body). Imports
  inside functions run later, and imports under ``if TYPE_CHECKING:`` never run, so neither can
  make a cycle and neither counts here.
- No module imports another module's private (leading-underscore) name, neither as
  ``from rowferry.x import _name`` nor as ``x._name`` on an imported module. Anywhere in the
  module, functions included.
- Neither the package, nor the harness, nor the benchmarks import ``tests``.
- The folders of ``src/rowferry`` are layers (:data:`LAYERS`, docs/architecture.md): a module
  imports only from its own folder and the layers below it, by any import statement (in a
  function or under ``TYPE_CHECKING`` too). The package's ``__init__`` (the public names,
  imported on first use) is its front door, above every layer.
- No module outside ``rowferry.dialects`` asks which database it talks to by comparing a
  dialect's name (``conn.dialect.name == "sqlite"``): it asks the dialect object. The demo's
  reference workload is the exception: it loads test data the fastest way each driver has.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREES = {
    "rowferry": ROOT / "src" / "rowferry",
    "harness": ROOT / "harness",
    "bench": ROOT / "bench",
}


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    tree: ast.Module
    #: Modules imported when this module is imported (module level, outside TYPE_CHECKING).
    eager: set[str] = field(default_factory=set)
    #: Every module named by an import statement anywhere in this module.
    imported: set[str] = field(default_factory=set)


def _modules() -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for top, folder in TREES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [top, *path.relative_to(folder).with_suffix("").parts]
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            modules[name] = Module(name, path, is_package, tree)
    return modules


MODULES = _modules()


def _base(module: Module, node: ast.ImportFrom) -> str:
    """The absolute name of the module a ``from ... import`` statement imports from."""
    if not node.level:
        return node.module or ""
    package = module.name.split(".")
    if not module.is_package:
        package = package[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join(package + ([node.module] if node.module else []))


def _targets(module: Module, node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, str]]:
    """(module imported, name imported from it or "") for each name in an import statement."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name, ""
        return
    base = _base(module, node)
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        if submodule in MODULES:
            yield submodule, ""
        else:
            yield base, alias.name


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _eager_imports(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that run when a module with this body is imported."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _eager_imports(node.body)
            yield from _eager_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _eager_imports(block)
            for handler in node.handlers:
                yield from _eager_imports(handler.body)
        elif isinstance(node, ast.With | ast.ClassDef):
            yield from _eager_imports(node.body)


def _known(name: str) -> str | None:
    """The checked module ``name`` refers to (itself, or the nearest enclosing package)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _read_imports(module: Module) -> None:
    for statement in _eager_imports(module.tree.body):
        for target, _ in _targets(module, statement):
            found = _known(target)
            if found and found != module.name:
                module.eager.add(found)
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            module.imported.update(target for target, _ in _targets(module, node))


for _module in MODULES.values():
    _read_imports(_module)


def _cycles() -> list[list[str]]:
    """Each strongly connected group of more than one module (Tarjan), as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        on_stack.add(name)
        for other in sorted(MODULES[name].eager):
            if other not in index:
                visit(other)
                low[name] = min(low[name], low[other])
            elif other in on_stack:
                low[name] = min(low[name], index[other])
        if low[name] == index[name]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == name:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for name in sorted(MODULES):
        if name not in index:
            visit(name)
    return groups


def _private_uses(module: Module) -> Iterator[str]:
    """``module.name: other._name`` for each private name of another checked module it uses."""
    aliases: dict[str, str] = {}  # local name -> checked module it is bound to
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.name if alias.asname else alias.name.partition(".")[0]
                if bound in MODULES:
                    aliases[alias.asname or bound] = bound
        elif isinstance(node, ast.ImportFrom):
            for alias, (target, name) in zip(node.names, _targets(module, node), strict=True):
                if not name:
                    if target in MODULES:
                        aliases[alias.asname or alias.name] = target
                elif _private(name) and _known(target) and target != module.name:
                    yield f"{module.name}: from {target} import {name}"
    for node in ast.walk(module.tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and aliases[node.value.id] != module.name
            and _private(node.attr)
        ):
            yield f"{module.name}: {aliases[node.value.id]}.{node.attr}"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


#: The layers of ``src/rowferry``, lowest first; the top-level modules ``errors``, ``defaults``,
#: ``urls``, ``documents`` and ``cursor`` are the foundation, below them all.
LAYERS: list[set[str]] = [
    {"errors", "defaults", "urls", "documents", "cursor"},
    {"migration"},
    {"drivers"},
    {"dialects"},
    {"schema"},
    {"state"},
    {"chunks"},
    {"engine"},
    {"plan", "requeue", "verify"},
    {"aws", "demo"},
    {"cli", "__main__"},
]
_LAYER_OF = {part: level for level, parts in enumerate(LAYERS) for part in parts}
#: modules that compare dialect names, and why they may
NAME_COMPARISONS_ALLOWED = ("rowferry.dialects", "rowferry.demo.workload")
_DIALECT_NAMES = {"sqlite", "mysql", "mariadb", "postgresql"}


def _layer(name: str) -> int | None:
    """The layer of module ``rowferry.<part>...``; None for the package's ``__init__``."""
    parts = name.split(".")
    if parts[0] != "rowferry" or len(parts) == 1:
        return None
    return _LAYER_OF[parts[1]]


def _layer_violations(module: Module) -> Iterator[str]:
    mine = _layer(module.name)
    if mine is None:
        return
    for target in module.imported:
        found = _known(target)
        theirs = _layer(found) if found else None
        same_folder = found is not None and found.split(".")[:2] == module.name.split(".")[:2]
        if theirs is not None and theirs > mine and not same_folder:
            yield f"{module.name} (layer {mine}) imports {found} (layer {theirs})"


def _names_compared(module: Module) -> Iterator[str]:
    for node in ast.walk(module.tree):
        if not isinstance(node, ast.Compare):
            continue
        values = [node.left, *node.comparators]
        constants = {
            c.value
            for v in values
            for c in ([v] if isinstance(v, ast.Constant) else getattr(v, "elts", []))
            if isinstance(c, ast.Constant)
        }
        if constants & _DIALECT_NAMES:
            yield f"{module.name}:{node.lineno} compares {sorted(constants & _DIALECT_NAMES)}"


def test_the_folders_of_the_package_are_layers() -> None:
    unknown = sorted(
        {m.split(".")[1] for m in MODULES if m.startswith("rowferry.")} - set(_LAYER_OF)
    )
    assert not unknown, f"folders or modules with no layer in LAYERS: {unknown}"
    offenders = sorted(v for module in MODULES.values() for v in _layer_violations(module))
    assert not offenders, "imports of a higher layer:\n" + "\n".join(offenders)


def test_only_the_dialects_compare_database_names() -> None:
    offenders = sorted(
        found
        for module in MODULES.values()
        if module.name.startswith("rowferry.")
        and not module.name.startswith(NAME_COMPARISONS_ALLOWED)
        for found in _names_compared(module)
    )
    assert not offenders, "per-database differences outside dialects/:\n" + "\n".join(offenders)


def test_no_import_cycles() -> None:
    cycles = [" <-> ".join(group) for group in _cycles()]
    assert not cycles, "modules that import each other at import time:\n" + "\n".join(cycles)


def test_no_module_imports_another_modules_private_names() -> None:
    offenders = sorted({use for module in MODULES.values() for use in _private_uses(module)})
    assert not offenders, "private names used across modules:\n" + "\n".join(offenders)


def test_package_harness_and_benchmarks_do_not_import_tests() -> None:
    offenders = sorted(
        f"{module.name} imports {target}"
        for module in MODULES.values()
        for target in module.imported
        if target == "tests" or target.startswith("tests.")
    )
    assert not offenders, "imports of tests/ outside tests/:\n" + "\n".join(offenders)


def test_the_checks_see_the_package() -> None:
    """A guard against checking nothing: the trees are found and their imports read."""
    assert "rowferry.engine.run" in MODULES
    assert "bench.soak" in MODULES
    assert "harness.faults" in MODULES["bench.soak"].eager
    assert "rowferry.errors" in MODULES["rowferry.engine.trip"].eager
    assert list(_names_compared(MODULES["rowferry.dialects.connect"]))  # compares, allowed there
    trip = MODULES["rowferry.engine.trip"]
    assert not list(_layer_violations(trip))
    trip_upside_down = Module(
        "rowferry.drivers.trip", trip.path, False, trip.tree, set(), trip.imported
    )
    assert list(_layer_violations(trip_upside_down))  # a driver may not import the engine
