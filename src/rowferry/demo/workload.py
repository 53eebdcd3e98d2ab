"""The reference workload of SCENARIO.md: a pharmacy's orders with their related rows.

Six source tables (``patients``, ``orders``, ``order_items``, ``prescriptions``, ``payments``,
``order_status_events``) and the target ``order_snapshots``, declared once with SQLAlchemy Core and
created on SQLite, MariaDB/MySQL and PostgreSQL. The data is generated from ``random.Random(seed)``
and small built-in pools of names, so the same seed gives the same rows on every database, and the
same rows whatever the batch size.

Exactly ``qualifying_count(orders)`` orders are in a final status (1,615 of 2,700, the production
case). Order ids have gaps (about 3 % of ids are missing, with their children); children ids are
global ascending counters per table. Generation and insertion run in batches of ``batch`` orders
with their children, so memory stays bounded for 1,000,000 orders and more. Rows are passed to the
driver as tuples: ``executemany`` (multi-row INSERT with PyMySQL), COPY with psycopg on PostgreSQL.

``build(url, orders=100_000)`` writes about 1 million rows in all, in tens of seconds on local
servers, with a peak RSS that does not grow with the number of orders.

``order_snapshots.captured_at`` defaults to the current UTC time with microseconds on every dialect
(SQLite: milliseconds, the precision of its clock, written with six digits).
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

__all__ = [
    "FINAL_STATUSES",
    "OPEN_STATUSES",
    "SOURCE_TABLES",
    "TARGET_TABLE",
    "WorkloadStats",
    "build",
    "create_source_schema",
    "create_target_schema",
    "metadata",
    "populate",
    "qualifying_count",
]

FINAL_STATUSES: tuple[str, ...] = ("uncollected", "cancelled", "dispensed")
OPEN_STATUSES: tuple[str, ...] = ("pending", "processing", "ready")
SOURCE_TABLES: tuple[str, ...] = (
    "patients",
    "orders",
    "order_items",
    "prescriptions",
    "payments",
    "order_status_events",
)
TARGET_TABLE = "order_snapshots"

Row = tuple[Any, ...]
_T = TypeVar("_T")


@dataclass(frozen=True)
class WorkloadStats:
    """Row counts of a populated workload (``qualifying``: orders in a final status)."""

    orders: int
    qualifying: int
    patients: int
    items: int
    prescriptions: int
    payments: int
    events: int


def qualifying_count(orders: int) -> int:
    """Number of orders in a final status for a workload of ``orders`` orders (1615 for 2700)."""
    return round(orders * 1615 / 2700)


# --------------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------------


class _utc_now6(FunctionElement[datetime]):
    """Current UTC time with microseconds, as a server default (compiled per dialect)."""

    type = sa.DateTime()
    name = "utc_now6"
    inherit_cache = True


@compiles(_utc_now6)
def _utc_now6_sqlite(element: _utc_now6, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite's clock has milliseconds; "%f" gives SS.SSS, padded here to six digits.
    return "(strftime('%Y-%m-%d %H:%M:%f000', 'now'))"


@compiles(_utc_now6, "mysql", "mariadb")
def _utc_now6_mysql(element: _utc_now6, compiler: SQLCompiler, **kw: Any) -> str:
    return "(UTC_TIMESTAMP(6))"


@compiles(_utc_now6, "postgresql")
def _utc_now6_postgresql(element: _utc_now6, compiler: SQLCompiler, **kw: Any) -> str:
    return "(timezone('utc', clock_timestamp()))"


_DATETIME6 = (
    sa.DateTime()
    .with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
    .with_variant(postgresql.TIMESTAMP(precision=6), "postgresql")
)
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_MONEY: sa.DECIMAL[Decimal] = sa.DECIMAL(10, 2)
_MYSQL_OPTIONS: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}

metadata = sa.MetaData()


def _pk() -> sa.Column[int]:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=False)


def _order_fk() -> sa.Column[int]:
    return sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False, index=True)


sa.Table(
    "patients",
    metadata,
    _pk(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(200)),
    sa.Column("dob", sa.Date),
    sa.Column("address", sa.String(500)),
    **_MYSQL_OPTIONS,
)
sa.Table(
    "orders",
    metadata,
    _pk(),
    sa.Column("patient_id", sa.Integer, sa.ForeignKey("patients.id"), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("total", _MONEY, nullable=False),
    sa.Column("notes", sa.Text),
    sa.Column("created_at", _DATETIME6, nullable=False),
    sa.Column("updated_at", _DATETIME6, nullable=False),
    **_MYSQL_OPTIONS,
)
sa.Table(
    "order_items",
    metadata,
    _pk(),
    _order_fk(),
    sa.Column("sku", sa.String(32), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("qty", sa.Integer, nullable=False),
    sa.Column("unit_price", _MONEY, nullable=False),
    **_MYSQL_OPTIONS,
)
sa.Table(
    "prescriptions",
    metadata,
    _pk(),
    _order_fk(),
    sa.Column("drug", sa.String(200), nullable=False),
    sa.Column("dosage", sa.String(100)),
    sa.Column("prescriber", sa.String(200), nullable=False),
    sa.Column("issued_at", _DATETIME6, nullable=False),
    **_MYSQL_OPTIONS,
)
sa.Table(
    "payments",
    metadata,
    _pk(),
    _order_fk(),
    sa.Column("method", sa.String(20), nullable=False),
    sa.Column("amount", _MONEY, nullable=False),
    sa.Column("paid_at", _DATETIME6),
    **_MYSQL_OPTIONS,
)
sa.Table(
    "order_status_events",
    metadata,
    _pk(),
    _order_fk(),
    sa.Column("from_status", sa.String(20)),
    sa.Column("to_status", sa.String(20), nullable=False),
    sa.Column("at", _DATETIME6, nullable=False),
    **_MYSQL_OPTIONS,
)
sa.Table(
    TARGET_TABLE,
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.Integer, nullable=False, unique=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("snapshot", _JSON, nullable=False),
    sa.Column("captured_at", _DATETIME6, nullable=False, server_default=_utc_now6()),
    **_MYSQL_OPTIONS,
)


def _tables(names: tuple[str, ...]) -> list[sa.Table]:
    return [metadata.tables[name] for name in names]


def create_source_schema(conn: sa.Connection) -> None:
    """Drop the six source tables if they exist (children first), then create them."""
    metadata.drop_all(conn, tables=_tables(SOURCE_TABLES), checkfirst=True)
    metadata.create_all(conn, tables=_tables(SOURCE_TABLES), checkfirst=False)


def create_target_schema(conn: sa.Connection) -> None:
    """Drop ``order_snapshots`` if it exists, then create it."""
    metadata.drop_all(conn, tables=_tables((TARGET_TABLE,)), checkfirst=True)
    metadata.create_all(conn, tables=_tables((TARGET_TABLE,)), checkfirst=False)


# --------------------------------------------------------------------------------------------
# Pools (fixed; the seed only chooses among them)
# --------------------------------------------------------------------------------------------

_FIRST_NAMES = (
    "Alice", "Bob", "Carol", "David", "Emma", "Frank", "Grace", "Henry", "Isla", "Jack",
    "Karen", "Liam", "Mia", "Noah", "Olivia", "Peter", "Quinn", "Ruth", "Sam", "Tara",
)  # fmt: skip
_LAST_NAMES = (
    "Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Thomas", "Roberts", "Walker",
    "Wright", "Green", "Hall", "Wood", "Clarke", "Turner", "Hill", "Moore", "Baker",
)  # fmt: skip
_ACCENTED_NAMES = (
    "José Ñúñez", "Zoë Müller", "François Lefèvre", "Ágnes Kovács", "Søren Kierkegård",
    "Łukasz Wałęsa", "Inês Gonçalves", "Jürgen Böhm", "Çağla Öztürk", "Renée Dubé",
    "Dvořák Antonín", "Björn Ångström", "Sinéad Ó Briain", "Małgorzata Żółć",
)  # fmt: skip
_CJK_NAMES = (
    "王小明", "李华", "张伟", "刘洋", "陈静", "山田太郎", "佐藤花子", "鈴木一郎",
    "高橋美咲", "김민준", "이서연", "박지훈",
)  # fmt: skip
_STREETS = (
    "High Street", "Station Road", "Rue de la Paix", "Calle Mayor", "Hauptstraße",
    "Avenida da Liberdade", "Ulica Świętokrzyska", "Økernveien", "千代田区丸の内", "中山路",
)  # fmt: skip
_CITIES = (
    "London", "Paris", "Madrid", "München", "Lisboa", "Kraków", "Oslo", "東京", "上海", "Zürich",
)  # fmt: skip
_DRUGS = (
    "Paracetamol", "Ibuprofen", "Amoxicillin", "Metformin", "Atorvastatin", "Omeprazole",
    "Lisinopril", "Amlodipine", "Salbutamol", "Sertraline", "Levothyroxine", "Cetirizine",
    "Prednisolone", "Warfarin", "Ramipril", "Simvastatin", "Citalopram", "Naproxen",
)  # fmt: skip
_FORMS = ("tablets 500 mg x16", "capsules 20 mg x28", "oral solution 100 ml", "cream 30 g")
_CATALOG: tuple[tuple[str, str, int], ...] = tuple(
    (f"SKU-{i:05d}", f"{drug} {form}", 149 + i * 7919 % 12000)
    for i, (drug, form) in enumerate((d, f) for d in _DRUGS for f in _FORMS)
)
_DOSAGES = (
    "1 tablet twice daily", "1 tablet at night", "2 tablets every 6 hours",
    "5 ml three times daily", "apply thinly twice daily",
    "1 capsule daily before breakfast", "as needed, max 4 per day",
)  # fmt: skip
_PRESCRIBERS = (
    "Dr. Helen Carter", "Dr. Raj Patel", "Dr. María Peña", "Dr. Olivier Lefèbvre",
    "Dr. 田中健", "Dr. 陈志强", "Dr. Anna Nowak", "Dr. Tom Okafor",
)  # fmt: skip
_METHODS = ("card", "cash", "insurance", "voucher")
_SHORT_NOTES = (
    "Leave at reception.", "Call before delivery.", "Patient allergic to penicillin.",
    "Généreux conseil: prendre avec de l'eau.", "請在下午取藥。", "Urgent.",
    "Repeat prescription.", "Customer asked for a paper receipt.",
)  # fmt: skip
_LONG_NOTE_SENTENCES = (
    "The patient reported mild dizziness after the previous course and asked for advice.",
    "Pharmacist reviewed interactions with the current medication list; none significant.",
    "Delivery was attempted twice; the courier left a card with the neighbour at number 12.",
    "Insurance pre-authorisation reference was requested and is pending confirmation.",
    "Le patient préfère être contacté par téléphone après 18 h, jamais par courriel.",
    "患者希望下次配送前先电话确认，并要求提供中文用药说明。",
    "Stock of the requested strength was low; an equivalent generic was offered and accepted.",
)
_LONG_NOTE_CHARS = 2000

_EPOCH = datetime(2022, 1, 1)
_SPAN_SECONDS = 3 * 365 * 86_400
_DOB_START = date(1930, 1, 1)
_GAP_PER_MILLE = 30  # about 3 % of order ids are missing


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


class _Sampler:
    """Selection sampling (Knuth's algorithm S): exactly ``wanted`` of ``total``, in one pass."""

    def __init__(self, rng: random.Random, wanted: int, total: int) -> None:
        self._rng = rng
        self._wanted = wanted
        self._left = total

    def take(self) -> bool:
        picked = self._rng.random() * self._left < self._wanted
        self._left -= 1
        if picked:
            self._wanted -= 1
        return picked


def _pick(rng: random.Random, values: Sequence[_T]) -> _T:
    """A uniform pick (only ``rng.random()`` is used: stable across Python versions)."""
    return values[int(rng.random() * len(values))]


def _between(rng: random.Random, low: int, high: int) -> int:
    """A uniform integer in ``[low, high]``."""
    return low + int(rng.random() * (high - low + 1))


def _weighted(*pairs: tuple[_T, int]) -> tuple[_T, ...]:
    return tuple(value for value, weight in pairs for _ in range(weight))


def _money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


def _later(rng: random.Random, start: datetime, max_seconds: int) -> datetime:
    """A moment 1 to ``max_seconds`` seconds after ``start``, with non-zero microseconds."""
    seconds = _between(rng, 1, max_seconds)
    microseconds = _between(rng, 1, 999_999) - start.microsecond
    return start + timedelta(seconds=seconds, microseconds=microseconds)


def _patient_count(orders: int) -> int:
    return (orders + 2) // 3


def _patient_name(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.15:
        return _pick(rng, _ACCENTED_NAMES)
    if kind < 0.30:
        return _pick(rng, _CJK_NAMES)
    return f"{_pick(rng, _FIRST_NAMES)} {_pick(rng, _LAST_NAMES)}"


def _email(name: str, patient_id: int) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    local = ".".join(ascii_name.lower().split()) or "patient"
    return f"{local}.{patient_id}@example.com"


def _patient_row(rng: random.Random, patient_id: int) -> Row:
    name = _patient_name(rng)
    email = None if rng.random() < 0.15 else _email(name, patient_id)
    dob = None
    if rng.random() >= 0.10:
        dob = _DOB_START + timedelta(days=_between(rng, 0, 80 * 365 - 1))
    address = None
    if rng.random() >= 0.20:
        address = f"{_between(rng, 1, 250)} {_pick(rng, _STREETS)}, {_pick(rng, _CITIES)}"
    return (patient_id, name, email, dob, address)


def _status_path(rng: random.Random, status: str) -> list[str]:
    """Statuses an order went through to reach ``status`` (1 to 5 steps)."""
    happy = ["pending", "processing", "ready"]
    if status in OPEN_STATUSES:
        path = happy[: happy.index(status) + 1]
        if status == "ready" and rng.random() < 0.2:
            path += ["processing", "ready"]  # sent back for a missing item
        return path
    if status == "cancelled":
        return [*happy[: _between(rng, 1, 3)], status]
    return [*happy, status]


def _note(rng: random.Random, long_note: bool) -> str | None:
    if long_note:
        parts: list[str] = []
        while sum(len(p) + 1 for p in parts) < _LONG_NOTE_CHARS:
            parts.append(_pick(rng, _LONG_NOTE_SENTENCES))
        return " ".join(parts)
    if rng.random() < 0.15:
        return _pick(rng, _SHORT_NOTES)
    return None


_CHILD_TABLES = SOURCE_TABLES[2:]
# Weighted pools: each value repeated by its weight, so that one uniform pick draws from it.
_ITEM_COUNTS = _weighted((1, 8), (2, 14), (3, 20), (4, 20), (5, 16), (6, 10), (7, 7), (8, 5))
_QUANTITIES = _weighted((1, 60), (2, 25), (3, 10), (4, 5))
_PRESCRIPTION_COUNTS = _weighted((0, 40), (1, 40), (2, 20))
_PAYMENT_COUNTS = _weighted((0, 20), (1, 65), (2, 15))
_FINAL_CHOICES = _weighted(("uncollected", 10), ("cancelled", 20), ("dispensed", 70))
_OPEN_CHOICES = _weighted(("pending", 30), ("processing", 30), ("ready", 40))


class _OrderGenerator:
    """Streams orders with their children, in id order, from one seeded generator."""

    def __init__(self, rng: random.Random, orders: int, patients: int) -> None:
        self.rng = rng
        self.orders = orders
        self.patients = patients
        gaps = max(1, round(orders * _GAP_PER_MILLE / (1000 - _GAP_PER_MILLE))) if orders else 0
        self._ids = _Sampler(rng, orders, orders + gaps)
        self._finals = _Sampler(rng, qualifying_count(orders), orders)
        self._long_notes = _Sampler(rng, max(1, round(orders / 100)) if orders else 0, orders)
        self._last_id = 0
        self._next = dict.fromkeys(_CHILD_TABLES, 1)

    def batches(self, size: int) -> Iterator[dict[str, list[Row]]]:
        """Yield ``{table: rows}`` for ``size`` orders at a time (orders first, then children)."""
        done = 0
        while done < self.orders:
            rows: dict[str, list[Row]] = {name: [] for name in SOURCE_TABLES[1:]}
            for _ in range(min(size, self.orders - done)):
                self._order(rows)
            done += len(rows["orders"])
            yield rows

    def _child_id(self, table: str) -> int:
        child_id = self._next[table]
        self._next[table] = child_id + 1
        return child_id

    def _order_id(self) -> int:
        while True:
            self._last_id += 1
            if self._ids.take():
                return self._last_id

    def _status(self) -> str:
        if self._finals.take():
            return _pick(self.rng, _FINAL_CHOICES)
        return _pick(self.rng, _OPEN_CHOICES)

    def _order(self, rows: dict[str, list[Row]]) -> None:
        rng = self.rng
        order_id, status = self._order_id(), self._status()
        patient_id = _between(rng, 1, self.patients)
        notes = _note(rng, self._long_notes.take())
        created_at = _later(rng, _EPOCH, _SPAN_SECONDS)
        total_cents = self._items(order_id, rows["order_items"])
        self._prescriptions(order_id, created_at, rows["prescriptions"])
        self._payments(order_id, total_cents, created_at, rows["payments"])
        updated_at = self._events(order_id, status, created_at, rows["order_status_events"])
        total = _money(total_cents)
        rows["orders"].append((order_id, patient_id, status, total, notes, created_at, updated_at))

    def _items(self, order_id: int, out: list[Row]) -> int:
        rng = self.rng
        total = 0
        for _ in range(_pick(rng, _ITEM_COUNTS)):
            sku, name, cents = _pick(rng, _CATALOG)
            qty = _pick(rng, _QUANTITIES)
            total += qty * cents
            out.append((self._child_id("order_items"), order_id, sku, name, qty, _money(cents)))
        return total

    def _prescriptions(self, order_id: int, created_at: datetime, out: list[Row]) -> None:
        rng = self.rng
        for _ in range(_pick(rng, _PRESCRIPTION_COUNTS)):
            dosage = None if rng.random() < 0.25 else _pick(rng, _DOSAGES)
            issued_at = _later(rng, created_at - timedelta(days=30), 29 * 86_400)
            row = (order_id, _pick(rng, _DRUGS), dosage, _pick(rng, _PRESCRIBERS), issued_at)
            out.append((self._child_id("prescriptions"), *row))

    def _payments(self, order_id: int, total: int, created_at: datetime, out: list[Row]) -> None:
        rng = self.rng
        count = _pick(rng, _PAYMENT_COUNTS)
        first = total if count == 1 else total * _between(rng, 20, 80) // 100
        for amount in (first, total - first)[:count]:
            paid_at = None if rng.random() < 0.15 else _later(rng, created_at, 7 * 86_400)
            row = (order_id, _pick(rng, _METHODS), _money(amount), paid_at)
            out.append((self._child_id("payments"), *row))

    def _events(self, order_id: int, status: str, created_at: datetime, out: list[Row]) -> datetime:
        """Append the status history; return the time of the last event (``updated_at``)."""
        at, previous = created_at, None
        for step, to_status in enumerate(_status_path(self.rng, status)):
            if step:
                at = _later(self.rng, at, 3 * 86_400)
            out.append((self._child_id("order_status_events"), order_id, previous, to_status, at))
            previous = to_status
        return at


# --------------------------------------------------------------------------------------------
# Fast insertion
# --------------------------------------------------------------------------------------------

_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def _sqlite_value(value: Any) -> Any:
    """Values in the storage format of SQLAlchemy's SQLite Numeric, DateTime and Date."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _insert_sql(conn: sa.Connection, table: sa.Table) -> str:
    quote = conn.dialect.identifier_preparer.quote
    placeholder = _PLACEHOLDERS.get(conn.dialect.paramstyle)
    if placeholder is None:
        raise ValueError(f"unsupported DB-API paramstyle {conn.dialect.paramstyle!r}")
    columns = ", ".join(quote(column.name) for column in table.columns)
    values = ", ".join([placeholder] * len(table.columns))
    return f"INSERT INTO {quote(table.name)} ({columns}) VALUES ({values})"


def _copy_rows(conn: sa.Connection, table: sa.Table, rows: list[Row]) -> None:
    quote = conn.dialect.identifier_preparer.quote
    columns = ", ".join(quote(column.name) for column in table.columns)
    statement = f"COPY {quote(table.name)} ({columns}) FROM STDIN"
    driver_connection: Any = conn.connection.driver_connection
    with driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _insert_rows(conn: sa.Connection, table: sa.Table, rows: list[Row]) -> None:
    """Insert ``rows`` (tuples in column order) with the fastest path of the driver."""
    if not rows:
        return
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        _copy_rows(conn, table, rows)
        return
    if conn.dialect.name == "sqlite":
        rows = [tuple(_sqlite_value(value) for value in row) for row in rows]
    conn.exec_driver_sql(_insert_sql(conn, table), rows)


def _insert_patients(conn: sa.Connection, rng: random.Random, count: int, batch: int) -> None:
    table = metadata.tables["patients"]
    for start in range(1, count + 1, batch):
        stop = min(start + batch, count + 1)
        _insert_rows(conn, table, [_patient_row(rng, pid) for pid in range(start, stop)])


def populate(
    conn: sa.Connection, orders: int = 2700, seed: int = 7, batch: int = 5000
) -> WorkloadStats:
    """Insert the workload into the (empty) source tables; the caller commits.

    ``batch`` orders are generated and inserted at a time, with their children, so memory does not
    grow with ``orders``. The data depends on ``orders`` and ``seed`` only.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    if not conn.in_transaction():
        conn.begin()  # COPY goes through the raw driver connection: make SQLAlchemy commit it
    rng = random.Random(seed)
    patients = _patient_count(orders)
    _insert_patients(conn, rng, patients, batch)
    counts = dict.fromkeys(SOURCE_TABLES[1:], 0)
    qualifying = 0
    for rows in _OrderGenerator(rng, orders, patients).batches(batch):
        qualifying += sum(1 for row in rows["orders"] if row[2] in FINAL_STATUSES)
        for name, table_rows in rows.items():
            _insert_rows(conn, metadata.tables[name], table_rows)
            counts[name] += len(table_rows)
    return WorkloadStats(
        orders=counts["orders"],
        qualifying=qualifying,
        patients=patients,
        items=counts["order_items"],
        prescriptions=counts["prescriptions"],
        payments=counts["payments"],
        events=counts["order_status_events"],
    )


def build(
    url_or_engine: str | sa.URL | sa.Engine, orders: int = 2700, seed: int = 7
) -> WorkloadStats:
    """Drop and create both schemas, then populate the source tables; one transaction, committed."""
    engine = (
        url_or_engine if isinstance(url_or_engine, sa.Engine) else sa.create_engine(url_or_engine)
    )
    try:
        with engine.begin() as conn:
            create_source_schema(conn)
            create_target_schema(conn)
            return populate(conn, orders=orders, seed=seed)
    finally:
        if engine is not url_or_engine:
            engine.dispose()
