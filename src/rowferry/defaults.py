"""Every default rowferry uses, with the reason for its value."""

from __future__ import annotations

#: ``chunk_size="auto"`` (the default) aims at chunks of this duration: long enough that a
#: chunk's ~10 statements cost little, short enough that locks and the unused end of a time
#: budget stay small.
TARGET_CHUNK_SECONDS = 0.5
#: ... within these bounds, and within this estimate of the Python memory of the chunks held at
#: once (see :mod:`rowferry.engine.sizing`).
MIN_CHUNK_SIZE = 100
MAX_CHUNK_SIZE = 5_000
CHUNK_MEMORY_BYTES = 48 * 1024 * 1024
#: A pushed-down chunk holds no rows in the client and sends no IN lists, so only the target
#: duration bounds it, up to this many root rows (SQLite builds tens of thousands of snapshots a
#: second: 5,000 would make a chunk, with its checkpoint and its COMMIT's fsync, every 0.1 s or
#: so). A chunk
#: the database rejects goes the Python way in pieces of at most MAX_CHUNK_SIZE.
MAX_PUSHDOWN_CHUNK_SIZE = 100_000

#: Root rows of the first chunk with ``"auto"``, and the size ``plan`` assumes. 1,000 keeps a
#: chunk's IN lists and memory small (a reference snapshot is ~2 KB, so ~10 MB of Python
#: objects per chunk) while one chunk costs ~10 statements.
CHUNK_SIZE = 1000

#: The predicted duration of the next chunk comes from the slowest per-row rate of this many
#: recent chunks (times the next chunk's size) ...
TIMER_WINDOW = 5
#: ... times this factor: a chunk may run 50 % slower than the slowest recent rate and still
#: finish inside the budget.
CHUNK_SAFETY_FACTOR = 1.5

#: A trip's lease lasts until its deadline plus this grace, so that a run killed at its deadline
#: (a Lambda timeout) is taken over by the next scheduled run, and a slow commit is not fenced.
LEASE_GRACE_SECONDS = 10.0
#: Without a time budget the lease is renewed at every checkpoint for this long.
LEASE_TTL_SECONDS = 120.0
#: ... and, while such a trip waits between chunks (for its health gates, or pausing), extended
#: again once this long has passed since it was last set: a quarter of its length, so that a
#: slow or failed extension or two still leave the lease alive.
LEASE_RENEW_SECONDS = 30.0

#: ``rowferry verify`` re-runs the transform on this many root rows by default ...
VERIFY_SAMPLE = 1000
#: ... and compares this many source keys per range: one range's keys (and, for a plain copy,
#: rows) are in memory at once.
VERIFY_RANGE_SIZE = 10_000

#: ``rowferry lambda package`` builds for this Python by default: the newest Lambda runtime
#: (python3.13), the one the SAM template names.
LAMBDA_PYTHON = "3.13"

#: A Lambda invocation whose time budget (its remaining time minus the safety margin) is below
#: this fails at once, without connecting: the function's timeout leaves no time for a chunk,
#: and every invocation would end the same way until the configuration changes.
LAMBDA_MIN_BUDGET_SECONDS = 1.0

#: Exit statuses of ``rowferry run`` (documented in the README).
EXIT_DONE = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_STOPPED = 3
EXIT_ALREADY_RUNNING = 4
EXIT_MISMATCH = 5
#: ... a migration paused from outside (``rowferry pause``): its trips do nothing until it is
#: resumed, so a loop that runs trips again on 3 must not run them on this one ...
EXIT_PAUSED = 6
#: ... and one cancelled (``rowferry cancel``): no trip runs it again until it is reset.
EXIT_CANCELLED = 7

#: A trip that quarantines more root rows than this stops with an error: that many bad rows
#: usually mean a bug in the transform or a target column that is too small, not bad data.
MAX_BAD_ROWS = 100

#: A chunk of at least this many root rows that the target rejects every one of fails the trip:
#: it points at the target (a renamed column, a constraint no row meets). A smaller chunk's
#: rejected rows are quarantined like any others.
ALL_BAD_ROWS = 10

#: A quarantined row keeps its source row as JSON up to this many characters; a larger one (a
#: row rejected for its size, above all) is not kept, so that the quarantine's own INSERT stays
#: far below any server's packet limit: its key finds it in the source.
QUARANTINE_ROW_CHARS = 256 * 1024

#: Without a time budget, a trip waits at most this long for its throttle's gates to clear
#: before it stops (status 3, run again): well inside the lease it renews at each checkpoint.
THROTTLE_WAIT_SECONDS = 60.0
#: ``--max-replica-lag`` (each ``--replica``'s ``ReplicaLag`` gate): pt-archiver's ``--max-lag``
#: is 1 s by default (gh-ost's ``--max-lag-millis`` 1,500 ms), so its users expect a replica 2 s
#: behind to hold the copy. MySQL and MariaDB report the lag in whole seconds, so a smaller
#: limit would be 0: a replica that applies a write in the same second it was made.
MAX_REPLICA_LAG_SECONDS = 1.0

#: A followed migration reads changes up to this many seconds behind the database's clock: a
#: row whose change column was set by a transaction still open is not passed over unless that
#: transaction lasts longer. A minute covers the web requests and jobs of an ordinary
#: application (and clock skew between its servers) and delays the history by no more than a
#: schedule that fires every minute already does.
FOLLOW_LAG_SECONDS = 60.0
#: A sweep examines this many source keys per anti-join: one index range of the source, looked
#: up in the target's unique index, a few milliseconds of work per step.
SWEEP_KEYS = 10_000

#: A chunk that fails with a transient error (deadlock, lock wait timeout, lost connection) is
#: rolled back and tried again this many times in all, after reconnecting, waiting 0.1 s,
#: 0.2 s, 0.4 s ... (at most RETRY_MAX_WAIT_SECONDS, with jitter) in between.
RETRY_ATTEMPTS = 5
RETRY_MAX_WAIT_SECONDS = 2.0

#: While a trip or a verify runs, Python's cyclic garbage collector starts a young collection
#: after this many new container objects instead of its default 700. A chunk makes hundreds of
#: thousands of dicts, lists and tuples (rows), none in a cycle; at 700 the collector runs so
#: often that its collections take a large share of a trip's time. At 100,000
#: they cost almost nothing, and the garbage they would find (rare: rows are freed by reference
#: counting) waits a little longer.
GC_YOUNG_THRESHOLD = 100_000
#: ... and at most every this many chunks a full collection runs, so that cyclic garbage does
#: not pile up in the oldest generation between CPython's own rare full collections ...
GC_FULL_EVERY_CHUNKS = 10
#: ... and no more often than keeps full collections to this share of the time: one visits the
#: heap of SQLAlchemy and the driver (tens of thousands of objects, tens of milliseconds) even
#: in a pushed-down trip, a few percent of ten 0.5 s chunks.
GC_FULL_MAX_SHARE = 0.01
