"""The founding migration of SCENARIO.md: freeze every finished order into a JSON snapshot.

This file is also the example of a migration file: ``rowferry run`` loads files like it.
"""

from __future__ import annotations

from rowferry import BelongsTo, Changes, HasMany, Migration, Snapshot, Target

FINAL_STATUSES = ["uncollected", "cancelled", "dispensed"]


def snapshot(order: dict, related: dict) -> dict:  # type: ignore[type-arg]
    """One order and its related rows -> one row of order_snapshots."""
    return {
        "order_id": order["id"],
        "status": order["status"],
        "snapshot": {**order, **related},
    }


RELATIONS: dict[str, BelongsTo | HasMany] = {
    "patient": BelongsTo("patients", foreign_key="patient_id"),
    "items": HasMany("order_items", foreign_key="order_id", order_by="id"),
    "prescriptions": HasMany("prescriptions", foreign_key="order_id", order_by="id"),
    "payments": HasMany("payments", foreign_key="order_id", order_by="id"),
    "events": HasMany("order_status_events", foreign_key="order_id", order_by="id"),
}

migration = Migration(
    name="order-history",
    source="orders",
    where="status IN :statuses",
    params={"statuses": FINAL_STATUSES},
    relations=RELATIONS,
    transform=snapshot,
    target=Target("order_snapshots", unique_key=["order_id"]),
)

#: The same snapshots, described instead of computed, so that the database can build them
#: (``rowferry run order_history.py --name order-history-pushdown``).
pushdown_migration = Migration(
    name="order-history-pushdown",
    source="orders",
    where="status IN :statuses",
    params={"statuses": FINAL_STATUSES},
    relations=RELATIONS,
    transform=Snapshot(document="snapshot", columns={"order_id": "id", "status": "status"}),
    target=Target("order_snapshots", unique_key=["order_id"]),
    pushdown=True,
)

#: The history of a live pharmacy: after the backlog, each trip captures the orders that reached
#: a final status since the last one, whatever their key, and replaces the snapshot of an order
#: that moved to another final status
#: (``rowferry run order_history.py --name order-history-live``).
live_migration = Migration(
    name="order-history-live",
    source="orders",
    where="status IN :statuses",
    params={"statuses": FINAL_STATUSES},
    relations=RELATIONS,
    transform=snapshot,
    target=Target("order_snapshots", unique_key=["order_id"], on_conflict="update"),
    follow=Changes("updated_at", lag=5),
)
