"""Loading a migration definition from a Python file or an importable module.

``load("order_history.py")`` imports the file and takes its ``migration`` variable, or the only
:class:`Migration` it defines; ``load("package.module:name")`` does the same for a module on the
import path (how the Lambda handler finds a migration inside its bundle).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType

from rowferry.errors import MigrationFileError, RowferryError
from rowferry.migration.spec import Migration


def load(ref: str, name: str | None = None) -> Migration:
    """The migration defined at ``ref`` (a ``.py`` path or ``module[:attribute]``).

    With several migrations in one file, ``name`` picks one by its ``Migration.name``.
    """
    module_ref, _, attribute = ref.partition(":") if not ref.endswith(".py") else (ref, "", "")
    module = _import_file(Path(ref)) if ref.endswith(".py") else _import_module(module_ref)
    if attribute:
        found = getattr(module, attribute, None)
        if not isinstance(found, Migration):
            raise MigrationFileError(f"{ref}: {attribute!r} is not a Migration")
        return found
    return _pick(ref, module, name)


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise MigrationFileError(f"migration file {str(path)!r} does not exist")
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(f"rowferry_migration_{digest}", path)
    if spec is None or spec.loader is None:
        raise MigrationFileError(f"{path}: cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(spec.name, None)
        raise MigrationFileError(f"{path}: {_describe(exc, path.resolve())}") from exc
    return module


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as exc:
        raise MigrationFileError(f"module {name!r}: {_describe(exc, _origin(name))}") from exc


def _describe(exc: Exception, origin: Path | None) -> str:
    """What went wrong, at the last line of the migration's own code (``origin``: its file, or
    its package's folder) that led to it, rather than a line inside rowferry or a library."""
    if isinstance(exc, SyntaxError):
        return f"syntax error at line {exc.lineno}: {exc.msg}"
    theirs = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if origin is not None and _within(frame.filename, origin)
    ]
    where = f"line {theirs[-1].lineno}: " if theirs else ""
    what = str(exc) if isinstance(exc, RowferryError) else f"{type(exc).__name__}: {exc}"
    return where + what


def _within(filename: str, origin: Path) -> bool:
    path = Path(filename).resolve()
    return path == origin or (origin.is_dir() and path.is_relative_to(origin))


def _origin(name: str) -> Path | None:
    """The file of module ``name``, or the folder of package ``name``; None if not found."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    origin = Path(spec.origin).resolve()
    return origin.parent if spec.submodule_search_locations is not None else origin


def _pick(ref: str, module: ModuleType, name: str | None) -> Migration:
    found = {id(v): v for v in vars(module).values() if isinstance(v, Migration)}
    migrations = list(found.values())
    if name is not None:
        chosen = [m for m in migrations if m.name == name]
        if not chosen:
            known = ", ".join(m.name for m in migrations) or "none"
            raise MigrationFileError(f"{ref}: no migration named {name!r} (found: {known})")
        return chosen[0]
    default = getattr(module, "migration", None)
    if isinstance(default, Migration):
        return default
    if len(migrations) == 1:
        return migrations[0]
    if not migrations:
        raise MigrationFileError(
            f"{ref}: defines no Migration; assign one to a variable named 'migration'"
        )
    names = ", ".join(m.name for m in migrations)
    raise MigrationFileError(f"{ref}: defines several migrations ({names}); choose one with --name")
