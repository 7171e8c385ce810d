"""Benchmark suite: gaw's worker against other ASGI and WSGI servers (`python -m benchmarks`)."""
