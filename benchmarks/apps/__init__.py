"""Tiny raw ASGI and WSGI apps that every benchmarked server serves."""
