"""Benchmarks run by ``scripts/bench``: honest instruments, no targets asserted."""
