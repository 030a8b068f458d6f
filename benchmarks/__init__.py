"""Benchmarks of the bounded cases; see benchmarks/README.md."""
