"""Benchmarks: what taskop costs over bare Jobs, at scale (see bench/README.md)."""
