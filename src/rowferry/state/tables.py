"""The tables rowferry keeps in the target database, in one ``MetaData`` so that they are
created, probed and upgraded together: ``rowferry_state`` (each migration's progress and lease,
:mod:`rowferry.state.store`) and ``rowferry_quarantine`` (the rows a migration set aside,
:mod:`rowferry.state.quarantine`).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

STATE_TABLE = "rowferry_state"
metadata = sa.MetaData()
state_table = sa.Table(
    STATE_TABLE,
    metadata,
    sa.Column("name", sa.String(190), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("cursor_json", sa.Text, nullable=True),
    sa.Column("key_columns", sa.String(500), nullable=False),
    sa.Column("identity", sa.Text, nullable=True),
    sa.Column("rows_read", sa.BigInteger, nullable=False),
    sa.Column("rows_written", sa.BigInteger, nullable=False),
    sa.Column("rows_quarantined", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("chunks", sa.BigInteger, nullable=False),
    sa.Column("trips", sa.BigInteger, nullable=False),
    sa.Column("rows_total", sa.BigInteger, nullable=True),
    sa.Column("seconds_per_row", sa.Float, nullable=True),
    sa.Column("token", sa.BigInteger, nullable=False),
    sa.Column("owner", sa.String(200), nullable=True),
    sa.Column("lease_until", sa.DateTime, nullable=True),
    sa.Column("source", sa.String(500), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("last_trip_at", sa.DateTime, nullable=True),
    sa.Column("finished_at", sa.DateTime, nullable=True),
    # a followed migration's position in its source's changes (rowferry.engine.follow)
    sa.Column("follow_json", sa.Text, nullable=True),
    # told from outside (rowferry.state.control): 'paused' or 'cancelled', and live settings
    sa.Column("control", sa.String(20), nullable=True),
    sa.Column("settings_json", sa.Text, nullable=True),
    # yielding to the database (rowferry.engine.pacing): seconds in all, last gate readings
    sa.Column("throttled_seconds", sa.Float, nullable=True),
    sa.Column("gates_json", sa.Text, nullable=True),
)

QUARANTINE_TABLE = "rowferry_quarantine"

quarantine_table = sa.Table(
    QUARANTINE_TABLE,
    metadata,
    sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("migration", sa.String(190), nullable=False),
    sa.Column("key_hash", sa.String(40), nullable=False),
    sa.Column("key_json", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column(
        "row_json", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb"), nullable=True
    ),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("migration", "key_hash", name="uq_rowferry_quarantine_key"),
    mysql_charset="utf8mb4",
)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
