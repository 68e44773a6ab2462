"""Benchmarks and evaluation harnesses (virtual-time simulations and hot-path timings)."""
