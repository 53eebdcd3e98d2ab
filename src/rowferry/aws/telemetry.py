"""JSON log lines and CloudWatch embedded metrics, through AWS Lambda Powertools.

The handler logs through a Powertools :class:`Logger` (service ``rowferry-lambda``, one JSON
object per line with the request id, cold start and migration name). While an invocation runs,
the library's own ``rowferry`` logger (trips, retries, chunks at DEBUG) is routed to the same
handler, and restored afterwards. Log level: ``POWERTOOLS_LOG_LEVEL`` (default ``INFO``).

Per invocation one embedded-metrics document (namespace ``POWERTOOLS_METRICS_NAMESPACE``,
default ``rowferry``; dimensions ``service`` and ``migration``) carries ``Rows``, ``RowsWritten``,
``RowsQuarantined``, ``Chunks``, ``Retries``, ``Duration`` (seconds), ``BudgetUsed`` (percent),
``RowsLeft``, ``Done`` / ``More`` / ``Paused`` / ``Cancelled`` / ``Failed`` (1 for the outcome
of the invocation): alarm on ``Failed``; and the throttle's: ``ThrottledSeconds`` (waiting for
gates and pausing), ``GateWaitSeconds``, ``PauseSeconds``, ``GatesOver`` (gates over their
limit at their last reading) and the last reading of each kind of gate, the highest of
several: ``ReplicaLag`` (seconds), ``ThreadsRunning``, ``HistoryListLength``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "rowferry-lambda"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "rowferry"
LIBRARY_LOGGER = "rowferry"
#: the metric of each kind of gate, by the setting that changes its limit
GATE_METRICS = {
    "max_replica_lag": ("ReplicaLag", MetricUnit.Seconds),
    "max_threads_running": ("ThreadsRunning", MetricUnit.Count),
    "max_history_length": ("HistoryListLength", MetricUnit.Count),
}


class CurrentStdout(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` is at the time of the record (Lambda's log stream;
    under a test, its capture)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


logger = Logger(service=SERVICE, logger_handler=CurrentStdout())
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


@contextmanager
def library_logs() -> Iterator[None]:
    """Route the ``rowferry`` library logger to the Powertools handler while the block runs."""
    library = logging.getLogger(LIBRARY_LOGGER)
    saved = (library.level, library.propagate)
    handler = logger.registered_handler
    library.addHandler(handler)
    library.setLevel(logger.log_level)
    library.propagate = False  # Lambda's root handler would print each record a second time
    try:
        yield
    finally:
        library.removeHandler(handler)
        library.setLevel(saved[0])
        library.propagate = saved[1]


def record(result: dict[str, Any]) -> None:
    """Add the invocation's metrics; Powertools flushes them when the handler returns."""
    metrics.add_dimension(name="migration", value=str(result.get("migration") or "unknown"))
    counts = {
        "Rows": result.get("rows", 0),
        "RowsWritten": result.get("rows_written", 0),
        "RowsQuarantined": result.get("rows_quarantined", 0),
        "Chunks": result.get("chunks", 0),
        "Retries": result.get("retries", 0),
        "Done": int(result["status"] == "done"),
        "More": int(result["status"] == "more"),
        "Paused": int(result["status"] == "paused"),
        "Cancelled": int(result["status"] == "cancelled"),
        "Failed": int(result["status"] == "failed"),
    }
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    if result.get("rows_total") is not None:
        left = max(int(result["rows_total"]) - int(result.get("rows_done") or 0), 0)
        metrics.add_metric(name="RowsLeft", unit=MetricUnit.Count, value=left)
    metrics.add_metric(
        name="Duration", unit=MetricUnit.Seconds, value=float(result["invocation_seconds"])
    )
    budget = result.get("budget_seconds")
    if budget:
        used = 100.0 * float(result.get("seconds") or 0.0) / float(budget)
        metrics.add_metric(name="BudgetUsed", unit=MetricUnit.Percent, value=round(used, 1))
    _record_throttle(result)


def _record_throttle(result: dict[str, Any]) -> None:
    for name, key in (
        ("ThrottledSeconds", "throttled_seconds"),
        ("GateWaitSeconds", "gate_wait_seconds"),
        ("PauseSeconds", "pause_seconds"),
    ):
        seconds = float(result.get(key) or 0.0)
        metrics.add_metric(name=name, unit=MetricUnit.Seconds, value=seconds)
    readings = result.get("gate_readings") or []
    if not readings:
        return
    over = sum(1 for r in readings if r["over"])
    metrics.add_metric(name="GatesOver", unit=MetricUnit.Count, value=over)
    for setting, (name, unit) in GATE_METRICS.items():
        values = [
            r["value"] for r in readings if r["setting"] == setting and r["value"] is not None
        ]
        if values:
            metrics.add_metric(name=name, unit=unit, value=max(values))
