"""Benchmarks: each `bench_*.py` prints a markdown table; `python -m benchmarks` assembles them."""
