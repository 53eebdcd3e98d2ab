"""The handler's configuration: environment variables, read and checked before any connection.

========================== ==================================================================
``ROWFERRY_MIGRATION``     the migration inside the bundle: ``module:attribute``, ``module``
                           (its ``migration`` variable) or a ``.py`` path. Required.
``ROWFERRY_SOURCE``        source database URL, and/or
``ROWFERRY_SOURCE_SECRET`` a Secrets Manager secret id/ARN holding it (with both, the secret's
                           fields fill in the URL: an RDS-managed secret has only the login)
``ROWFERRY_TARGET``        target database URL, and/or
``ROWFERRY_TARGET_SECRET`` a secret holding it (neither: the target is the source)
``ROWFERRY_SAFETY_MARGIN`` seconds kept free before Lambda's timeout (default 3)
``ROWFERRY_CHUNK_SIZE``    root rows per chunk, or ``auto`` (the default)
``ROWFERRY_MAX_BAD_ROWS``  quarantined rows per invocation before it fails (default 100)
``ROWFERRY_DISABLE_SCHEDULE`` ``name[,group]``: disable this EventBridge Scheduler schedule
                           once the migration is done (opt-in; group defaults to ``default``)
``ROWFERRY_REPLICAS``      replica or standby URLs, comma-separated: before each chunk, wait
                           while one lags more than
``ROWFERRY_MAX_REPLICA_LAG`` seconds (default 1)
``ROWFERRY_MAX_THREADS_RUNNING`` wait while the source runs more statements than this
``ROWFERRY_MAX_HISTORY_LENGTH`` wait while its InnoDB history list is longer than this
``ROWFERRY_CHECKS``        ``SQL<=LIMIT`` queries on the source, separated by ``;``: wait while
                           one returns more than its limit
``ROWFERRY_MAX_LOAD``      the percentage of the wall time the trip works (``50%``: after a
                           chunk of ``t`` s, a pause of ``t`` s)
``ROWFERRY_SLEEP``         seconds of pause after each chunk
========================== ==================================================================

``rowferry set`` changes the limits, the share of the time and the pause of a running
migration; those it sets replace these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rowferry import defaults
from rowferry.dialects.connect import parse_url
from rowferry.engine.sizing import ChunkSize
from rowferry.engine.throttle import ThrottleOptions, parse_check, parse_percent
from rowferry.errors import ConfigError, ConnectError
from rowferry.state import control

#: Seconds kept free before Lambda's timeout: the trip's last state update, closing the
#: connections, flushing logs and metrics, and a chunk slower than predicted.
DEFAULT_SAFETY_MARGIN = 3.0


@dataclass(frozen=True)
class Endpoint:
    """A database given as a URL, or as a Secrets Manager secret that holds its credentials."""

    url: str | None = None
    secret: str | None = None


@dataclass(frozen=True)
class ScheduleRef:
    """An EventBridge Scheduler schedule: its name and group."""

    name: str
    group: str = "default"


@dataclass(frozen=True)
class LambdaConfig:
    migration: str
    source: Endpoint
    target: Endpoint | None = None
    safety_margin: float = DEFAULT_SAFETY_MARGIN
    chunk_size: ChunkSize = "auto"
    max_bad_rows: int = defaults.MAX_BAD_ROWS
    disable_schedule: ScheduleRef | None = None
    throttle: ThrottleOptions = field(default_factory=ThrottleOptions)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LambdaConfig:
        """Read the configuration; every problem found is named in one :class:`ConfigError`."""
        problems: list[str] = []
        migration = env.get("ROWFERRY_MIGRATION", "").strip()
        if not migration:
            problems.append("ROWFERRY_MIGRATION is not set (e.g. 'order_history:migration')")
        source = _endpoint(env, "SOURCE", problems, required=True)
        target = _endpoint(env, "TARGET", problems, required=False)
        margin = _number(env, "ROWFERRY_SAFETY_MARGIN", DEFAULT_SAFETY_MARGIN, 0.0, problems)
        chunk = _chunk_size(env, problems)
        bad = _number(env, "ROWFERRY_MAX_BAD_ROWS", defaults.MAX_BAD_ROWS, 0, problems)
        schedule = _schedule(env.get("ROWFERRY_DISABLE_SCHEDULE", ""), problems)
        throttle = _throttle(env, problems)
        if problems:
            raise ConfigError("invalid Lambda configuration: " + "; ".join(problems))
        return cls(
            migration=migration,
            source=source or Endpoint(),
            target=target,
            safety_margin=float(margin),
            chunk_size=chunk,
            max_bad_rows=int(bad),
            disable_schedule=schedule,
            throttle=throttle,
        )


def _endpoint(
    env: Mapping[str, str], side: str, problems: list[str], *, required: bool
) -> Endpoint | None:
    url = env.get(f"ROWFERRY_{side}", "").strip() or None
    secret = env.get(f"ROWFERRY_{side}_SECRET", "").strip() or None
    if required and not (url or secret):
        problems.append(f"set ROWFERRY_{side} (a database URL) or ROWFERRY_{side}_SECRET")
    return Endpoint(url, secret) if (url or secret) else None


def _chunk_size(env: Mapping[str, str], problems: list[str]) -> ChunkSize:
    text = env.get("ROWFERRY_CHUNK_SIZE", "").strip().lower()
    if text in ("", "auto"):
        return "auto"
    return int(_number(env, "ROWFERRY_CHUNK_SIZE", defaults.CHUNK_SIZE, 1, problems))


def _number(
    env: Mapping[str, str], name: str, default: float, minimum: float, problems: list[str]
) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    integral = isinstance(default, int)
    try:
        value = int(text) if integral else float(text)
    except ValueError:
        problems.append(f"{name}={text!r} is not {'an integer' if integral else 'a number'}")
        return default
    if value < minimum:
        problems.append(f"{name}={text!r} must be at least {minimum:g}")
    return value


def _schedule(text: str, problems: list[str]) -> ScheduleRef | None:
    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    if not parts:
        return None
    if len(parts) > 2 or not all(parts):
        problems.append(f"ROWFERRY_DISABLE_SCHEDULE={text!r} must be 'name' or 'name,group'")
        return None
    return ScheduleRef(*parts)


def _throttle(env: Mapping[str, str], problems: list[str]) -> ThrottleOptions:
    replicas = tuple(u.strip() for u in env.get("ROWFERRY_REPLICAS", "").split(",") if u.strip())
    for url in replicas:
        try:
            parse_url(url)
        except ConnectError as exc:
            problems.append(f"ROWFERRY_REPLICAS: {exc}")
    lag = _limit(env, "ROWFERRY_MAX_REPLICA_LAG", "max_replica_lag", problems)
    if lag is not None and not replicas:
        problems.append("ROWFERRY_MAX_REPLICA_LAG needs ROWFERRY_REPLICAS")
    checks: list[tuple[str, float]] = []
    for text in env.get("ROWFERRY_CHECKS", "").split(";"):
        try:
            checks.extend([parse_check(text)] if text.strip() else [])
        except ConfigError as exc:
            problems.append(f"ROWFERRY_CHECKS: {exc}")
    load = env.get("ROWFERRY_MAX_LOAD", "").strip()
    try:
        max_load = parse_percent(load) if load else None
    except ConfigError as exc:
        problems.append(f"ROWFERRY_MAX_LOAD: {exc}")
        max_load = None
    return ThrottleOptions(
        replicas=replicas,
        max_replica_lag=defaults.MAX_REPLICA_LAG_SECONDS if lag is None else lag,
        max_threads_running=_limit(
            env, "ROWFERRY_MAX_THREADS_RUNNING", "max_threads_running", problems
        ),
        max_history_length=_limit(
            env, "ROWFERRY_MAX_HISTORY_LENGTH", "max_history_length", problems
        ),
        checks=tuple(checks),
        max_load=max_load,
        sleep=_limit(env, "ROWFERRY_SLEEP", "sleep", problems) or 0.0,
    )


def _limit(env: Mapping[str, str], name: str, setting: str, problems: list[str]) -> float | None:
    """A number checked as the setting of that name is (:func:`rowferry.state.control.check`)."""
    text = env.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        problems.append(f"{name}={text!r} is not a number")
        return None
    why = control.check(setting, value)
    if why:
        problems.append(f"{name}={text!r} {why}")
        return None
    return value
