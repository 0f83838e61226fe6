"""Benchmarks: run with `make bench`, never by `make test`. Figures go to docs/benchmarks.md."""
