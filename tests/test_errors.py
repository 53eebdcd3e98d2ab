"""Bad input gets one clear message naming the problem, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

import rowferry
from harness import reference
from rowferry import BelongsTo, HasMany, Migration, Target
from rowferry.demo.order_history import migration as reference_migration
from rowferry.demo.order_history import snapshot
from rowferry.state import store


def _nothing_written(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert not sa.inspect(conn).has_table(store.STATE_TABLE)
        if sa.inspect(conn).has_table("order_snapshots"):
            assert conn.exec_driver_sql("SELECT COUNT(*) FROM order_snapshots").scalar() == 0
    engine.dispose()


def _variant(**changes: object) -> Migration:
    fields = dict(
        name="order-history",
        source="orders",
        where="status IN :statuses",
        params={"statuses": ["dispensed"]},
        relations=dict(reference_migration.relations),
        transform=snapshot,
        target=Target("order_snapshots", unique_key=["order_id"]),
    )
    fields.update(changes)
    return Migration(**fields)  # type: ignore[arg-type]


BAD_MIGRATIONS = {
    "missing source table": (dict(source="ordrs"), rowferry.SchemaError, "'ordrs' does not exist"),
    "missing key column": (
        dict(key=["nope"]),
        rowferry.SchemaError,
        "column 'nope' does not exist",
    ),
    "key that is not unique": (dict(key=["patient_id"]), rowferry.SchemaError, "is not unique"),
    "filter that does not parse": (
        dict(where="status IN :statuses AND", params={"statuses": ["x"]}),
        rowferry.ConfigError,
        "filter",
    ),
    "filter on a missing column": (
        dict(where="stat = :s", params={"s": "x"}),
        rowferry.ConfigError,
        "filter",
    ),
    "missing relation table": (
        dict(relations={"x": HasMany("itemz", foreign_key="order_id")}),
        rowferry.SchemaError,
        "'itemz' does not exist",
    ),
    "missing relation column": (
        dict(relations={"p": BelongsTo("patients", foreign_key="pid")}),
        rowferry.SchemaError,
        "column 'pid' does not exist",
    ),
    "missing target table": (dict(target=Target("snapz")), rowferry.SchemaError, "'snapz'"),
    "target without the unique key": (
        dict(target=Target("order_snapshots", unique_key=["status"], on_conflict="skip")),
        rowferry.SchemaError,
        "unique index",
    ),
    "transform output column missing in target": (
        dict(transform=lambda o, r: {"order_id": o["id"], "colour": "red"}),
        rowferry.SchemaError,
        "'colour'",
    ),
}


@pytest.mark.parametrize("case", list(BAD_MIGRATIONS))
def test_bad_migrations_are_refused_before_any_write(db_url: str, case: str) -> None:
    changes, error, text = BAD_MIGRATIONS[case]
    reference.build(db_url, orders=50)
    with pytest.raises(error, match=text):
        rowferry.run(_variant(**changes), db_url)
    if case != "transform output column missing in target":
        _nothing_written(db_url)


def test_definition_errors_are_caught_without_a_database() -> None:
    with pytest.raises(rowferry.ConfigError, match=":statuses"):
        Migration(name="m", source="t", target="u", where="status IN :statuses")
    with pytest.raises(rowferry.ConfigError, match="on_conflict"):
        Target("t", unique_key=["id"], on_conflict="replace")  # type: ignore[arg-type]
    with pytest.raises(rowferry.ConfigError, match="needs unique_key"):
        Target("t", on_conflict="skip")
    with pytest.raises(rowferry.ConfigError, match="name"):
        Migration(name="has spaces", source="t", target="u")
    with pytest.raises(rowferry.ConfigError, match="no transform"):
        Migration(name="m", source="t", target="u", relations={"p": BelongsTo("p", "pid")})


@pytest.mark.parametrize(
    "url,text",
    [
        ("nonsense", "cannot parse a database URL .not shown"),
        ("mysql+pymysql://root:s3cr3t-pw@127.0.0.1:33o6/test", "cannot parse database URL"),
        ("oracle://scott:tiger@host/db", "unsupported database"),
        ("mysql+pymysql://root:s3cr3t-pw@127.0.0.1:1/test", "cannot connect"),
        ("mysql+pymysql://root:s3cr3t-pw@127.0.0.1:3306/test", "Access denied"),
        ("postgresql+psycopg://no_such_role:s3cr3t-pw@127.0.0.1:5432/postgres", "no_such_role"),
        ("sqlite:////nonexistent/dir/db.sqlite", "does not exist"),
    ],
)
def test_bad_urls_and_refused_logins_name_the_problem_and_hide_the_password(
    url: str, text: str
) -> None:
    with pytest.raises(rowferry.ConnectError, match=text) as caught:
        rowferry.run(reference_migration, url)
    assert "s3cr3t-pw" not in str(caught.value)
    assert "tiger" not in str(caught.value)


def test_invalid_migration_files_are_refused_with_the_reason(tmp_path: Path) -> None:
    cases = {
        "syntax.py": ("migration = Migration(\n", "syntax error at line"),
        "empty.py": ("x = 1\n", "defines no Migration"),
        "raises.py": ("raise RuntimeError('boom')\n", "RuntimeError: boom"),
        "missing_param.py": (
            "from rowferry import Migration\n"
            "migration = Migration(name='m', source='t', target='u', where='a = :b')\n",
            ":b",
        ),
    }
    for name, (body, text) in cases.items():
        path = tmp_path / name
        path.write_text(body)
        with pytest.raises(rowferry.MigrationFileError, match=text):
            rowferry.load(str(path))
    with pytest.raises(rowferry.MigrationFileError, match="does not exist"):
        rowferry.load(str(tmp_path / "absent.py"))
