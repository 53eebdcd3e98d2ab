"""Child process of ``bench.copy``: one dlt copy of the finished orders (runs in ``.bench-venv``).

``.bench-venv/bin/python -P bench/copy_dlt.py --backend pyarrow --source mysql+pymysql://... \
--destination postgresql --dest-url postgresql://... --dataset orders_copy --pipelines-dir DIR``

loads ``orders`` with ``sql_table(..., incremental=dlt.sources.incremental("id"),
backend=...)`` and a ``query_adapter_callback`` that adds ``WHERE status IN (...)``, into dlt's
``postgres`` destination or, for MariaDB, its ``sqlalchemy`` destination, with dlt's defaults
otherwise (``chunk_size`` 50,000; connectorx reads the whole result as one Arrow table). It
prints one JSON line: the in-process seconds (imports excluded) and the rows dlt normalized.
``--versions`` prints the versions of dlt and its backends instead. Standalone on purpose: this
file imports neither rowferry nor the rest of ``bench``. ``-P`` keeps ``bench/`` off
``sys.path``, where ``bench/copy.py`` would shadow the standard library's ``copy``.
"""

from __future__ import annotations

import argparse
import json
import time
from importlib import metadata
from typing import Any

FINAL_STATUSES = ("uncollected", "cancelled", "dispensed")
PACKAGES = ("dlt", "connectorx", "pyarrow", "sqlalchemy", "pymysql", "psycopg2-binary")


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def finished_only(query: Any, table: Any) -> Any:
    """dlt's ``query_adapter_callback``: only the orders in a final status."""
    return query.where(table.c.status.in_(FINAL_STATUSES))


def destination(kind: str, url: str) -> Any:
    import dlt

    if kind == "postgresql":
        return dlt.destinations.postgres(credentials=url)
    return dlt.destinations.sqlalchemy(credentials=url)


def copy(args: argparse.Namespace) -> dict[str, Any]:
    import dlt
    from dlt.sources.sql_database import sql_table

    started = time.perf_counter()
    resource = sql_table(
        credentials=args.source,
        table="orders",
        incremental=dlt.sources.incremental("id"),
        backend=args.backend,
        query_adapter_callback=finished_only,
    )
    pipeline = dlt.pipeline(
        pipeline_name=f"orders_copy_{args.backend}",
        pipelines_dir=args.pipelines_dir,
        destination=destination(args.destination, args.dest_url),
        dataset_name=args.dataset,
    )
    pipeline.run(resource)
    seconds = time.perf_counter() - started
    trace = pipeline.last_trace
    counts = trace.last_normalize_info.row_counts if trace.last_normalize_info else {}
    return {"seconds": seconds, "rows": counts.get("orders", 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", action="store_true")
    parser.add_argument("--backend", choices=["sqlalchemy", "pyarrow", "connectorx"])
    parser.add_argument("--source")
    parser.add_argument("--destination", choices=["postgresql", "mariadb"])
    parser.add_argument("--dest-url")
    parser.add_argument("--dataset")
    parser.add_argument("--pipelines-dir")
    args = parser.parse_args()
    print(json.dumps(versions() if args.versions else copy(args)))


if __name__ == "__main__":
    main()
