"""Fast async worker classes for Gunicorn: ASGI apps on uvloop and httptools.

Use `gunicorn -k gaw.UvloopWorker app:app`, or `worker_class = "gaw.UvloopWorker"` in
`gunicorn.conf.py`; `UvloopWorker.configure(...)` sets our own options.
"""

from .config import OPTIONS, ConfigError
from .workers import AsyncioWorker, AsyncWorkerBase, H11Worker, UvloopWorker

__all__ = ["OPTIONS", "AsyncWorkerBase", "AsyncioWorker", "ConfigError", "H11Worker",
           "UvloopWorker"]
__version__ = "0.1.0"
