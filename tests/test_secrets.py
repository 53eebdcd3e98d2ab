"""Passwords never appear in output, logs, status or state."""

from __future__ import annotations

import logging
import uuid

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import rowferry
from harness import reference
from rowferry.cli.main import main
from rowferry.demo import order_history

PASSWORD = "s3cr3t-Pw-" + uuid.uuid4().hex[:6]


def _url_with_password(db_url: str) -> str:
    """A login with a password for this test's database (created here, dropped after)."""
    url = sa.make_url(db_url)
    user = "rf_user_" + uuid.uuid4().hex[:6]
    engine = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if url.get_backend_name() == "postgresql":
            conn.exec_driver_sql(f"CREATE ROLE {user} LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
        else:
            for host in ("%", "localhost"):
                conn.execute(sa.text(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{PASSWORD}'"))
                conn.execute(sa.text(f"GRANT ALL ON {url.database}.* TO '{user}'@'{host}'"))
    engine.dispose()
    return url.set(username=user, password=PASSWORD).render_as_string(hide_password=False)


@pytest.mark.parametrize("dialect_name", ["mariadb", "postgresql"])
def test_no_password_in_logs_errors_status_state_or_plan(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    reference.build(db_url, orders=60)
    url = _url_with_password(db_url)
    caplog.set_level(logging.DEBUG, logger="rowferry")
    runner = CliRunner()
    outputs = [
        runner.invoke(
            main,
            [
                "-vv",
                "run",
                order_history.__file__,
                "--source",
                url,
                "--max-chunks",
                "1",
                "--chunk-size",
                "5",
            ],
        ).output,
        runner.invoke(main, ["status", "--target", url]).output,
        runner.invoke(main, ["status", "--target", url, "--json"]).output,
        runner.invoke(main, ["plan", order_history.__file__, "--source", url]).output,
        runner.invoke(main, ["run", "missing.py", "--source", url]).output,
        runner.invoke(main, ["run", order_history.__file__, "--source", url + "x"]).output,
        runner.invoke(main, ["status", "--target", url.replace(":3306", ":33o6")]).output,
    ]
    with pytest.raises(rowferry.ConnectError) as caught:
        unreachable = sa.make_url(url).set(port=1).render_as_string(hide_password=False)
        rowferry.run(order_history.migration, unreachable)
    outputs.append(str(caught.value))
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        state_rows = conn.exec_driver_sql("SELECT * FROM rowferry_state").all()
    engine.dispose()
    everything = "\n".join([*outputs, caplog.text, repr(state_rows)])
    assert "order-history" in everything and "***" in everything
    assert PASSWORD not in everything
