"""``rowferry lambda``: build the Lambda deployment zip, and simulate the function locally."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from rowferry import defaults
from rowferry.cli.common import (
    AS_JSON,
    CHUNK_SIZE,
    SOURCE,
    TARGET,
    Duration,
    Refused,
    library_errors,
)

if TYPE_CHECKING:
    from rowferry.cli.simulate import Invocation
    from rowferry.engine.sizing import ChunkSize


@click.group("lambda")
def lambda_group() -> None:
    """Run a migration as a scheduled AWS Lambda function: package it, simulate it."""


@lambda_group.command()
@click.argument("migration_file", required=False, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default="rowferry-lambda.zip",
    show_default=True,
    help="Where to write the zip.",
)
@click.option(
    "--include",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Another file or package directory the migration imports (repeatable).",
)
@click.option(
    "--python-version",
    default=defaults.LAMBDA_PYTHON,
    show_default=True,
    help="Python of the function's runtime (python3.13: 3.13); must match the template.",
)
@click.option(
    "--arch",
    type=click.Choice(["x86_64", "arm64"]),
    default="x86_64",
    show_default=True,
    help="The function's architecture.",
)
@click.option(
    "--with-cli", is_flag=True, help="Also bundle click and rich (the handler needs neither)."
)
@click.option("--with-boto3", is_flag=True, help="Bundle boto3 instead of using the runtime's.")
@AS_JSON
@library_errors
def package(
    migration_file: Path | None,
    output: Path,
    include: tuple[Path, ...],
    python_version: str,
    arch: str,
    with_cli: bool,
    with_boto3: bool,
    as_json: bool,
) -> None:
    """Build the deployment zip: rowferry, its dependencies as manylinux2014 wheels for the
    Lambda runtime (no Docker), and MIGRATION_FILE (a .py file or a package directory).

    Set ROWFERRY_MIGRATION to the module name it prints (the SAM template does).
    """
    from rowferry.aws.package import MAX_UNZIPPED_MB, MAX_ZIP_MB, build
    from rowferry.migration.file import load

    if migration_file is not None and migration_file.is_file():
        load(str(migration_file))  # refuse a file that defines no migration before building
    bundle = build(
        output,
        migration_file,
        include=include,
        python_version=python_version,
        architecture=arch,
        with_cli=with_cli,
        with_boto3=with_boto3,
    )
    if as_json:
        fields = bundle.__dict__ | {"path": str(bundle.path), "megabytes": bundle.megabytes}
        click.echo(json.dumps(fields, indent=2))
        return
    click.echo(
        f"wrote {bundle.path}: {bundle.megabytes:.1f} MB zipped, "
        f"{bundle.unzipped_megabytes:.1f} MB unzipped, {bundle.files:,} files "
        f"(Lambda's limits: {MAX_ZIP_MB:g} MB zipped, {MAX_UNZIPPED_MB:g} MB unzipped)"
    )
    click.echo(f"packages: {', '.join(bundle.packages)}")
    for name, tag in sorted(bundle.platform_tags.items()):
        click.echo(f"  {name}: {tag}")
    if bundle.handler_module:
        click.echo(
            "handler: rowferry.aws.handler.handler, "
            f"ROWFERRY_MIGRATION={bundle.handler_module}:migration"
        )
    if bundle.megabytes > MAX_ZIP_MB or bundle.unzipped_megabytes > MAX_UNZIPPED_MB:
        click.echo("warning: the bundle exceeds Lambda's limits for a zip package", err=True)


@lambda_group.command()
@click.argument("migration")
@SOURCE
@TARGET
@click.option("--timeout", type=Duration(), default="30s", show_default=True)
@click.option(
    "--memory",
    type=click.IntRange(min=128),
    default=1024,
    show_default=True,
    help="Memory limit in MB (the process's address space).",
)
@click.option(
    "--safety-margin",
    type=Duration(),
    default="3s",
    show_default=True,
    help="Time the handler keeps free before the timeout.",
)
@CHUNK_SIZE
@click.option("--max-invocations", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option(
    "--kill",
    "kills",
    multiple=True,
    metavar="N:SECONDS",
    help="SIGKILL invocation N after SECONDS (repeatable), to show nothing is lost.",
)
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=0.0,
    help="Route the database connections through a local proxy that delays every "
    "packet by this much in each direction.",
)
@click.option("--interval", type=Duration(), help="Time between invocation starts (default: none).")
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep each invocation's log lines in this directory.",
)
@AS_JSON
@library_errors
def simulate(
    migration: str,
    source: str,
    target: str | None,
    timeout: float,
    memory: int,
    safety_margin: float,
    chunk_size: ChunkSize,
    max_invocations: int,
    kills: tuple[str, ...],
    latency_ms: float,
    interval: float | None,
    log_dir: Path | None,
    as_json: bool,
) -> None:
    """Invoke the Lambda handler locally, like its schedule does, until MIGRATION is done.

    MIGRATION is what ROWFERRY_MIGRATION holds (module:attribute, or a .py file). Each
    invocation is a new process with a fake context counting down from --timeout, killed with
    SIGKILL at the timeout, its address space capped at --memory MB. Prints rows, duration,
    budget used and peak resident memory per invocation. Exit status 0 when the migration is
    done and no invocation was killed by the timeout, 1 otherwise (an invocation failed, or
    was killed), 2 when refused before the first invocation: a --timeout that leaves the trip
    less than 1 s after --safety-margin, or the 'aws' extra not installed.
    """
    from rowferry.cli.simulate import Limits, render, summary
    from rowferry.cli.simulate import simulate as run_simulation
    from rowferry.migration.file import load

    _require_aws_extra()
    _require_time_for_a_chunk(timeout, safety_margin)
    if migration.endswith(".py"):
        migration = str(Path(migration).resolve())
    load(migration)  # refuse a bad reference before the first invocation
    kill_plan = _parse_kills(kills)
    with _routed(source, target, latency_ms) as (src, dst):
        env = {
            "ROWFERRY_MIGRATION": migration,
            "ROWFERRY_SOURCE": src,
            "ROWFERRY_TARGET": dst or "",
            "ROWFERRY_SOURCE_SECRET": "",
            "ROWFERRY_TARGET_SECRET": "",
            "ROWFERRY_DISABLE_SCHEDULE": "",
            "ROWFERRY_SAFETY_MARGIN": repr(safety_margin),
            "ROWFERRY_CHUNK_SIZE": str(chunk_size),
        }
        sim = run_simulation(
            env,
            Limits(timeout=timeout, memory_mb=memory),
            max_invocations=max_invocations,
            kill=kill_plan,
            interval=interval or 0.0,
            log_dir=log_dir,
            on_invocation=None if as_json else _echo_invocation,
        )
    if as_json:
        click.echo(json.dumps(sim.as_dict(), default=str, indent=2))
    else:
        click.echo(render(sim) if len(sim.invocations) <= 50 else summary(sim))
    ok = sim.done and not sim.killed_by_timeout
    sys.exit(defaults.EXIT_DONE if ok else defaults.EXIT_FAILED)


def _require_aws_extra() -> None:
    """The handler logs and counts through AWS Lambda Powertools, an optional dependency."""
    import importlib.util

    if importlib.util.find_spec("aws_lambda_powertools") is None:
        raise Refused(
            "the Lambda handler needs the 'aws' extra, which is not installed: "
            "pip install 'rowferry[aws]'"
        )


def _require_time_for_a_chunk(timeout: float, margin: float) -> None:
    """Refuse a timeout that leaves the handler no budget (see the handler's minimum)."""
    least = defaults.LAMBDA_MIN_BUDGET_SECONDS
    if timeout - margin >= least:
        return
    raise Refused(
        f"--timeout {timeout:g}s minus the handler's --safety-margin of {margin:g}s leaves "
        f"{max(timeout - margin, 0):g} s for the trip, less than the {least:g} s it needs for a "
        f"chunk: every invocation would fail. Give a --timeout above {margin + least:g}s (plus "
        "the start-up time) or a smaller --safety-margin"
    )


def _echo_invocation(inv: Invocation) -> None:
    used = "" if inv.budget_used is None else f", {100 * inv.budget_used:.0f} % of its budget"
    peak = "" if inv.peak_rss_mb is None else f", peak {inv.peak_rss_mb:.0f} MB"
    killed = f", KILLED ({inv.killed})" if inv.killed else ""
    reason = f": {inv.result['reason']}" if inv.result and inv.status == "failed" else ""
    click.echo(
        f"invocation {inv.number}: {inv.status}{reason}, {inv.rows:,} rows in "
        f"{inv.seconds:.2f} s{used}{peak}{killed}",
        err=True,
    )
    if inv.log_tail and inv.status in ("crashed", "failed"):
        click.echo(inv.log_tail, err=True)


def _parse_kills(kills: tuple[str, ...]) -> dict[int, float]:
    plan: dict[int, float] = {}
    for item in kills:
        number, _, seconds = item.partition(":")
        try:
            plan[int(number)] = float(seconds)
        except ValueError:
            raise click.BadParameter(f"{item!r} is not N:SECONDS", param_hint="--kill") from None
    return plan


@contextlib.contextmanager
def _routed(source: str, target: str | None, latency_ms: float) -> Iterator[tuple[str, str | None]]:
    """The URLs to give the handler: through latency proxies when ``latency_ms`` is set."""
    if not latency_ms:
        yield source, target
        return
    import sqlalchemy as sa

    from rowferry.aws.latency_proxy import LatencyProxy
    from rowferry.dialects.connect import server_address

    with contextlib.ExitStack() as stack:
        proxies: dict[tuple[str, int], LatencyProxy] = {}

        def route(url: str) -> str:
            parsed = sa.make_url(url)
            upstream = server_address(parsed)
            if upstream is None:
                raise click.UsageError("--latency-ms needs server databases, not SQLite")
            if upstream not in proxies:
                proxy = LatencyProxy(*upstream, delay_ms=latency_ms)
                proxies[upstream] = stack.enter_context(proxy)
            return proxies[upstream].route(url)

        yield route(source), None if target is None else route(target)
