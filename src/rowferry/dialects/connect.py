"""Opening databases: URL parsing, connecting, and keeping passwords out of every message."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from rowferry.errors import ConnectError
from rowferry.urls import mask_secrets as mask_secrets  # re-exported: the engine and handler use it
from rowferry.urls import unparsed

#: a database as a URL, or an engine made by the caller
Bind = str | sa.Engine


def describe(url: sa.URL | str) -> str:
    """The URL as it may be shown to people: password hidden."""
    if isinstance(url, str):
        return mask_secrets(url)
    return url.render_as_string(hide_password=True)


def parse_url(url: str) -> sa.URL:
    """Parse a SQLAlchemy URL, refusing bad ones with a message that names the problem."""
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        shown = unparsed(url)
        what = (
            f"database URL {shown!r}"
            if shown
            else "a database URL (not shown: without scheme:// any part of it may be a password)"
        )
        raise ConnectError(
            f"cannot parse {what}: expected something like "
            "mysql+pymysql://user:password@host:3306/db, postgresql+psycopg://user@host/db "
            "or sqlite:///path/to/file.sqlite"
        ) from exc
    if parsed.get_backend_name() not in ("sqlite", "mysql", "mariadb", "postgresql"):
        raise ConnectError(
            f"unsupported database {parsed.get_backend_name()!r} in {describe(parsed)}: "
            "rowferry supports sqlite, mysql/mariadb and postgresql"
        )
    return _with_defaults(parsed)


def _with_defaults(url: sa.URL) -> sa.URL:
    backend, driver = url.get_backend_name(), url.get_driver_name()
    if backend in ("mysql", "mariadb"):
        asked_for_c = "+" in url.drivername and driver in ("mysqldb", "mysqlclient")
        if asked_for_c and _has_mysqlclient():
            url = url.set(drivername=f"{backend}+mysqldb")
        elif asked_for_c or url.drivername in ("mysql", "mariadb"):
            url = url.set(drivername=f"{backend}+pymysql")
        if "charset" not in url.query:
            url = url.update_query_dict({"charset": "utf8mb4"})
    if backend == "postgresql" and url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return url


def is_server(url: sa.URL) -> bool:
    """Whether ``url`` names a database server (not a SQLite file)."""
    return url.get_backend_name() != "sqlite"


def server_address(url: sa.URL) -> tuple[str, int] | None:
    """The host and port of a database server, with the database's default port; None for
    SQLite or a URL without a host (a socket)."""
    if not is_server(url) or not url.host:
        return None
    default = 5432 if url.get_backend_name() == "postgresql" else 3306
    return url.host, url.port or default


def _has_mysqlclient() -> bool:
    """Whether the optional C driver (``pip install 'rowferry[mysqlclient]'``) is installed."""
    return importlib.util.find_spec("MySQLdb") is not None


def create_engine(url: str | sa.URL, *, must_exist: bool = True) -> sa.Engine:
    """An engine for ``url``; a SQLite file must already exist unless ``must_exist`` is false."""
    parsed = parse_url(url) if isinstance(url, str) else _with_defaults(url)
    if parsed.get_backend_name() == "sqlite" and must_exist:
        _require_sqlite_file(parsed)
    try:
        engine = sa.create_engine(
            parsed, poolclass=sa.pool.NullPool, connect_args=_connect_args(parsed)
        )
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise ConnectError(f"cannot use {describe(parsed)}: {mask_secrets(str(exc))}") from exc
    if parsed.get_driver_name() == "pymysql":
        sa.event.listen(engine, "do_connect", _pymysql_connect)
    return engine


def _pymysql_connect(
    dialect: sa.Dialect, record: object, cargs: tuple[Any, ...], cparams: dict[str, Any]
) -> Any:
    """PyMySQL's connection with rowferry's faster row reading
    (:mod:`rowferry.drivers.pymysql_rows`)."""
    from rowferry.drivers.pymysql_rows import connection_class

    return connection_class()(*cargs, **cparams)


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def _connect_args(url: sa.URL) -> dict[str, object]:
    """PyMySQL: faster date and time decoders (:mod:`rowferry.drivers.mysql_decoders`), and no TLS
    over loopback. PyMySQL tries TLS on every connection unless told otherwise, and building its TLS
    context (loading the system's CA certificates) costs tens of milliseconds per connection. Over
    loopback or a Unix socket TLS protects nothing, so it is switched off there unless the URL
    asks for it."""
    if url.get_driver_name() != "pymysql":
        return {}
    from rowferry.drivers.mysql_decoders import conversions

    args: dict[str, object] = {"conv": conversions()}
    if any(k.startswith("ssl") for k in url.query):
        return args
    if "unix_socket" in url.query or (url.host or "localhost") in _LOOPBACK:
        args["ssl_disabled"] = True
    return args


def _require_sqlite_file(url: sa.URL) -> None:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return
    if not Path(database).is_file():
        raise ConnectError(f"SQLite database file {database!r} does not exist ({describe(url)})")


def connect(engine: sa.Engine) -> sa.Connection:
    """Open a connection, turning 'cannot reach' and 'access denied' into one clear ConnectError."""
    try:
        return engine.connect()
    except sa.exc.DBAPIError as exc:
        reason = mask_secrets(str(exc.orig) if exc.orig is not None else str(exc))
        raise ConnectError(
            f"cannot connect to {describe(engine.url)}: {reason.strip()} "
            "(check host, port, user, password and database name)"
        ) from exc


@contextmanager
def connect_both(
    source: Bind, target: Bind | None
) -> Iterator[tuple[sa.Connection, sa.Connection]]:
    """One connection per side; a single shared one when both sides are the same database."""
    src_engine = source if isinstance(source, sa.Engine) else create_engine(source)
    same = target is None or str(target if isinstance(target, str) else target.url) == str(
        source if isinstance(source, str) else source.url
    )
    dst_engine = (
        src_engine
        if same or target is None
        else (target if isinstance(target, sa.Engine) else create_engine(target))
    )
    src = connect(src_engine)
    try:
        dst = src if same else connect(dst_engine)
        try:
            yield src, dst
        finally:
            if dst is not src:
                dst.close()
    finally:
        src.close()
