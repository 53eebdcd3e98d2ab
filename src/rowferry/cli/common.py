"""What the ``rowferry`` commands share: exit statuses, error mapping, option definitions.

Nothing here imports SQLAlchemy or rich: ``rowferry --version`` and ``--help`` load only click,
and each command imports what it needs when it runs.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, ClassVar, TypeVar

import click

from rowferry import defaults
from rowferry.errors import (
    AlreadyRunning,
    ConfigError,
    ConnectError,
    MigrationChanged,
    RowferryError,
)
from rowferry.urls import mask_secrets

if TYPE_CHECKING:
    from rowferry.state.store import MigrationState

F = TypeVar("F", bound=Callable[..., Any])

EXIT_STATUSES = f"""\b
Exit statuses:
  {defaults.EXIT_DONE}  done: every qualifying row is migrated (or, for a migration that
     follows its source, caught up with its changes)
  {defaults.EXIT_FAILED}  failed: a statement or the transform failed (see the message and
     'rowferry status'); fix the cause and run again, it resumes
  {defaults.EXIT_CONFIG}  refused: bad arguments, migration file, URL or schema, an unknown
     migration, or one changed since its progress was saved; nothing was written
  {defaults.EXIT_STOPPED}  stopped by the time budget, a chunk limit, a signal or the throttle: run
     again
  {defaults.EXIT_ALREADY_RUNNING}  another run holds the migration's lease: try again later
  {defaults.EXIT_MISMATCH}  verify: the target does not match the source (missing, duplicate or
     extra keys, or rows that differ)
  {defaults.EXIT_PAUSED}  paused ('rowferry pause'): no trip runs it until 'rowferry resume'
  {defaults.EXIT_CANCELLED}  cancelled ('rowferry cancel'): no trip runs it until 'rowferry reset'
"""

#: The ``status`` of a ``--json`` error object, by exit status.
_KINDS = {
    defaults.EXIT_FAILED: "failed",
    defaults.EXIT_CONFIG: "refused",
    defaults.EXIT_STOPPED: "stopped",
    defaults.EXIT_ALREADY_RUNNING: "busy",
}


class Failure(click.ClickException):
    """A library error shown as ``Error: message``, exit status 1 (see :func:`failure`)."""

    exit_code = defaults.EXIT_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(mask_secrets(message))


class Refused(Failure):
    """Bad arguments, migration file, URL or schema, or an unknown migration: nothing was
    written."""

    exit_code = defaults.EXIT_CONFIG


class Busy(Failure):
    """Another run holds the migration's lease."""

    exit_code = defaults.EXIT_ALREADY_RUNNING


class Stopped(Failure):
    """Stopped at once by a second signal: shown without ``Error:``, exit status 3."""

    exit_code = defaults.EXIT_STOPPED

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.format_message(), file=file, err=file is None)


def failure(error: RowferryError) -> Failure:
    """The CLI error, with the exit status of the library error's kind."""
    if isinstance(error, ConfigError | ConnectError | MigrationChanged):
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


class Commands(click.Group):
    """The ``rowferry`` group: each error is printed once, as ``Error: ...`` on stderr, or, when
    the command line asks for ``--json``, as one JSON object on stdout (see :func:`json_error`);
    the exit status is the same either way."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["rowferry.json"] = "--json" in args
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as exc:
            if not ctx.meta.get("rowferry.json"):
                raise
            click.echo(json_error(exc.format_message(), exc.exit_code))
            raise click.exceptions.Exit(exc.exit_code) from exc


def json_error(message: str, exit_status: int) -> str:
    """``{"status": "refused", "exit_status": 2, "error": "..."}``: an error under ``--json``."""
    kind = _KINDS.get(exit_status, "failed")
    return json.dumps({"status": kind, "exit_status": exit_status, "error": message})


class Duration(click.ParamType):  # type: ignore[type-arg]
    """``25s``, ``500ms``, ``2m``, ``1h`` or a plain number of seconds (above 0, or at least 0
    with ``zero``)."""

    name = "duration"
    _units: ClassVar[dict[str, float]] = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "": 1.0}

    def __init__(self, zero: bool = False) -> None:
        self.zero = zero

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float):
            return float(value)
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|)\s*", str(value))
        if not match or (float(match[1]) <= 0 and not self.zero):
            self.fail(f"{value!r} is not a duration like 25s, 500ms or 2m", param, ctx)
        return float(match[1]) * self._units[match[2]]


class Percent(click.ParamType):  # type: ignore[type-arg]
    """``50%`` or ``50``: a share of the wall time, above 0 and at most 100."""

    name = "percent"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float):
            return float(value)
        from rowferry.engine.throttle import parse_percent

        try:
            return parse_percent(str(value))
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)


class CheckQuery(click.ParamType):  # type: ignore[type-arg]
    """``SQL<=LIMIT``: a query that returns one number, and the most it may return."""

    name = "SQL<=LIMIT"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, float]:
        if isinstance(value, tuple):
            return value
        from rowferry.engine.throttle import parse_check

        try:
            return parse_check(str(value))
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)


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
STATE_TARGET = click.option(
    "--target",
    envvar="ROWFERRY_TARGET",
    metavar="URL",
    help="Database holding the rowferry_state table (env ROWFERRY_TARGET); default: the source.",
)
STATE_SOURCE = click.option(
    "--source",
    envvar="ROWFERRY_SOURCE",
    metavar="URL",
    help="Source database URL (env ROWFERRY_SOURCE): the state's database when there is no "
    "--target, as for 'rowferry run'.",
)


def state_url(target: str | None, source: str | None) -> str:
    """The database holding the state table: the target, or else the source (as ``run``)."""
    url = target or source
    if not url:
        raise click.UsageError(
            "say which database holds rowferry's state: --target URL (or ROWFERRY_TARGET), "
            "or --source URL (or ROWFERRY_SOURCE) when the migration's target is its source"
        )
    return url


def require_known(name: str, known: list[MigrationState]) -> None:
    """Refuse a migration name that has no row in the state table, naming those it has."""
    if any(m.name == name for m in known):
        return
    names = ", ".join(repr(m.name) for m in known) or "none"
    raise Refused(
        f"no migration named {name!r} is recorded in this database (recorded: {names}); "
        "check the name, and --target (or ROWFERRY_TARGET)"
    )


def plural(count: int, noun: str) -> str:
    """``1 chunk``, ``2 chunks``, ``1,000 chunks``."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


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


def max_replica_lag_option(default: float | None) -> Callable[[F], F]:
    return click.option(
        "--max-replica-lag",
        type=Duration(zero=True),
        default=default,
        show_default=default is not None,
        metavar="SECONDS",
        help="Wait before a chunk while a --replica is further behind than this.",
    )


MAX_THREADS_RUNNING = click.option(
    "--max-threads-running",
    type=click.IntRange(min=1),
    metavar="N",
    help="Wait before a chunk while the source runs more statements than this (MySQL/MariaDB "
    "Threads_running, PostgreSQL's active backends).",
)
MAX_HISTORY_LENGTH = click.option(
    "--max-history-length",
    type=click.IntRange(min=1),
    metavar="N",
    help="Wait before a chunk while InnoDB's history list on the source (undo not yet purged) "
    "is longer than this (MySQL/MariaDB).",
)
MAX_LOAD = click.option(
    "--max-load",
    type=Percent(),
    metavar="PERCENT",
    help="Work at most this share of the wall time: after a chunk of t seconds at 50%, a pause "
    "of t.",
)
SLEEP = click.option(
    "--sleep",
    type=Duration(zero=True),
    metavar="SECONDS",
    help="Pause this long after each chunk.",
)


def throttle_options(func: F) -> F:
    """The options of ``rowferry run`` that make its throttle, given to the command as one
    ``throttle`` argument (a :class:`~rowferry.engine.throttle.ThrottleOptions`)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from rowferry.engine.throttle import ThrottleOptions

        replicas = kwargs.pop("replicas")
        ctx = click.get_current_context()
        if not replicas and ctx.get_parameter_source("max_replica_lag") not in (
            click.core.ParameterSource.DEFAULT,
            None,
        ):
            raise click.UsageError("--max-replica-lag needs a --replica URL to watch")
        kwargs["throttle"] = ThrottleOptions(
            replicas=replicas,
            max_replica_lag=kwargs.pop("max_replica_lag"),
            max_threads_running=kwargs.pop("max_threads_running"),
            max_history_length=kwargs.pop("max_history_length"),
            checks=kwargs.pop("checks"),
            max_load=kwargs.pop("max_load"),
            sleep=kwargs.pop("sleep") or 0.0,
        )
        return func(*args, **kwargs)

    options = [
        click.option(
            "--replica",
            "replicas",
            multiple=True,
            metavar="URL",
            help="A replica (MySQL/MariaDB) or standby (PostgreSQL) of the source to watch; "
            "repeatable.",
        ),
        max_replica_lag_option(defaults.MAX_REPLICA_LAG_SECONDS),
        MAX_THREADS_RUNNING,
        MAX_HISTORY_LENGTH,
        click.option(
            "--check",
            "checks",
            type=CheckQuery(),
            multiple=True,
            help="Wait before a chunk while this query, run on the source, returns more than "
            "LIMIT; repeatable.",
        ),
        MAX_LOAD,
        SLEEP,
    ]
    decorated: Any = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]
