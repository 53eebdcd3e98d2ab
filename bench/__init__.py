"""Benchmarks and soaks of rowferry, run by hand (``python -m bench.soak``), not by pytest."""
