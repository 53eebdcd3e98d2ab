"""The reference workload of SCENARIO.md and the order-history demo."""
