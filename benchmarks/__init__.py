"""Benchmark suite comparing gaw's worker with other ASGI and WSGI servers (`python -m benchmarks`)."""
