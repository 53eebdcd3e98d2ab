"""What the tests and the benchmarks share: scratch databases on this machine's servers
(:mod:`harness.databases`), the reference workload with its expected snapshots computed
independently of rowferry (:mod:`harness.reference`), and fault injection
(:mod:`harness.faults`)."""
