"""WSGI: apps on a thread pool, bridged to the event loop by bounded, blocking streams."""
