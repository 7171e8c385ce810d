"""ASGI and WSGI applications that the integration tests serve through a real gunicorn."""
