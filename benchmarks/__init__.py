"""Benchmarks: `make bench` runs benchmarks.run, which prints figures and writes
reports/bench.json and the tables in BENCHMARKS.md."""
