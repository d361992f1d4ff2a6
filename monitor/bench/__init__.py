"""Benchmarks and their harnesses (``spotter bench ...``): tooling, not the product's path."""
