"""ASGI: app-interface detection, the HTTP request cycle and the lifespan protocol."""
