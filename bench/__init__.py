"""Benchmarks users can run against their own deployment: `python -m bench --help`."""
