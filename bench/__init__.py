"""Benchmarks that print rates and ratios (run as `python -m bench.<name>`); never timed tests."""
