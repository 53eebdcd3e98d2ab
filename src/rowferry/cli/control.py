"""``rowferry pause``, ``resume``, ``cancel`` and ``set``: a migration told what to do from
outside, through its state row (:mod:`rowferry.state.control`), whichever runner runs its
trips (the command line, the Lambda handler)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from rowferry.cli.common import (
    EXIT_STATUSES,
    MAX_HISTORY_LENGTH,
    MAX_LOAD,
    MAX_THREADS_RUNNING,
    SLEEP,
    STATE_SOURCE,
    STATE_TARGET,
    Duration,
    library_errors,
    max_replica_lag_option,
    require_known,
    state_url,
)

if TYPE_CHECKING:
    from rowferry.state.control import Action, Settings


@click.command(epilog=EXIT_STATUSES)
@click.argument("name")
@STATE_TARGET
@STATE_SOURCE
@library_errors
def pause(name: str, target: str | None, source: str | None) -> None:
    """Pause migration NAME: a running trip stops before its next chunk, and later trips do
    nothing (exit status 6) until 'rowferry resume NAME'. What was written stays."""
    if _hold(name, target, source, "pause"):
        click.echo(f"{name}: paused; a running trip stops before its next chunk")
    else:
        click.echo(f"{name}: already paused")


@click.command(epilog=EXIT_STATUSES)
@click.argument("name")
@STATE_TARGET
@STATE_SOURCE
@library_errors
def resume(name: str, target: str | None, source: str | None) -> None:
    """Resume migration NAME after 'rowferry pause': its next trip continues where the last
    committed chunk left off. A cancelled migration is not resumed ('rowferry reset')."""
    if _hold(name, target, source, "resume"):
        click.echo(f"{name}: resumed; its next trip continues")
    else:
        click.echo(f"{name}: not paused, nothing changed")


@click.command(epilog=EXIT_STATUSES)
@click.argument("name")
@STATE_TARGET
@STATE_SOURCE
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@library_errors
def cancel(name: str, target: str | None, source: str | None, yes: bool) -> None:
    """Cancel migration NAME: a running trip stops before its next chunk, and no trip runs it
    again (exit status 7). What was written stays; 'rowferry reset NAME' forgets its progress
    so that it starts over."""
    if not yes and not click.confirm(f"Cancel migration {name!r} for good?"):
        click.echo(f"{name}: nothing changed")
        return
    if _hold(name, target, source, "cancel"):
        click.echo(f"{name}: cancelled; a running trip stops before its next chunk")
    else:
        click.echo(f"{name}: already cancelled")


@click.command(epilog=EXIT_STATUSES)
@click.argument("name")
@STATE_TARGET
@STATE_SOURCE
@click.option(
    "--chunk-seconds",
    type=Duration(),
    metavar="SECONDS",
    help="The duration --chunk-size auto aims each chunk at (runners' default: 0.5 s).",
)
@max_replica_lag_option(None)
@MAX_THREADS_RUNNING
@MAX_HISTORY_LENGTH
@MAX_LOAD
@SLEEP
@click.option(
    "--clear", is_flag=True, help="Forget the values set before (then set those given here)."
)
@library_errors
def set_command(
    name: str,
    target: str | None,
    source: str | None,
    chunk_seconds: float | None,
    max_replica_lag: float | None,
    max_threads_running: int | None,
    max_history_length: int | None,
    max_load: float | None,
    sleep: float | None,
    clear: bool,
) -> None:
    """Change the chunk duration and the throttle's limits of migration NAME, while it runs.

    The values are kept in its state row and replace the runners' own options (those of
    'rowferry run', the Lambda handler's environment) from a running trip's next chunk on,
    and in every later trip, until --clear. Limits apply to the gates a runner has
    (--max-replica-lag to its replicas, for instance); --max-load and --sleep to every
    runner. With no option, shows the values set.
    """
    from rowferry.state.control import Settings

    settings = Settings(
        chunk_seconds=chunk_seconds,
        max_replica_lag=max_replica_lag,
        max_threads_running=None if max_threads_running is None else float(max_threads_running),
        max_history_length=None if max_history_length is None else float(max_history_length),
        max_load=max_load,
        sleep=sleep,
    )
    now = _change(name, target, source, settings, clear)
    click.echo(f"{name}: settings {now}")


def _hold(name: str, target: str | None, source: str | None, action: Action) -> bool:
    from rowferry.dialects.connect import connect, create_engine
    from rowferry.state import control
    from rowferry.state import store as state

    with connect(create_engine(state_url(target, source))) as conn:
        require_known(name, state.read_all(conn) if state.table_exists(conn) else [])
        return control.hold(conn, name, action)


def _change(
    name: str, target: str | None, source: str | None, settings: Settings, clear: bool
) -> Settings:
    from rowferry.dialects.connect import connect, create_engine
    from rowferry.state import control
    from rowferry.state import store as state

    with connect(create_engine(state_url(target, source))) as conn:
        known = state.read_all(conn) if state.table_exists(conn) else []
        require_known(name, known)
        if not settings.items() and not clear:
            return control.of(next(m for m in known if m.name == name)).settings
        return control.change(conn, name, settings, clear=clear)
