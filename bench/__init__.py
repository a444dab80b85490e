"""Benchmarks and resilience runs, by hand: ``python -m bench.NAME`` (see README)."""
