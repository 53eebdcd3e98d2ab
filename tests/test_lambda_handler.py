"""The Lambda handler, called in this process with a fake context, against real databases.

AWS itself (Secrets Manager, EventBridge Scheduler) is faked with ``moto``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import sqlalchemy as sa
from moto import mock_aws

import rowferry
from harness import reference
from rowferry.aws import handler as handler_module
from rowferry.aws import secrets
from rowferry.aws.context import FakeContext
from rowferry.aws.handler import handler
from rowferry.demo import order_history
from rowferry.state import control
from rowferry.state import store as state

MIGRATION = "rowferry.demo.order_history:migration"
PASSWORD = "Pw-" + uuid.uuid4().hex[:10]


@pytest.fixture(autouse=True)
def lambda_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A clean Lambda environment: no rowferry variables but those a test sets; fake AWS."""
    for name in (
        "ROWFERRY_SOURCE",
        "ROWFERRY_TARGET",
        "ROWFERRY_SOURCE_SECRET",
        "ROWFERRY_TARGET_SECRET",
        "ROWFERRY_DISABLE_SCHEDULE",
        "ROWFERRY_CHUNK_SIZE",
        "ROWFERRY_REPLICAS",
        "ROWFERRY_MAX_REPLICA_LAG",
        "ROWFERRY_MAX_THREADS_RUNNING",
        "ROWFERRY_MAX_HISTORY_LENGTH",
        "ROWFERRY_CHECKS",
        "ROWFERRY_MAX_LOAD",
        "ROWFERRY_SLEEP",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROWFERRY_MIGRATION", MIGRATION)
    monkeypatch.setenv("ROWFERRY_SAFETY_MARGIN", "1")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    secrets.clear_cache()


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def invoke(timeout: float = 20.0) -> dict[str, Any]:
    result = handler({}, FakeContext.with_timeout(timeout))
    assert json.loads(json.dumps(result)) == result  # what Lambda sends back is this JSON
    return result


def until_done(timeout: float = 20.0) -> list[dict[str, Any]]:
    results = [invoke(timeout)]
    while results[-1]["status"] == "more":
        assert len(results) < 50, results[-1]
        results.append(invoke(timeout))
    return results


def trips(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = state.read(conn, order_history.migration.name) if state.table_exists(conn) else None
    engine.dispose()
    return 0 if found is None else found.trips


def has_state_table(url: str) -> bool:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        exists = sa.inspect(conn).has_table(state.STATE_TABLE)
    engine.dispose()
    return exists


def test_migrates_and_returns_a_json_result(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    reference.build(db_url, orders=300)
    monkeypatch.setenv("ROWFERRY_SOURCE", db_url)
    expected = reference.expected_snapshots(db_url)
    results = until_done()
    assert results[-1]["status"] == "done" and results[-1]["reason"] == "all rows migrated"
    assert sum(r["rows"] for r in results) == results[-1]["rows_done"] == len(expected)
    assert results[-1]["cursor"] == [max(expected)]
    assert reference.snapshots(db_url) == expected


def test_budget_is_remaining_time_minus_the_safety_margin(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference.build(db_url, orders=60)
    monkeypatch.setenv("ROWFERRY_SOURCE", db_url)
    monkeypatch.setenv("ROWFERRY_SAFETY_MARGIN", "2.5")
    result = invoke(timeout=12.0)
    assert 12.0 - 2.5 - 1.0 < result["budget_seconds"] <= 12.0 - 2.5
    assert result["seconds"] <= result["budget_seconds"]


def test_a_timeout_that_leaves_no_time_for_a_chunk_fails_without_touching_the_database(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answering ``more`` would have the schedule invoke the function forever for nothing,
    with no alarm: the invocation fails, naming the timeout and the margin."""
    reference.build(db_url, orders=60)
    monkeypatch.setenv("ROWFERRY_SOURCE", db_url)
    monkeypatch.setenv("ROWFERRY_SAFETY_MARGIN", "3")
    result = invoke(timeout=3.5)
    assert result["status"] == "failed" and result["error"]["type"] == "ConfigError"
    assert "no time for a chunk" in result["reason"]
    assert "safety margin of 3 s (ROWFERRY_SAFETY_MARGIN)" in result["reason"]
    assert result["migration"] == order_history.migration.name
    assert result["rows"] == 0 and trips(db_url) == 0


@pytest.mark.parametrize("dialect_name", ["sqlite"])
def test_a_budget_that_fits_no_chunk_fails_instead_of_asking_for_more(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows measured at 10 s each cannot fit a 4 s budget: every invocation would answer
    ``more`` and commit nothing, forever and without an alarm."""
    reference.build(db_url, orders=100)
    monkeypatch.setenv("ROWFERRY_SOURCE", db_url)
    rowferry.run(
        order_history.migration, db_url, chunk_size=10, budget=rowferry.Budget(max_chunks=1)
    )
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE rowferry_state SET seconds_per_row = 10"))
    engine.dispose()
    result = invoke(timeout=5.0)
    assert result["status"] == "failed" and result["error"]["type"] == "ConfigError"
    assert "no chunk fits this invocation's budget" in result["reason"]
    assert result["chunks"] == 0 and result["rows_done"] == 10


@pytest.mark.parametrize("dialect_name", ["sqlite", "postgresql"])
def test_once_done_an_invocation_returns_at_once(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference.build(db_url, orders=100)
    monkeypatch.setenv("ROWFERRY_SOURCE", db_url)
    until_done()
    before = trips(db_url)
    again = invoke()
    assert again["status"] == "done" and again["reason"] == "already done"
    assert again["chunks"] == 0 and again["rows_done"] == len(reference.snapshots(db_url))
    assert trips(db_url) == before  # no trip started: one query on the state row
    assert again["invocation_seconds"] < 1.0


def test_a_warm_container_keeps_its_engine_but_no_connection(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next invocation in the same process reuses the engine, with the statements it
    compiled; no connection stays open between invocations (a frozen container's may be dead)."""
    reference.build(db_url, orders=100)
    monkeypatch.setenv("ROWFERRY_SOURCE", db_url)
    assert invoke()["status"] == "done"
    url = handler_module._with_connect_timeout(db_url)  # as the handler connects
    kept = handler_module._engines.get(url, None)[0]
    assert len(kept._compiled_cache or {}) > 0 and kept.pool.status().startswith("NullPool")
    assert invoke()["reason"] == "already done"
    compiled = len(kept._compiled_cache or {})
    again = invoke()
    assert again["status"] == "done" and again["reason"] == "already done"
    assert handler_module._engines.get(url, None)[0] is kept
    assert len(kept._compiled_cache or {}) == compiled  # nothing compiled anew


def test_an_engine_whose_url_is_no_longer_used_is_not_kept(tmp_path: Any) -> None:
    first, second = (f"sqlite:///{tmp_path / name}" for name in ("a.db", "b.db"))
    for url in (first, second):
        sa.create_engine(url).connect().close()
    engines = handler_module._WarmEngines()
    source, target = engines.get(first, second)
    assert target is not None and source is not target
    assert engines.get(first, None) == (source, None)  # kept; the other one dropped
    assert engines.get(second, second)[0] is not target  # made anew
    same, also = engines.get(second, second)
    assert same is also


def test_logs_are_json_lines_with_embedded_metrics(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    reference.build(url, orders=100)
    monkeypatch.setenv("ROWFERRY_SOURCE", url)
    capsys.readouterr()
    result = invoke()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    logs = [line for line in lines if "_aws" not in line]
    assert any(log.get("result") == result for log in logs)
    assert any("starting a trip" in log["message"] for log in logs)  # the library's own logs
    assert all(log["function_request_id"] and log["migration"] == "order-history" for log in logs)
    (emf,) = [line for line in lines if "_aws" in line and "Rows" in line]
    names = {m["Name"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"Rows", "Chunks", "Duration", "Done", "Failed", "BudgetUsed"} <= names
    assert emf["Rows"] == [float(result["rows"])] and emf["Chunks"] == [float(result["chunks"])]
    assert emf["Duration"] == [result["invocation_seconds"]] and emf["migration"] == "order-history"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ROWFERRY_MIGRATION": ""}, "ROWFERRY_MIGRATION is not set"),
        ({"ROWFERRY_MIGRATION": "no_such_module:migration"}, "no_such_module"),
        ({"ROWFERRY_CHUNK_SIZE": "many"}, "ROWFERRY_CHUNK_SIZE='many' is not an integer"),
        ({"ROWFERRY_SAFETY_MARGIN": "-1"}, "ROWFERRY_SAFETY_MARGIN='-1' must be at least 0"),
        ({"ROWFERRY_DISABLE_SCHEDULE": "a,b,c"}, "must be 'name' or 'name,group'"),
        ({"ROWFERRY_TARGET": "oracle://db/x"}, "unsupported database 'oracle'"),
        ({"ROWFERRY_REPLICAS": "oracle://db/x"}, "ROWFERRY_REPLICAS: unsupported database"),
        ({"ROWFERRY_MAX_REPLICA_LAG": "2"}, "ROWFERRY_MAX_REPLICA_LAG needs ROWFERRY_REPLICAS"),
        ({"ROWFERRY_MAX_THREADS_RUNNING": "0"}, "ROWFERRY_MAX_THREADS_RUNNING='0' must be at"),
        ({"ROWFERRY_CHECKS": "SELECT 1"}, "ROWFERRY_CHECKS: 'SELECT 1' is not SQL<=LIMIT"),
        ({"ROWFERRY_MAX_LOAD": "150%"}, "ROWFERRY_MAX_LOAD: '150%': the share of the time"),
        ({"ROWFERRY_SLEEP": "soon"}, "ROWFERRY_SLEEP='soon' is not a number"),
        ({"ROWFERRY_CHECKS": "SELECT depth FROM no_such_queue<=1"}, "no_such_queue"),
    ],
)
def test_bad_configuration_fails_clearly_without_writing(
    db_url: str, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    reference.build(db_url, orders=20)
    monkeypatch.setenv("ROWFERRY_SOURCE", db_url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = invoke()
    assert result["status"] == "failed" and message in result["reason"], result
    assert result["error"]["type"] in ("ConfigError", "MigrationFileError", "ConnectError")
    assert not has_state_table(db_url)


def test_missing_source_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    result = invoke()
    assert result["status"] == "failed"
    assert "set ROWFERRY_SOURCE (a database URL) or ROWFERRY_SOURCE_SECRET" in result["reason"]


def test_a_database_that_does_not_answer_fails_before_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # libpq waits for TCP's own timeout (minutes) unless told; the handler tells it 5 s
    url = f"postgresql+psycopg://user:{PASSWORD}@10.255.255.1:9/shop"
    monkeypatch.setenv("ROWFERRY_SOURCE", url)
    result = invoke(timeout=30.0)
    assert result["status"] == "failed" and result["error"]["type"] == "ConnectError"
    assert result["invocation_seconds"] < 10 and PASSWORD not in json.dumps(result)


def test_handler_does_not_import_the_cli_libraries() -> None:
    code = "import sys, rowferry.aws.handler; print(sorted({'click', 'rich'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- Secrets Manager -------------------------------------------------------------------------


@pytest.fixture
def login(db_url: str) -> Iterator[sa.URL]:
    """A login with PASSWORD on this test's database, dropped afterwards."""
    url = sa.make_url(db_url)
    user = "rf_lambda_" + uuid.uuid4().hex[:6]
    pg = url.get_backend_name() == "postgresql"
    engine = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if pg:
            conn.exec_driver_sql(f"CREATE ROLE {user} LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
        else:
            for host in ("%", "localhost"):
                conn.execute(sa.text(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{PASSWORD}'"))
                conn.execute(sa.text(f"GRANT ALL ON {url.database}.* TO '{user}'@'{host}'"))
    yield url.set(username=user, password=PASSWORD)
    with engine.connect() as conn:
        if pg:
            conn.exec_driver_sql(f"REASSIGN OWNED BY {user} TO CURRENT_USER")
            conn.exec_driver_sql(f"DROP OWNED BY {user}")
            conn.exec_driver_sql(f"DROP ROLE {user}")
        else:
            conn.execute(sa.text(f"DROP USER '{user}'@'%', '{user}'@'localhost'"))
    engine.dispose()


def rds_fields(url: sa.URL) -> dict[str, Any]:
    engine = "postgres" if url.get_backend_name() == "postgresql" else "mariadb"
    return {
        "engine": engine,
        "host": url.host,
        "port": url.port,
        "username": url.username,
        "password": url.password,
        "dbname": url.database,
    }


@pytest.mark.parametrize("dialect_name", ["mariadb", "postgresql"])
def test_source_from_an_rds_secret_and_no_password_in_any_output(
    db_url: str,
    login: sa.URL,
    aws: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    reference.build(db_url, orders=100)
    client = boto3.client("secretsmanager")
    arn = client.create_secret(Name="shop-db", SecretString=json.dumps(rds_fields(login)))["ARN"]
    monkeypatch.setenv("ROWFERRY_SOURCE_SECRET", arn)
    results = until_done()
    assert results[-1]["status"] == "done"
    assert reference.snapshots(db_url) == reference.expected_snapshots(db_url)
    bad = {**rds_fields(login), "username": "nobody", "password": PASSWORD + "-wrong"}
    client.put_secret_value(SecretId=arn, SecretString=json.dumps(bad))
    secrets.clear_cache()
    refused = invoke()
    assert refused["status"] == "failed" and refused["error"]["type"] == "ConnectError"
    captured = capsys.readouterr()
    everything = captured.out + captured.err + caplog.text + json.dumps([*results, refused])
    assert PASSWORD not in everything


@pytest.mark.parametrize("dialect_name", ["mariadb"])
def test_a_secret_with_a_url_and_a_login_only_secret_completing_a_url(
    db_url: str, login: sa.URL, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference.build(db_url, orders=60)
    client = boto3.client("secretsmanager")
    full = login.render_as_string(hide_password=False)
    client.create_secret(Name="as-url", SecretString=json.dumps({"url": full}))
    client.create_secret(
        Name="login-only",
        SecretString=json.dumps({"username": login.username, "password": PASSWORD}),
    )
    monkeypatch.setenv("ROWFERRY_SOURCE_SECRET", "as-url")
    assert until_done()[-1]["status"] == "done"
    base = login.set(username="nobody", password=None).render_as_string()
    monkeypatch.setenv("ROWFERRY_SOURCE", base)
    monkeypatch.setenv("ROWFERRY_SOURCE_SECRET", "login-only")  # RDS-managed master secret
    again = invoke()
    assert again["status"] == "done" and again["reason"] == "already done"


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (None, "cannot read secret 'missing': ResourceNotFoundException"),
        ("not json", "is not a JSON object"),
        (json.dumps({"engine": "oracle", "host": "h", "username": "u"}), "'engine' is 'oracle'"),
        (json.dumps({"engine": "mysql", "password": PASSWORD}), "has no host or username"),
    ],
)
def test_unusable_secrets_fail_clearly(
    aws: None, monkeypatch: pytest.MonkeyPatch, secret: str | None, message: str
) -> None:
    if secret is not None:
        boto3.client("secretsmanager").create_secret(Name="missing", SecretString=secret)
    monkeypatch.setenv("ROWFERRY_SOURCE_SECRET", "missing")
    result = invoke()
    assert result["status"] == "failed" and message in result["reason"], result
    assert PASSWORD not in json.dumps(result)


# --- Disabling the schedule ------------------------------------------------------------------


def make_schedule(name: str = "rowferry-every-minute") -> dict[str, Any]:
    client = boto3.client("scheduler")
    client.create_schedule(
        Name=name,
        ScheduleExpression="rate(1 minute)",
        Description="runs the migration",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": "arn:aws:lambda:eu-west-1:123456789012:function:rowferry",
            "RoleArn": "arn:aws:iam::123456789012:role/rowferry-scheduler",
            "Input": "{}",
            "RetryPolicy": {"MaximumRetryAttempts": 0},
        },
        State="ENABLED",
    )
    return dict(client.get_schedule(Name=name))


def schedule_now(name: str = "rowferry-every-minute") -> dict[str, Any]:
    return dict(boto3.client("scheduler").get_schedule(Name=name))


def test_the_schedule_is_disabled_once_done_and_keeps_its_settings(
    tmp_path: Any, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    reference.build(url, orders=60)
    before = make_schedule()
    monkeypatch.setenv("ROWFERRY_SOURCE", url)
    monkeypatch.setenv("ROWFERRY_DISABLE_SCHEDULE", "rowferry-every-minute,default")
    results = until_done()
    assert results[-1]["schedule"] == "disabled"
    after = schedule_now()
    assert after["State"] == "DISABLED"
    for field in ("ScheduleExpression", "Description", "FlexibleTimeWindow", "Target"):
        assert after[field] == before[field]
    assert invoke()["schedule"] == "already disabled"


def test_the_schedule_stays_while_the_migration_is_not_done(
    tmp_path: Any, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    reference.build(url, orders=60)
    make_schedule()
    monkeypatch.setenv("ROWFERRY_SOURCE", url)
    monkeypatch.setenv("ROWFERRY_DISABLE_SCHEDULE", "rowferry-every-minute")
    monkeypatch.setenv("ROWFERRY_SAFETY_MARGIN", "3")
    result = invoke(timeout=3.5)  # no time for a trip
    assert result["status"] == "failed" and "schedule" not in result
    assert schedule_now()["State"] == "ENABLED"


def test_a_schedule_that_cannot_be_disabled_does_not_fail_the_invocation(
    tmp_path: Any, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    reference.build(url, orders=60)
    monkeypatch.setenv("ROWFERRY_SOURCE", url)
    monkeypatch.setenv("ROWFERRY_DISABLE_SCHEDULE", "no-such-schedule")
    result = until_done()[-1]
    assert result["status"] == "done"
    assert result["schedule"].startswith("error: cannot disable schedule 'no-such-schedule'")
    assert "ResourceNotFoundException" in result["schedule"]


def test_a_followed_migration_is_caught_up_and_keeps_its_schedule(
    tmp_path: Any, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    reference.build(url, orders=60)
    make_schedule()
    monkeypatch.setenv("ROWFERRY_MIGRATION", "rowferry.demo.order_history:live_migration")
    monkeypatch.setenv("ROWFERRY_SOURCE", url)
    monkeypatch.setenv("ROWFERRY_DISABLE_SCHEDULE", "rowferry-every-minute")
    results = [invoke()]
    while results[-1]["status"] == "more":
        assert len(results) < 50, results[-1]
        results.append(invoke())
    assert results[-1]["status"] == "caught_up" and "schedule" not in results[-1]
    again = invoke()
    assert again["status"] == "caught_up" and again["rows"] == 0
    assert schedule_now()["State"] == "ENABLED"
    assert reference.snapshots(url) == reference.expected_snapshots(url)


# --- throttling and control from outside -----------------------------------------------------


def test_throttle_settings_from_the_environment_show_in_the_result_and_the_metrics(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    reference.build(db_url, orders=100)
    monkeypatch.setenv("ROWFERRY_SOURCE", db_url)
    monkeypatch.setenv("ROWFERRY_CHUNK_SIZE", "20")
    monkeypatch.setenv("ROWFERRY_MAX_LOAD", "50%")
    monkeypatch.setenv("ROWFERRY_SLEEP", "0.01")
    monkeypatch.setenv("ROWFERRY_CHECKS", "SELECT COUNT(*) FROM orders WHERE id < 0<=5")
    capsys.readouterr()
    result = invoke()
    assert result["status"] == "done" and result["chunks"] > 1
    assert result["pause_seconds"] >= 0.01 * (result["chunks"] - 1)
    assert result["throttled_seconds"] == pytest.approx(
        result["pause_seconds"] + result["gate_wait_seconds"], abs=0.002
    )
    assert result["gate_readings"] == [
        {"gate": "check", "value": 0.0, "limit": 5.0, "over": False, "setting": ""}
    ]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    (emf,) = [line for line in lines if "_aws" in line and "Rows" in line]
    assert emf["PauseSeconds"] == [result["pause_seconds"]] and emf["GatesOver"] == [0.0]
    assert emf["ThrottledSeconds"] == [result["throttled_seconds"]]


@pytest.mark.parametrize("dialect_name", ["postgresql"])
def test_a_gate_the_source_cannot_measure_fails_the_invocation_before_writing(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference.build(db_url, orders=20)
    monkeypatch.setenv("ROWFERRY_SOURCE", db_url)
    monkeypatch.setenv("ROWFERRY_MAX_HISTORY_LENGTH", "1000")
    result = invoke()
    assert result["status"] == "failed" and result["error"]["type"] == "ConfigError"
    assert "the history list length is InnoDB's" in result["reason"]
    assert not has_state_table(db_url)


def test_a_paused_or_cancelled_migration_answers_at_once_and_keeps_its_schedule(
    tmp_path: Any, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    reference.build(url, orders=100)
    make_schedule()
    monkeypatch.setenv("ROWFERRY_SOURCE", url)
    monkeypatch.setenv("ROWFERRY_DISABLE_SCHEDULE", "rowferry-every-minute")
    rowferry.run(order_history.migration, url, chunk_size=10, budget=rowferry.Budget(max_chunks=1))
    engine = sa.create_engine(url)
    for action, status in (("pause", "paused"), ("cancel", "cancelled")):
        with engine.connect() as conn:
            control.hold(conn, order_history.migration.name, action)  # type: ignore[arg-type]
        result = invoke()
        assert result["status"] == status and result["rows_done"] == 10, result
        assert result["chunks"] == 0 and "schedule" not in result
        assert trips(url) == 1  # no trip: its state row read, nothing else
        assert schedule_now()["State"] == "ENABLED"
    engine.dispose()
    assert "rowferry reset order-history" in result["reason"]
