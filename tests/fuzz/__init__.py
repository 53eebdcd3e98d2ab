"""The generative, differential test of rowferry's guarantee: every qualifying row once,
values exact or converted as documented, or the migration refused before its first write.

A case is built from one seed: a source and a target database (the same database, or any pair
of SQLite, MariaDB and PostgreSQL), a table of the source dialect's real column types holding
edge values, a key of one of the supported kinds, a filter, a chunk size, the Python path or
pushdown, and interruptions (a crash at a point of the chunk loop, trips cut short). rowferry
runs it to the end; an oracle that shares no code with rowferry reads both sides with the
drivers' own cursors and compares them (:mod:`tests.fuzz.oracle`).

``python -m tests.fuzz --cases 50000`` is the soak; ``tests/test_generative.py`` runs a
smaller number of cases in the test command.
"""
