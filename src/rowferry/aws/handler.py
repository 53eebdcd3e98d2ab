"""The Lambda entry point: ``rowferry.aws.handler.handler``, one trip per invocation.

Each invocation reads its configuration from the environment (:mod:`rowferry.aws.config`),
returns at once when the migration is already done, and otherwise runs one trip whose budget is
the invocation's remaining time minus the safety margin: a chunk predicted not to finish inside
it is not started, so the function ends by itself before Lambda's timeout. The result is a JSON
object::

    {"status": "done" | "caught_up" | "more" | "paused" | "cancelled" | "failed",
     "migration": ..., "reason": ..., "rows": ..., "rows_written": ..., "rows_quarantined": ...,
     "chunks": ..., "retries": ..., "rows_done": ..., "rows_total": ..., "cursor": [...],
     "seconds": ..., "budget_seconds": ..., "next_chunk_seconds": ..., "gate_wait_seconds": ...,
     "pause_seconds": ..., "throttled_seconds": ..., "gate_readings": [{"gate", "value",
     "limit", "over", "setting"}, ...], "invocation_seconds": ...,
     "error": {"type", "message"}?,
     "schedule": "disabled" | "already disabled" | "error: ..."?}

``more`` means "invoke me again" (the budget ran out, the throttle held the trip, or another
run holds the lease); ``caught_up``: a migration that follows its source has captured every
change up to its watermark, and its schedule goes on firing to capture the next ones;
``paused`` and ``cancelled``: the migration was told so from outside (``rowferry pause``,
``rowferry cancel``), and the invocation returns at once without a trip (its schedule stays
enabled: only ``done`` disables it); ``failed`` also covers an invocation whose budget is too
short for any chunk (the function's timeout does not exceed the safety margin by
:data:`~rowferry.defaults.LAMBDA_MIN_BUDGET_SECONDS`): answering ``more`` there would repeat
forever without an alarm.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from rowferry import defaults
from rowferry.aws import schedule, secrets, telemetry
from rowferry.aws.config import LambdaConfig, ScheduleRef
from rowferry.aws.context import LambdaContext
from rowferry.dialects.connect import connect, create_engine, is_server, mask_secrets, parse_url
from rowferry.engine.run import Budget, RunResult, run
from rowferry.errors import AlreadyRunning, ConfigError, RowferryError
from rowferry.migration.file import load
from rowferry.migration.spec import Migration
from rowferry.state import store as state

#: Below this many seconds of budget the invocation fails without connecting.
MIN_BUDGET_SECONDS = defaults.LAMBDA_MIN_BUDGET_SECONDS
#: A database that does not answer fails the invocation after this long, with a message,
#: instead of running into Lambda's timeout (libpq waits for TCP's own timeout by default).
CONNECT_TIMEOUT_SECONDS = 5

logger = telemetry.logger


@telemetry.metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Run one trip of the configured migration inside this invocation's time."""
    started = time.monotonic()
    try:
        config = LambdaConfig.from_env(os.environ)
        with telemetry.library_logs():
            result = _invoke(config, context)
    except RowferryError as exc:
        logger.error("invocation failed: %s", exc)
        result = _failed(exc)
    except Exception as exc:  # a bug: keep the traceback in the log, still answer in JSON
        logger.exception("invocation failed with an unexpected error")
        result = _failed(exc)
    result["invocation_seconds"] = round(time.monotonic() - started, 3)
    telemetry.record(result)
    logger.info("invocation %s: %s", result["status"], result["reason"], extra={"result": result})
    return result


def _invoke(config: LambdaConfig, context: LambdaContext) -> dict[str, Any]:
    migration = load(config.migration)
    logger.append_keys(migration=migration.name)
    _require_budget(context.get_remaining_time_in_millis() / 1000, config.safety_margin)
    source_url = _with_connect_timeout(secrets.resolve(config.source))
    target_url = _with_connect_timeout(secrets.resolve(config.target)) if config.target else None
    source, target = _engines.get(source_url, target_url)
    result = _settled(migration.name, target or source)
    if result is None:
        budget = context.get_remaining_time_in_millis() / 1000 - config.safety_margin
        throttle = config.throttle.build(
            source_url, lambda url: source if url == source_url else _engine(url)
        )
        result = _trip(config, migration, source, target, Budget(budget, throttle=throttle))
    if result["status"] == "done" and config.disable_schedule is not None:
        result["schedule"] = _disable_schedule(config.disable_schedule)
    return result


def _require_budget(remaining: float, margin: float) -> None:
    """Refuse an invocation whose budget cannot fit a chunk: a configuration error."""
    if remaining - margin >= MIN_BUDGET_SECONDS:
        return
    raise ConfigError(
        f"no time for a chunk: {remaining:.2f} s left in this invocation, minus the safety margin "
        f"of {margin:g} s (ROWFERRY_SAFETY_MARGIN), leaves {max(remaining - margin, 0):.2f} s, "
        f"less than the {MIN_BUDGET_SECONDS:g} s a trip needs; raise the function's timeout "
        f"(to more than {margin + MIN_BUDGET_SECONDS:g} s plus its start-up) or lower the "
        "safety margin"
    )


def _engine(url: str) -> sa.Engine:
    """An engine for a database the trip only reads a gate from (a replica)."""
    return create_engine(_with_connect_timeout(url))


def _with_connect_timeout(url: str) -> str:
    parsed = parse_url(url)
    if not is_server(parsed) or "connect_timeout" in parsed.query:
        return url
    parsed = parsed.update_query_dict({"connect_timeout": str(CONNECT_TIMEOUT_SECONDS)})
    return parsed.render_as_string(hide_password=False)


class _WarmEngines:
    """The engines of the last invocation, kept by a warm container for the next one.

    A new engine costs every invocation SQLAlchemy's first-connect queries and the compiling of
    each statement (the state row's read and updates, the chunk queries: tens of ms of CPU); a
    kept one has them cached. Connections are not kept (rowferry's engines have no pool): a
    frozen container's connection may be dead when it thaws. An engine whose URL the next
    invocation no longer uses (a rotated password, a changed setting) is disposed of.
    """

    def __init__(self) -> None:
        self._by_url: dict[str, sa.Engine] = {}

    def get(self, source: str, target: str | None) -> tuple[sa.Engine, sa.Engine | None]:
        wanted = [source] if target is None else [source, target]
        kept = {url: self._by_url.pop(url) for url in wanted if url in self._by_url}
        for engine in self._by_url.values():
            engine.dispose()
        self._by_url = {url: kept.get(url) or create_engine(url) for url in wanted}
        return self._by_url[source], None if target is None else self._by_url[target]


_engines = _WarmEngines()


def _settled(name: str, target: sa.Engine) -> dict[str, Any] | None:
    """The result of a migration that is done, paused or cancelled, read from its state row
    alone; None otherwise (a trip runs)."""
    with connect(target) as conn:
        found = state.peek(conn, name) if state.table_exists(conn) else None
    if found is None or found.display_status not in ("done", "paused", "cancelled"):
        return None
    reasons = {
        "done": "already done",
        "paused": f"paused from outside: 'rowferry resume {name}' lets it continue",
        "cancelled": f"cancelled from outside: 'rowferry reset {name}' starts it over",
    }
    return _summary(
        found.display_status,
        name,
        reasons[found.display_status],
        rows_done=found.rows_read,
        rows_total=found.rows_total,
        cursor=json.loads(found.cursor_json) if found.cursor_json else None,
    )


def _trip(
    config: LambdaConfig,
    migration: Migration,
    source: sa.Engine,
    target: sa.Engine | None,
    limits: Budget,
) -> dict[str, Any]:
    name, budget = migration.name, limits.seconds or 0.0
    logger.info("starting a trip with a budget of %.2f s", budget)
    try:
        outcome = run(
            migration,
            source,
            target,
            budget=replace(limits, max_bad_rows=config.max_bad_rows),
            chunk_size=config.chunk_size,
        )
    except AlreadyRunning as exc:
        logger.warning("%s", exc)
        return _summary("more", name, str(exc), budget_seconds=round(budget, 3))
    return _from_run(outcome, budget)


def _from_run(outcome: RunResult, budget: float) -> dict[str, Any]:
    throttled = outcome.reason.startswith("throttled:")
    if outcome.status == "stopped" and not outcome.chunks and not throttled:
        return _no_chunk_fits(outcome, budget)
    return _summary(
        "more" if outcome.status == "stopped" else outcome.status,
        outcome.migration,
        outcome.reason,
        rows=outcome.rows_read,
        rows_written=outcome.rows_written,
        rows_quarantined=outcome.rows_quarantined,
        chunks=outcome.chunks,
        retries=outcome.retries,
        rows_done=outcome.rows_done,
        rows_total=outcome.rows_total,
        cursor=outcome.cursor,
        seconds=round(outcome.seconds, 3),
        budget_seconds=round(budget, 3),
        next_chunk_seconds=_rounded(outcome.next_chunk_seconds),
        gate_wait_seconds=round(outcome.gate_wait_seconds, 3),
        pause_seconds=round(outcome.pause_seconds, 3),
        throttled_seconds=round(outcome.throttled_seconds, 3),
        gate_readings=[r.as_dict() for r in outcome.gate_readings],
    )


def _no_chunk_fits(outcome: RunResult, budget: float) -> dict[str, Any]:
    """A trip that the budget stopped before its first chunk: the next invocation, with the
    same timeout, would stop there too. Failed, not ``more``, so that the alarm on ``Failed``
    fires instead of the schedule invoking the function forever for nothing."""
    message = (
        f"migration {outcome.migration!r}: no chunk fits this invocation's budget of "
        f"{budget:.2f} s ({outcome.reason}); raise the function's timeout, lower "
        "ROWFERRY_SAFETY_MARGIN or set a smaller ROWFERRY_CHUNK_SIZE"
    )
    result = _summary(
        "failed",
        outcome.migration,
        message,
        rows_done=outcome.rows_done,
        rows_total=outcome.rows_total,
        cursor=outcome.cursor,
        seconds=round(outcome.seconds, 3),
        budget_seconds=round(budget, 3),
        next_chunk_seconds=_rounded(outcome.next_chunk_seconds),
    )
    result["error"] = {"type": "ConfigError", "message": message}
    return result


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def _summary(status: str, migration: str | None, reason: str, **fields: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "status": status,
        "migration": migration,
        "reason": reason,
        "rows": 0,
        "rows_written": 0,
        "rows_quarantined": 0,
        "chunks": 0,
        "retries": 0,
        "rows_done": None,
        "rows_total": None,
        "cursor": None,
        "seconds": 0.0,
        "budget_seconds": None,
        "next_chunk_seconds": None,
        "gate_wait_seconds": 0.0,
        "pause_seconds": 0.0,
        "throttled_seconds": 0.0,
        "gate_readings": [],
    }
    result.update(fields)
    return result


def _failed(exc: Exception) -> dict[str, Any]:
    message = mask_secrets(str(exc)) or type(exc).__name__
    migration = logger.get_current_keys().get("migration")
    result = _summary("failed", migration, message)
    result["error"] = {"type": type(exc).__name__, "message": message}
    return result


def _disable_schedule(ref: ScheduleRef) -> str:
    try:
        changed = schedule.disable(ref)
    except RowferryError as exc:
        logger.warning("%s", exc)
        return f"error: {exc}"
    if changed:
        logger.info("migration done: schedule %r disabled", ref.name)
    return "disabled" if changed else "already disabled"
