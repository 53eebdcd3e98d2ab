"""What the ``rowferry`` commands share: exit statuses, error mapping, option definitions."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import click

from . import defaults
from .errors import AlreadyRunning, ConfigError, ConnectError, RowferryError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_STATUSES = f"""\b
Exit statuses:
  {defaults.EXIT_DONE}  done: every qualifying row is migrated
  {defaults.EXIT_FAILED}  failed: a statement or the transform failed (see the message and
     'rowferry status'); fix the cause and run again, it resumes
  {defaults.EXIT_CONFIG}  refused: bad arguments, migration file, URL or schema; nothing was written
  {defaults.EXIT_STOPPED}  stopped by the time budget, a chunk limit or a signal: run again
  {defaults.EXIT_ALREADY_RUNNING}  another run holds the migration's lease: try again later
  {defaults.EXIT_MISMATCH}  verify: the target does not match the source (missing, duplicate or
     extra keys, or rows that differ)
"""


class Failure(click.ClickException):
    """A library error shown as ``Error: message``, exit status 1 (see :func:`failure`)."""

    exit_code = defaults.EXIT_FAILED


class Refused(Failure):
    """Bad arguments, migration file, URL or schema: nothing was written."""

    exit_code = defaults.EXIT_CONFIG


class Busy(Failure):
    """Another run holds the migration's lease."""

    exit_code = defaults.EXIT_ALREADY_RUNNING


def failure(error: RowferryError) -> Failure:
    """The CLI error, with the exit status of the library error's kind."""
    if isinstance(error, ConfigError | ConnectError):
        return Refused(str(error))
    if isinstance(error, AlreadyRunning):
        return Busy(str(error))
    return Failure(str(error))


def library_errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RowferryError as exc:
            raise failure(exc) from exc

    return wrapper  # type: ignore[return-value]


class Duration(click.ParamType):  # type: ignore[type-arg]
    """``25s``, ``500ms``, ``2m``, ``1h`` or a plain number of seconds."""

    name = "duration"
    _units: ClassVar[dict[str, float]] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "": 1.0}

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float):
            return float(value)
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|)\s*", str(value))
        if not match or float(match[1]) <= 0:
            self.fail(f"{value!r} is not a duration like 25s, 500ms or 2m", param, ctx)
        return float(match[1]) * self._units[match[2]]


SOURCE = click.option(
    "--source",
    envvar="ROWFERRY_SOURCE",
    required=True,
    metavar="URL",
    help="Source database URL (env ROWFERRY_SOURCE), e.g. mysql+pymysql://user:pw@host/db.",
)
TARGET = click.option(
    "--target",
    envvar="ROWFERRY_TARGET",
    metavar="URL",
    help="Target database URL (env ROWFERRY_TARGET); default: the source.",
)
TARGET_REQUIRED = click.option(
    "--target",
    envvar="ROWFERRY_TARGET",
    required=True,
    metavar="URL",
    help="Database holding the rowferry_state table (env ROWFERRY_TARGET).",
)


class ChunkSizeType(click.ParamType):  # type: ignore[type-arg]
    """``auto`` or a whole number of root rows."""

    name = "auto|ROWS"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value == "auto" or isinstance(value, int):
            return value
        try:
            rows = int(value)
        except ValueError:
            self.fail(f"{value!r} is neither 'auto' nor a number of rows", param, ctx)
        if rows < 1:
            self.fail(f"{rows} is less than 1", param, ctx)
        return rows


CHUNK_SIZE = click.option(
    "--chunk-size",
    type=ChunkSizeType(),
    default="auto",
    show_default=True,
    help="Root rows per chunk, or 'auto': sized from measured chunks to about "
    f"{defaults.TARGET_CHUNK_SECONDS:g} s each, starting at {defaults.CHUNK_SIZE:,}.",
)
PUSHDOWN = click.option(
    "--pushdown/--no-pushdown",
    default=None,
    help="Have the database build the rows (INSERT ... SELECT), or not; default: what the "
    "migration says (Migration(pushdown=...)).",
)
NAME = click.option("--name", help="Which migration of the file, if it defines several.")
AS_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
