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

from .errors import MigrationFileError
from .spec import Migration


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
        raise MigrationFileError(f"{path}: {_describe(exc)}") from exc
    return module


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as exc:
        raise MigrationFileError(f"module {name!r}: {_describe(exc)}") from exc


def _describe(exc: Exception) -> str:
    if isinstance(exc, SyntaxError):
        return f"syntax error at line {exc.lineno}: {exc.msg}"
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (line {frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


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
